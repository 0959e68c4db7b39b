"""A pipeline that fails: for exit codes and error reporting."""

from strato import Retry, pipeline, task


@task(retry=Retry(max_retries=1, delay=0.01))
def divide(a: int, b: int) -> float:
    return a / b


@pipeline
def failing(a: int = 1, b: int = 0):
    return {"ratio": divide(a, b)}
