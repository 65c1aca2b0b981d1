"""Pipeline registry: one pipeline per stage of the paper, plus `unlearn` that chains them."""

from kedro.framework.project import find_pipelines
from kedro.pipeline import Pipeline

# The stages of ReLearn in order; `unlearn` is their sum, in this order.
STAGES = ("ingest", "target", "augment", "verify", "finetune", "evaluate")


def register_pipelines() -> dict[str, Pipeline]:
    """Register every pipeline folder, plus `unlearn` (all stages) as the default."""
    pipelines = find_pipelines(raise_errors=True)
    stages = [pipelines[name] for name in STAGES if name in pipelines]
    pipelines["unlearn"] = sum(stages, Pipeline([]))
    pipelines["__default__"] = pipelines["unlearn"]
    return pipelines
