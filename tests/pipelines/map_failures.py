"""Maps over computed lists whose items fail: the run fails with the item's own error everywhere."""

from strato import Catch, pipeline, task


@task
def numbers(n: int) -> list[int]:
    return list(range(n))

@task
def check(x: int) -> int:
    if x == 3:
        raise ValueError(f"item {x} is bad")
    return x * 2

def soften(error: dict) -> int:
    return -1

@task(catch=Catch(handler=soften, on=("KeyError",)))
def check_caught(x: int) -> int:
    if x == 2:
        raise KeyError("two")
    if x == 4:
        raise ValueError("four")
    return x

@pipeline
def failing_map(n: int = 6):
    return check.map(numbers(n))

@pipeline
def caught_map(n: int = 6):
    return check_caught.map(numbers(n))

@pipeline
def fine_map(n: int = 3):
    return check.map(numbers(n))
