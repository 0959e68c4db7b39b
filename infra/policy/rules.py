"""The policies of Strato's policy pack as plain functions of the resources a deployment would create.

A resource is what the Pulumi engine hands a policy: a type token (``aws:s3/bucket:Bucket``), a name
and its properties under their engine names (camelCase), plus the region where the provider, not the
resource, says it (AWS). Resource rules look at one resource, stack rules at all of them (a bucket
and the resources that harden it are separate). Each returns its violations as messages naming the
resource and saying what to do; :func:`evaluate` runs them all. ``strato.infra.policy.pack`` wraps the
same functions as ``pulumi-policy`` policies, so ``pulumi preview --policy-pack`` and the tests judge
the same way.
"""

from __future__ import annotations

import functools
import importlib
import inspect
import json
import keyword
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from strato.governance import CLASSIFICATION_KEY, CLASSIFICATIONS

MANDATORY, ADVISORY = "mandatory", "advisory"
PIPELINE_TAG = "strato-pipeline"
SDK_MODULES = {"aws": "pulumi_aws", "gcp": "pulumi_gcp", "azure-native": "pulumi_azure_native"}
TAG_PROPERTIES = {"aws": ("tags", "tagsAll"), "gcp": ("labels", "effectiveLabels"), "azure-native": ("tags",)}
PUBLIC_MEMBERS = ("allUsers", "allAuthenticatedUsers")
PUBLIC_S3_ACLS = ("public-read", "public-read-write", "authenticated-read")
# Roles whose grant is every action of a service or of everything: the wildcards of GCP and Azure.
GCP_BASIC_ROLES = ("roles/owner", "roles/editor")
AZURE_WILDCARD_ROLES = {"8e3af657-a8ff-443c-a75c-2fe8c4bcb635": "Owner", "b24988ac-6180-42a0-ab88-20f7382dd24c":
                        "Contributor", "18d7d88d-d35e-4fb5-a5c3-7773c20a72d9": "User Access Administrator"}
AWS_WILDCARD_POLICIES = ("arn:aws:iam::aws:policy/AdministratorAccess", "arn:aws:iam::aws:policy/PowerUserAccess")
S3_ALGORITHMS = ("AES256", "aws:kms", "aws:kms:dsse")


@dataclass(frozen=True)
class Resource:
    """One resource as a policy sees it."""

    type: str
    name: str
    props: Mapping[str, Any]
    urn: str = ""
    region: str | None = None  # the provider's region, for clouds whose resources do not carry one (AWS)
    refs: Mapping[str, tuple[str, ...]] = field(default_factory=dict)  # property -> URNs it was computed from

    @property
    def cloud(self) -> str:
        return self.type.split(":", 1)[0]

    def label(self) -> str:
        return f"{self.type} {self.name!r}"


@dataclass(frozen=True)
class Settings:
    """What a team configures (``--policy-pack-config``); see ``pack.py`` for the keys."""

    required_tags: tuple[str, ...] = ("owner", CLASSIFICATION_KEY)
    allowed_regions: tuple[str, ...] = ()  # where `restricted` data may live; none: nowhere, until configured
    encrypt_from: str = "confidential"  # the classification from which explicit encryption is required


@dataclass(frozen=True)
class Finding:
    policy: str
    level: str
    resource: str
    message: str


# ---------------------------------------------------------------------------------------- helpers
def _type_class(token: str) -> type | None:
    """The provider SDK class of a type token: ``aws:lambda/function:Function`` is ``pulumi_aws.lambda_.Function``."""
    try:
        package, module, name = token.split(":")
    except ValueError:
        return None
    root = SDK_MODULES.get(package)
    if root is None:
        return None
    parts = [module.split("/")[0]] if package != "azure-native" else module.split("/")
    parts = [p + "_" if keyword.iskeyword(p) else p for p in parts if p != "index"]
    try:
        found = getattr(importlib.import_module(".".join([root, *parts])), name, None)
    except ImportError:
        return None
    return found if isinstance(found, type) else None


@functools.cache
def tag_property(token: str) -> str | None:
    """The property a resource type takes its tags in (``tags``, GCP's ``labels``), or None when it takes
    none. Asked of the provider's own SDK, so a type added to a provider is judged by its schema."""
    cls = _type_class(token)
    init = getattr(cls, "_internal_init", None)
    if init is None:
        return None
    wanted = TAG_PROPERTIES[token.split(":", 1)[0]][0]
    return wanted if wanted in inspect.signature(init).parameters else None


def tags_of(resource: Resource) -> dict[str, str]:
    """The resource's tags, including those a provider adds by default (``tagsAll``, ``effectiveLabels``)."""
    out: dict[str, str] = {}
    for key in TAG_PROPERTIES.get(resource.cloud, ()):
        value = resource.props.get(key)
        if isinstance(value, Mapping):
            out.update({str(k): v for k, v in value.items() if isinstance(v, str)})
    return out


def classification(resource: Resource) -> str | None:
    level = tags_of(resource).get(CLASSIFICATION_KEY)
    return level if level in CLASSIFICATIONS else None


def region_of(resource: Resource) -> str | None:
    """Where the resource lives, normalised (``West Europe`` -> ``westeurope``)."""
    value = resource.props.get("location") or resource.props.get("region") or resource.region
    return str(value).replace(" ", "").lower() if value else None


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [] if value is None else [value]


def _document(value: Any) -> dict[str, Any] | None:
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            return None
    return value if isinstance(value, dict) else None


def _public_principal(principal: Any) -> bool:
    if principal == "*":
        return True
    return isinstance(principal, Mapping) and any("*" in _as_list(v) for v in principal.values())


# ------------------------------------------------------------------------------------ resource rules
def missing_tags(resource: Resource, settings: Settings) -> list[str]:
    """Every taggable resource carries the governance tags, with a known ``data-classification``."""
    prop = tag_property(resource.type)
    if prop is None:
        return []
    tags = tags_of(resource)
    missing = [k for k in settings.required_tags if not tags.get(k)]
    out = []
    if missing:
        out.append(f"{resource.label()} lacks the governance tag(s) {', '.join(map(repr, missing))}: tag the "
                   f"pipeline (@pipeline(tags={{...}})) or pass them to the component's `{prop}`")
    level = tags.get(CLASSIFICATION_KEY)
    if level and level not in CLASSIFICATIONS:
        out.append(f"{resource.label()} has {CLASSIFICATION_KEY}={level!r}; use one of {', '.join(CLASSIFICATIONS)}")
    return out


def public_storage(resource: Resource, settings: Settings) -> list[str]:
    """No bucket, container or account that anyone on the internet may read or write."""
    p, t, label = resource.props, resource.type, resource.label()
    if t == "aws:s3/bucket:Bucket" and p.get("acl") in PUBLIC_S3_ACLS:
        return [f"{label} has the public ACL {p['acl']!r}: remove it (objects are shared through IAM)"]
    if t in ("aws:s3/bucketAclV2:BucketAclV2", "aws:s3/bucketAcl:BucketAcl") and p.get("acl") in PUBLIC_S3_ACLS:
        return [f"{label} makes its bucket public ({p['acl']!r}): remove it"]
    if t == "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock":
        off = [k for k in ("blockPublicAcls", "blockPublicPolicy", "ignorePublicAcls", "restrictPublicBuckets")
               if p.get(k) is not True]
        if off:
            return [f"{label} leaves {', '.join(off)} off: set all four to true"]
    if t == "aws:s3/bucketPolicy:BucketPolicy":
        doc = _document(p.get("policy")) or {}
        if any(s.get("Effect") == "Allow" and _public_principal(s.get("Principal")) and not s.get("Condition")
               for s in _as_list(doc.get("Statement")) if isinstance(s, Mapping)):
            return [f"{label} allows any principal ('*') without a condition: name the accounts or roles"]
    if t == "gcp:storage/bucket:Bucket" and p.get("publicAccessPrevention") != "enforced":
        return [f"{label} does not enforce public access prevention: set public_access_prevention='enforced'"]
    if t.startswith("gcp:storage/bucketIAM") or t.startswith("gcp:storage/bucketAccessControl"):
        members = [*_as_list(p.get("member")), *_as_list(p.get("members")), *_as_list(p.get("entity"))]
        if any(m in PUBLIC_MEMBERS for m in members):
            return [f"{label} grants {p.get('role')!r} to everyone ({', '.join(members)}): grant named members"]
    if t == "azure-native:storage:StorageAccount" and p.get("allowBlobPublicAccess") is not False:
        return [f"{label} may expose containers publicly: set allow_blob_public_access=False"]
    if t == "azure-native:storage:BlobContainer" and p.get("publicAccess") not in (None, "None"):
        return [f"{label} is public ({p['publicAccess']!r}): set public_access='None'"]
    return []


def public_functions(resource: Resource, settings: Settings) -> list[str]:
    """No function anyone may invoke (an HTTP start route is judged by :func:`public_http_trigger`)."""
    p, t, label = resource.props, resource.type, resource.label()
    if t == "aws:lambda/permission:Permission" and p.get("principal") == "*":
        return [f"{label} lets anyone invoke {p.get('function')!r}: name the invoking service and its source ARN"]
    if t == "aws:lambda/functionUrl:FunctionUrl" and p.get("authorizationType") == "NONE":
        return [f"{label} is an unauthenticated function URL: use authorization_type='AWS_IAM'"]
    if t.startswith(("gcp:cloudrunv2/serviceIam", "gcp:cloudfunctionsv2/functionIam", "gcp:cloudfunctions/functionIam",
                     "gcp:cloudrun/iam")):
        members = [*_as_list(p.get("member")), *_as_list(p.get("members"))]
        if any(m in PUBLIC_MEMBERS for m in members):
            return [f"{label} lets everyone invoke the function ({', '.join(members)}): grant named members"]
    return []


def public_http_trigger(resource: Resource, settings: Settings) -> list[str]:
    """An unauthenticated HTTP start endpoint: the documented exception (``Http(public=True)``), reported so
    that someone decides it on purpose."""
    p, t = resource.props, resource.type
    if (t == "aws:apigatewayv2/route:Route" and p.get("authorizationType") == "NONE") or (
            t == "aws:apigateway/method:Method" and p.get("authorization") == "NONE"):
        return [f"{resource.label()} starts runs without authentication: allowed only for Http(public=True); "
                "make sure this pipeline is meant to be started by anyone"]
    return []


def _aws_wildcards(document: Any) -> list[str]:
    doc = _document(document) or {}
    found = []
    for s in _as_list(doc.get("Statement")):
        if not isinstance(s, Mapping) or s.get("Effect") != "Allow":
            continue
        if "NotAction" in s:
            found.append(f"NotAction {s['NotAction']!r}")
        found += [a for a in _as_list(s.get("Action")) if isinstance(a, str) and "*" in a]
    return found


def wildcard_iam(resource: Resource, settings: Settings) -> list[str]:
    """No IAM grant of every action (``*``, ``s3:*``, ``s3:Get*``, NotAction; GCP basic roles; Azure Owner...)."""
    p, t, label = resource.props, resource.type, resource.label()
    if t in ("aws:iam/rolePolicy:RolePolicy", "aws:iam/policy:Policy", "aws:iam/userPolicy:UserPolicy",
             "aws:iam/groupPolicy:GroupPolicy"):
        found = _aws_wildcards(p.get("policy"))
        return [f"{label} allows wildcard actions {found}: list the actions the role needs"] if found else []
    if t == "aws:iam/role:Role":
        found = [w for inline in _as_list(p.get("inlinePolicies")) if isinstance(inline, Mapping)
                 for w in _aws_wildcards(inline.get("policy"))]
        return [f"{label} has inline wildcard actions {found}: list the actions the role needs"] if found else []
    if t.endswith(("PolicyAttachment:RolePolicyAttachment", "PolicyAttachment:PolicyAttachment")) and p.get(
            "policyArn") in AWS_WILDCARD_POLICIES:
        return [f"{label} attaches {p['policyArn']}, which allows (nearly) every action: attach a narrower policy"]
    if t.startswith("gcp:") and ("IAM" in t or "Iam" in t):
        role = p.get("role")
        if role in GCP_BASIC_ROLES or (isinstance(role, str) and role.endswith(".admin")):
            return [f"{label} grants {role!r}, every permission of its scope: grant a predefined role that "
                    "names what is needed"]
    if t == "azure-native:authorization:RoleAssignment":
        role_id = str(p.get("roleDefinitionId", "")).rsplit("/", 1)[-1]
        if role_id in AZURE_WILDCARD_ROLES:
            return [f"{label} assigns {AZURE_WILDCARD_ROLES[role_id]}, whose actions are '*': assign a role "
                    "that names what is needed"]
    if t == "azure-native:authorization:RoleDefinition":
        found = [a for perm in _as_list(p.get("permissions")) if isinstance(perm, Mapping)
                 for key in ("actions", "dataActions") for a in _as_list(perm.get(key)) if "*" in str(a)]
        return [f"{label} defines wildcard actions {found}: list the actions needed"] if found else []
    return []


def restricted_regions(resource: Resource, settings: Settings) -> list[str]:
    """``restricted`` data lives only in the configured regions."""
    if classification(resource) != "restricted":
        return []
    region = region_of(resource)
    if not settings.allowed_regions:
        return [f"{resource.label()} holds restricted data, and no allowedRegions are configured for "
                "strato-restricted-regions: configure where restricted data may live"]
    allowed = {r.replace(" ", "").lower() for r in settings.allowed_regions}
    if region is None:
        return [f"{resource.label()} holds restricted data in an unknown region: set the provider's region "
                f"explicitly (allowed: {', '.join(settings.allowed_regions)})"]
    if region not in allowed:
        return [f"{resource.label()} holds restricted data in {region!r}, outside the allowed regions "
                f"{', '.join(settings.allowed_regions)}: deploy this pipeline to one of them"]
    return []


def _needs_encryption(resource: Resource, settings: Settings) -> bool:
    level = classification(resource)
    threshold = settings.encrypt_from if settings.encrypt_from in CLASSIFICATIONS else "confidential"
    return level is not None and CLASSIFICATIONS.index(level) >= CLASSIFICATIONS.index(threshold)


def unencrypted_storage(resource: Resource, settings: Settings) -> list[str]:
    """Classified storage is encrypted in transit (HTTPS, TLS 1.2) and at rest with no opt-out.

    Cloud Storage always encrypts at rest (https://cloud.google.com/storage/docs/encryption) and Azure
    Storage cannot be turned unencrypted, so only what can be weakened is checked here; S3 buckets are
    judged with their encryption configuration by :func:`unencrypted_buckets`."""
    if not _needs_encryption(resource, settings):
        return []
    p, label = resource.props, resource.label()
    if resource.type == "azure-native:storage:StorageAccount":
        out = []
        if p.get("enableHttpsTrafficOnly") is False:
            out.append(f"{label} accepts plain HTTP: set enable_https_traffic_only=True")
        if p.get("minimumTlsVersion") in ("TLS1_0", "TLS1_1"):
            out.append(f"{label} accepts {p['minimumTlsVersion']}: set minimum_tls_version='TLS1_2'")
        return out
    if resource.type == "azure-native:web:WebApp" and p.get("httpsOnly") is not True:
        return [f"{label} accepts plain HTTP: set https_only=True"]
    return []


# --------------------------------------------------------------------------------------- stack rules
def _refers_to(resource: Resource, prop: str, target: Resource, *target_values: Any) -> bool:
    """Whether ``resource.<prop>`` is ``target``: by dependency when the engine says so, else by value."""
    if target.urn and target.urn in resource.refs.get(prop, ()):
        return True
    value = resource.props.get(prop)
    return value is not None and value in [v for v in target_values if v is not None]


def _uncovered(resources: Sequence[Resource], kinds: tuple[str, ...],
               wanted: Callable[[Resource], bool]) -> list[Resource]:
    """The S3 buckets no resource of one of ``kinds`` (type names) passing ``wanted`` refers to."""
    buckets = [r for r in resources if r.type == "aws:s3/bucket:Bucket"]
    helpers = [r for r in resources if r.type.split(":")[-1] in kinds and wanted(r)]
    return [b for b in buckets
            if not any(_refers_to(h, "bucket", b, b.props.get("bucket"), b.props.get("id")) for h in helpers)]


def unblocked_buckets(resources: Sequence[Resource], settings: Settings) -> list[tuple[Resource, str]]:
    """Every S3 bucket has a public access block (all four settings on)."""
    def complete(block: Resource) -> bool:
        return not public_storage(block, settings)

    return [(b, f"{b.label()} has no public access block with all four settings on: add an "
                f"aws.s3.BucketPublicAccessBlock for it")
            for b in _uncovered(resources, ("BucketPublicAccessBlock",), complete)]


def unencrypted_buckets(resources: Sequence[Resource], settings: Settings) -> list[tuple[Resource, str]]:
    """Every classified S3 bucket (from ``encrypt_from``) declares server-side encryption."""
    def encrypts(config: Resource) -> bool:
        return any(isinstance(r, Mapping) and (r.get("applyServerSideEncryptionByDefault") or {}).get(
            "sseAlgorithm") in S3_ALGORITHMS for r in _as_list(config.props.get("rules")))

    kinds = ("BucketServerSideEncryptionConfiguration", "BucketServerSideEncryptionConfigurationV2")
    return [(b, f"{b.label()} holds {classification(b)} data without a server-side encryption configuration: "
                "add an aws.s3.BucketServerSideEncryptionConfiguration (AES256 or aws:kms)")
            for b in _uncovered(resources, kinds, encrypts) if _needs_encryption(b, settings)]


# ---------------------------------------------------------------------------------------- the pack
@dataclass(frozen=True)
class Rule:
    name: str
    description: str
    level: str
    check: Callable[..., Any]
    stack: bool = False


RULES: tuple[Rule, ...] = (
    Rule("strato-required-tags", "Every taggable resource carries the pipeline's governance tags "
         "(owner, data-classification by default).", MANDATORY, missing_tags),
    Rule("strato-no-public-storage", "No bucket, container or storage account open to the internet.", MANDATORY,
         public_storage),
    Rule("strato-s3-public-access-blocked", "Every S3 bucket has a complete public access block.", MANDATORY,
         unblocked_buckets, stack=True),
    Rule("strato-no-public-functions", "No function anyone may invoke.", MANDATORY, public_functions),
    Rule("strato-public-http-trigger", "An unauthenticated HTTP start route exists (Http(public=True)).", ADVISORY,
         public_http_trigger),
    Rule("strato-no-wildcard-iam", "No IAM grant of every action (wildcards, NotAction, basic/Owner roles).",
         MANDATORY, wildcard_iam),
    Rule("strato-restricted-regions", "Restricted data lives only in the configured regions.", MANDATORY,
         restricted_regions),
    Rule("strato-encryption-required", "Classified storage is encrypted in transit and at rest.", MANDATORY,
         unencrypted_storage),
    Rule("strato-s3-encryption-required", "Classified S3 buckets declare server-side encryption.", MANDATORY,
         unencrypted_buckets, stack=True),
)


def evaluate(resources: Iterable[Resource], settings: Settings | None = None,
             rules: Sequence[Rule] = RULES) -> list[Finding]:
    """Every violation of ``rules`` in a deployment, in rule order."""
    settings = settings or Settings()
    resources = list(resources)
    found: list[Finding] = []
    for rule in rules:
        if rule.stack:
            found += [Finding(rule.name, rule.level, r.label(), m) for r, m in rule.check(resources, settings)]
        else:
            found += [Finding(rule.name, rule.level, r.label(), m) for r in resources for m in rule.check(r, settings)]
    return found
