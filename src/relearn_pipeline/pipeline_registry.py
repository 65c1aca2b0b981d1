"""Pipeline registry: one pipeline per stage of the paper, plus `unlearn` that chains them."""

from importlib import import_module

from kedro.pipeline import Pipeline

# The stages of ReLearn in order; `unlearn` is their sum, in this order.
STAGES = ("ingest", "target", "augment", "verify", "finetune", "evaluate")
# Pipelines that are not a stage of `unlearn`.
EXTRAS = ("compare",)


def register_pipelines() -> dict[str, Pipeline]:
    """Every stage and extra by name, `unlearn` (all stages) and `__default__` (= `unlearn`).

    The modules are imported by name rather than through `kedro.framework.project.find_pipelines`:
    since Kedro 1.7 that imports only the folders named on the command line, so a composite name
    such as `kedro run --pipelines unlearn` would find no folder and fail.
    """
    pipelines = {
        name: import_module(f"relearn_pipeline.pipelines.{name}").create_pipeline() for name in STAGES + EXTRAS
    }
    pipelines["unlearn"] = sum((pipelines[name] for name in STAGES), Pipeline([]))
    pipelines["__default__"] = pipelines["unlearn"]
    return pipelines
