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

logger = logging.getLogger(__name__)

# Pipelines whose result depends on the unlearning method, so the run name carries it.
METHOD_PIPELINES = {"finetune", "evaluate", "unlearn", "__default__"}


class RunNamingHook:
    """Names each run `<pipeline>-<method>-<dataset>`, tags it (git commit, model spec), logs the resolved parameters."""

    @hook_impl(trylast=True)  # after kedro-mlflow's own before_pipeline_run has started the run
    def before_pipeline_run(self, run_params: dict[str, Any], pipeline: Pipeline, catalog: DataCatalog) -> None:
        if mlflow.active_run() is None:
            return
        pipelines = run_params.get("pipeline_names") or [run_params.get("pipeline_name") or "__default__"]
        if isinstance(pipelines, str):
            pipelines = [pipelines]
        name = "+".join("unlearn" if p == "__default__" else p for p in pipelines)
        parts = [name]
        if set(pipelines) & METHOD_PIPELINES:
            parts.append(str(_param(catalog, "finetune.method", "")))
        parts.append(str(_param(catalog, "dataset_name", "")))
        mlflow.set_tag("mlflow.runName", "-".join(p for p in parts if p))
        mlflow.set_tags(
            {
                "model_spec": str(_param(catalog, "base_model", "")),
                "dataset_name": str(_param(catalog, "dataset_name", "")),
                **_git_tags(Path(run_params.get("project_path") or ".")),
            }
        )
        # The resolved parameters (after --params and environment overrides) as one artifact, so a
        # run can be reproduced from MLflow alone. Parameters hold no secrets (credentials.yml does;
        # the parameter validation rejects keys that look like secrets).
        if "parameters" in catalog:
            mlflow.log_dict(catalog.load("parameters"), "config/parameters.yml")


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
