"""Pulumi components that deploy compiled pipelines (``pulumi up``): one folder per cloud.

Components take a pipeline, compile it with the cloud's adapter, and create what the artifacts
need, with least privilege: every IAM statement names the resources it is for.
"""
