"""Strato's Pulumi policy pack (``pulumi-policy``): the rules in :mod:`.rules` are plain functions of the
resources a deployment creates; :mod:`.pack` turns them into the pack ``pulumi preview --policy-pack``
runs (the folder holding this file, ``python -m strato.infra.policy --path``)."""

from __future__ import annotations

from .rules import ADVISORY, MANDATORY, RULES, Finding, Resource, Rule, Settings, evaluate

__all__ = ["ADVISORY", "MANDATORY", "RULES", "Finding", "Resource", "Rule", "Settings", "evaluate"]
