"""A restricted pipeline with a public HTTP start route, deployed by the policy pack tests."""

from strato import Http, pipeline, task


@task
def score(customer: str) -> dict:
    return {"customer": customer}


@pipeline(triggers=[Http(path="/score", auth="none", public=True)], tags={"data-classification": "restricted"})
def scoring(customer: str = "c"):
    return score(customer)
