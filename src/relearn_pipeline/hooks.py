"""Project hooks: name and tag the MLflow run that kedro-mlflow opens for each `kedro run`."""

from __future__ import annotations

import logging
import subprocess
from pathlib import Path
from typing import Any

import mlflow
from kedro.framework.hooks import hook_impl
from kedro.io import DataCatalog
from kedro.pipeline import Pipeline

from relearn_pipeline.pipeline_registry import EXTRAS, STAGES

logger = logging.getLogger(__name__)

# The dataset a run trains (finetune writes it) or measures (evaluate reads it): a run that touches
# it depends on the unlearning method, so its name and tags carry the method.
ADAPTER = "unlearned_adapter"
# The tag that names the method of a run; `compare` reads it when the run has no such parameter
# (kedro-mlflow logs only the parameters a run's own nodes take, and evaluate's take none of it).
METHOD_TAG = "finetune.method"


class RunNamingHook:
    """Names each run `<pipeline>-<method>-<dataset>`, tags it (method, dataset, git commit, model
    spec), logs the resolved parameters."""

    @hook_impl(trylast=True)  # after kedro-mlflow's own before_pipeline_run has started the run
    def before_pipeline_run(self, run_params: dict[str, Any], pipeline: Pipeline, catalog: DataCatalog) -> None:
        if mlflow.active_run() is None:
            return
        pipelines = run_params.get("pipeline_names") or [run_params.get("pipeline_name") or "__default__"]
        if isinstance(pipelines, str):
            pipelines = [pipelines]
        name = run_label(pipelines)
        method = run_method(pipeline, catalog)
        dataset = str(_param(catalog, "dataset_name", ""))
        mlflow.set_tag("mlflow.runName", "-".join(p for p in (name, method, dataset) if p))
        mlflow.set_tags(
            {
                "model_spec": str(_param(catalog, "base_model", "")),
                "dataset_name": dataset,
                **({METHOD_TAG: method} if method else {}),
                **_git_tags(Path(run_params.get("project_path") or ".")),
            }
        )
        # The resolved parameters (after --params and environment overrides) as one artifact, so a
        # run can be reproduced from MLflow alone. Parameters hold no secrets (credentials.yml does;
        # the parameter validation rejects keys that look like secrets).
        if "parameters" in catalog:
            mlflow.log_dict(catalog.load("parameters"), "config/parameters.yml")


def run_method(pipeline: Pipeline, catalog: DataCatalog) -> str:
    """The unlearning method whose adapter this run trains or measures; "" when it touches none.

    A run that trains the adapter uses the `finetune.method` parameter. A run that only reads it
    (`--pipeline evaluate`) measures the adapter already on disk, whose record names the method it
    was trained with: after a sweep that is the last method swept, whatever the parameter says now.
    """
    if ADAPTER in pipeline.all_outputs():
        return str(_param(catalog, "finetune.method", ""))
    if ADAPTER not in pipeline.all_inputs():
        return ""
    configured = str(_param(catalog, "finetune.method", ""))
    if ADAPTER not in catalog or not catalog.exists(ADAPTER):
        return configured  # the run will fail on the missing adapter, with its own message
    trained = str(catalog.load(ADAPTER).metadata.get("method") or configured)
    if trained != configured:
        logger.warning(
            "The adapter on disk was trained with %r, not the configured finetune.method %r: this run "
            "measures %r and is tagged so.", trained, configured, trained,
        )
    return trained


def run_label(pipelines: list[str]) -> str:
    """`finetune+evaluate` for the pipelines of a run, in the order of the stages whatever order the
    command line (or Kedro, which may hand them over as a set) gives them; `__default__` is `unlearn`."""
    names = {"unlearn" if p == "__default__" else p for p in pipelines}
    order = {name: i for i, name in enumerate(("unlearn", *STAGES, *EXTRAS))}
    return "+".join(sorted(names, key=lambda p: (order.get(p, len(order)), p)))


def _param(catalog: DataCatalog, dotted: str, default: Any) -> Any:
    """A parameter's value from the catalog (`params:a.b`), or ``default`` when it is not defined."""
    head, *rest = dotted.split(".")
    key = f"params:{head}"
    if key not in catalog:
        return default
    value = catalog.load(key)
    for part in rest:
        if not isinstance(value, dict) or part not in value:
            return default
        value = value[part]
    return value


def _git_tags(project_path: Path) -> dict[str, str]:
    """The commit the code ran at, and whether uncommitted changes were present."""
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=project_path, capture_output=True, text=True, check=True, timeout=10
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=project_path, capture_output=True, text=True, check=True, timeout=10,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return {}
    return {"git_commit": commit, "git_dirty": str(bool(dirty)).lower()}


class ParameterValidationHook:
    """Checks every parameter block against ``relearn_pipeline.params`` before any node runs.

    Runs first among the ``before_pipeline_run`` hooks (before kedro-mlflow opens a run), on the
    parameters as merged with ``--params``, and raises one ``params.ParameterError`` that lists every
    bad field as ``parameters_<stage>.yml: <stage>.<field>: <problem>``.
    """

    @hook_impl(tryfirst=True)
    def before_pipeline_run(self, run_params: dict[str, Any], pipeline: Pipeline, catalog: DataCatalog) -> None:
        from relearn_pipeline.params import SHARED_KEYS, STAGE_MODELS, validate_parameters

        params = {}
        for name in (*SHARED_KEYS, *STAGE_MODELS):
            if f"params:{name}" in catalog:
                params[name] = catalog.load(f"params:{name}")
        validate_parameters(params, run_params.get("runtime_params") or {})
