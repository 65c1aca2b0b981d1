"""Run the finetune stage from the project's saved inputs, in one process or data-parallel.

    torchrun --nproc_per_node 2 -m relearn_pipeline.unlearning.launch --params finetune.method=npo_klr
    accelerate launch --multi_gpu --num_processes 2 -m relearn_pipeline.unlearning.launch   # GPUs
    python -m relearn_pipeline.unlearning.launch            # one process, same as the Kedro node

Every process loads ``target_model``, ``augmented_forget_set``, ``forget_set``, ``retain_set`` and
``params:finetune`` from the Kedro catalog (so run ``augment``/``verify`` first) and trains its shard
of each batch with the same code as the ``finetune`` node; only rank 0 saves ``unlearned_adapter``,
``finetune_history``, ``finetune_summary`` and the MLflow metrics (in an MLflow run of its own).
See docs/scale_out.md.
"""

from __future__ import annotations

import argparse
import logging
import sys
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import Any

from kedro.io import DataCatalog

from relearn_pipeline.pipelines.finetune.nodes import check_finetune_params, finetune_adapter, finetune_metrics

logger = logging.getLogger(__name__)

INPUTS = ("target_model", "augmented_forget_set", "forget_set", "retain_set")


def run_finetune_stage(catalog: DataCatalog, mlflow_run: bool = False) -> dict[str, Any] | None:
    """Train with the catalog's inputs and params; rank 0 saves the outputs and returns the summary."""
    from accelerate import PartialState

    config = check_finetune_params(catalog.load("params:finetune"), catalog.load("params:seed"))
    inputs = [catalog.load(name) for name in INPUTS]
    adapter, history, summary = finetune_adapter(*inputs, config)
    if not PartialState().is_main_process:
        return None
    run_name = f"finetune-{config.method}-x{summary['world_size']}"
    with _mlflow_run(run_name, catalog.load("params:finetune")) if mlflow_run else nullcontext():
        catalog.save("unlearned_adapter", adapter)
        catalog.save("finetune_history", history)
        catalog.save("finetune_summary", summary)
        if mlflow_run:
            catalog.save("finetune_metrics", finetune_metrics(history, summary))
    logger.info("finetune (%s, %d processes) done: %s", config.method, summary["world_size"], summary["train_time_s"])
    return summary


@contextmanager
def _mlflow_run(name: str, params: dict[str, Any]):
    """An MLflow run with the stage's params logged as ``finetune.<key>``, like kedro-mlflow does."""
    import mlflow

    with mlflow.start_run(run_name=name) as run:
        mlflow.log_params({f"finetune.{key}": value for key, value in _flatten(params).items()})
        yield run


def _flatten(values: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    flat = {}
    for key, value in values.items():
        if isinstance(value, dict):
            flat.update(_flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def parse_params(items: str) -> dict[str, Any]:
    """``a.b=1,c=x`` -> nested dict, the way ``kedro run --params`` reads it."""
    from omegaconf import OmegaConf

    dot_list = [item.strip() for item in items.split(",") if item.strip()] if items else []
    bad = [item for item in dot_list if "=" not in item]
    if bad:
        raise SystemExit(f"--params: {bad} must be key=value (e.g. finetune.method=npo_klr)")
    return OmegaConf.to_container(OmegaConf.from_dotlist(dot_list))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--project-dir", default=".", help="the Kedro project folder (default: here)")
    parser.add_argument("--env", default=None, help="Kedro config environment (default: local)")
    parser.add_argument("--params", default="", help="runtime params, e.g. finetune.method=npo_klr,finetune.epochs=1")
    parser.add_argument("--no-mlflow", action="store_true", help="do not open an MLflow run on rank 0")
    options = parser.parse_args(argv)

    from kedro.framework.session import KedroSession
    from kedro.framework.startup import bootstrap_project

    project = Path(options.project_dir).resolve()
    bootstrap_project(project)
    params = parse_params(options.params)
    with KedroSession.create(project_path=project, env=options.env, runtime_params=params) as session:
        context = session.load_context()  # kedro-mlflow's hook points MLflow at the project's store here
        run_finetune_stage(context.catalog, mlflow_run=not options.no_mlflow)
    return 0


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    sys.exit(main())
