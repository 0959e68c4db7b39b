"""Pipelines checked by shared governance policies."""

from strato import AllowedValues, RequireTags, pipeline, policy, task

TEAM_POLICIES = [RequireTags("owner", "data-classification"),
                 AllowedValues("data-classification", ["public", "internal"])]


@policy
def no_public_writes(p):
    for t in p.tasks.values():
        if t.tags.get("data-classification") != "public" and any(w.startswith("s3://public/") for w in t.writes):
            yield f"task {t.name!r} writes {t.tags.get('data-classification')} data to a public bucket"


@task(writes=["s3://public/report.csv"], tags={"data-classification": "confidential"})
def publish(x: int) -> int:
    return x


@task(tags={"data-classification": "public"})
def lower(x: int) -> int:
    return x


@pipeline(tags={"data-classification": "internal"}, policies=[*TEAM_POLICIES, no_public_writes])
def governed(x: int = 1):
    publish(x)
    return lower(x)


@pipeline(tags={"owner": "data-eng", "data-classification": "internal"})
def compliant(x: int = 1):
    return lower.alias("step")(x)
