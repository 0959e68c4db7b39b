"""The rules of :mod:`strato.infra.policy.rules` as a ``pulumi-policy`` pack.

``policies()`` builds the policy objects (safe to import and call anywhere: the tests drive their
``validate`` callables with the engine's own argument types); ``serve()`` runs the pack, which is what
``__main__.py`` does when ``pulumi preview --policy-pack`` starts it.

Configuration (``pulumi preview --policy-pack DIR --policy-pack-config config.json``)::

    {"strato-required-tags": {"requiredTags": ["owner", "data-classification", "cost-center"]},
     "strato-restricted-regions": {"allowedRegions": ["eu-west-1", "europe-west1", "westeurope"]},
     "strato-encryption-required": {"encryptFrom": "internal"},
     "strato-s3-encryption-required": {"encryptFrom": "internal"}}
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from pulumi_policy import (
    EnforcementLevel,
    Policy,
    PolicyConfigSchema,
    PolicyPack,
    PolicyResource,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    StackValidationArgs,
    StackValidationPolicy,
)

from strato.governance import CLASSIFICATIONS

from .rules import MANDATORY, RULES, Resource, Rule, Settings

NAME = "strato-guardrails"
LEVELS = {MANDATORY: EnforcementLevel.MANDATORY, "advisory": EnforcementLevel.ADVISORY}
SCHEMAS: dict[str, PolicyConfigSchema] = {
    "strato-required-tags": PolicyConfigSchema(properties={
        "requiredTags": {"type": "array", "items": {"type": "string"}, "default": list(Settings().required_tags)}}),
    "strato-restricted-regions": PolicyConfigSchema(properties={
        "allowedRegions": {"type": "array", "items": {"type": "string"}, "default": []}}),
    "strato-encryption-required": PolicyConfigSchema(properties={
        "encryptFrom": {"type": "string", "enum": list(CLASSIFICATIONS), "default": Settings().encrypt_from}}),
}
SCHEMAS["strato-s3-encryption-required"] = SCHEMAS["strato-encryption-required"]


def settings(config: Mapping[str, Any] | None) -> Settings:
    """A policy's configuration as :class:`Settings`, defaults for what it does not set."""
    config, default = config or {}, Settings()
    return Settings(required_tags=tuple(config.get("requiredTags") or default.required_tags),
                    allowed_regions=tuple(config.get("allowedRegions") or ()),
                    encrypt_from=str(config.get("encryptFrom") or default.encrypt_from))


def _region(provider: Any) -> str | None:
    props = getattr(provider, "props", None) or {}
    value = props.get("region")
    return str(value) if value else None


def from_engine(resource: ResourceValidationArgs | PolicyResource) -> Resource:
    """The engine's view of a resource as the rules' :class:`Resource`."""
    refs = {prop: tuple(r.urn for r in deps)
            for prop, deps in (getattr(resource, "property_dependencies", None) or {}).items()}
    return Resource(type=resource.resource_type, name=resource.name, props=dict(resource.props), urn=resource.urn,
                    region=_region(resource.provider), refs=refs)


def _resource_validate(rule: Rule) -> Callable[[ResourceValidationArgs, Callable[..., None]], None]:
    def validate(args: ResourceValidationArgs, report_violation: Callable[..., None]) -> None:
        for message in rule.check(from_engine(args), settings(args.get_config())):
            report_violation(message, args.urn)

    return validate


def _stack_validate(rule: Rule) -> Callable[[StackValidationArgs, Callable[..., None]], None]:
    def validate(args: StackValidationArgs, report_violation: Callable[..., None]) -> None:
        for resource, message in rule.check([from_engine(r) for r in args.resources], settings(args.get_config())):
            report_violation(message, resource.urn or None)

    return validate


def policies() -> list[Policy]:
    """One ``pulumi-policy`` policy per rule, at the rule's enforcement level."""
    out: list[Policy] = []
    for rule in RULES:
        common: dict[str, Any] = {"enforcement_level": LEVELS[rule.level], "config_schema": SCHEMAS.get(rule.name)}
        if rule.stack:
            out.append(StackValidationPolicy(rule.name, rule.description, _stack_validate(rule), **common))
        else:
            out.append(ResourceValidationPolicy(rule.name, rule.description, _resource_validate(rule), **common))
    return out


def serve() -> None:  # pragma: no cover - runs until the Pulumi engine stops it
    PolicyPack(NAME, policies(), description="Strato guardrails: governance tags, nothing public, no wildcard "
               "IAM, data classification (restricted regions, encryption).")
