"""Tasks that print, write to stderr and log: for task logs and a clean ``--json``."""

import logging
import sys

from strato import Retry, Secret, pipeline, task

log = logging.getLogger("chatty")


@task
def greet(n: int) -> int:
    print(f"hello {n}")
    print(f"warning {n}", file=sys.stderr)
    log.info("info record %d", n)
    log.debug("debug record %d", n)
    return n * 2


@task(retry=Retry(max_retries=1, delay=0))
def use_token(token: str) -> int:
    print(f"calling the API with {token}")
    log.warning("token is %s", token)
    raise PermissionError(f"rejected {token}")


@pipeline
def chatty(count: int = 3):
    print("printed while tracing")
    return greet.map([1, 2, 3])


@pipeline
def leaky():
    return use_token(Secret("api-token"))
