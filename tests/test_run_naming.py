"""hooks.RunNamingHook on the project's real pipelines: the run name and the method/dataset tags
that `compare` relies on, for runs that train the adapter, only measure it, or never touch it."""

from __future__ import annotations

import json

import mlflow
import pytest
import yaml
from kedro.io import DataCatalog
from mlflow.tracking import MlflowClient

from relearn_pipeline.datasets import MlflowRunsDataset, PeftAdapterDataset
from relearn_pipeline.hooks import RunNamingHook, run_label
from relearn_pipeline.pipelines import evaluate, finetune, target
from relearn_pipeline.pipelines.compare.nodes import select_method_runs


@pytest.fixture
def tracking(tmp_path):
    """A fresh sqlite store as the fluent API's tracking URI (restored afterwards)."""
    previous = mlflow.get_tracking_uri()
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    mlflow.set_tracking_uri(uri)
    mlflow.create_experiment("relearn", artifact_location=str(tmp_path / "artifacts"))  # not ./mlruns in the cwd
    mlflow.set_experiment("relearn")
    yield uri
    while mlflow.active_run() is not None:
        mlflow.end_run()
    mlflow.set_tracking_uri(previous)


def _catalog(tmp_path, method: str, adapter_method: str | None) -> DataCatalog:
    """Parameters as `kedro run` resolves them, and the adapter dataset (on disk when ``adapter_method``)."""
    adapter_dir = tmp_path / "unlearned_adapter"
    if adapter_method:
        adapter_dir.mkdir()
        (adapter_dir / "adapter_config.json").write_text("{}")
        (adapter_dir / "relearn_adapter.json").write_text(json.dumps({"method": adapter_method}))
    catalog = DataCatalog()
    catalog["unlearned_adapter"] = PeftAdapterDataset(path=str(adapter_dir))
    catalog["params:finetune"] = {"method": method}
    catalog["params:dataset_name"] = "demo"
    catalog["params:base_model"] = "tiny:0"
    return catalog


def _tagged_run(tmp_path, pipelines: list[str], pipeline, catalog) -> mlflow.entities.Run:
    with mlflow.start_run() as run:
        RunNamingHook().before_pipeline_run(
            run_params={"pipeline_names": pipelines, "project_path": str(tmp_path)}, pipeline=pipeline, catalog=catalog
        )
    return MlflowClient(mlflow.get_tracking_uri()).get_run(run.info.run_id)


def test_evaluate_only_run_is_tagged_with_the_method_of_the_adapter_it_measures(tracking, tmp_path):
    # After a sweep the adapter on disk is the last method's; the parameter still says the default.
    catalog = _catalog(tmp_path, method="relearn_klr_gdr", adapter_method="npo_klr")
    run = _tagged_run(tmp_path, ["evaluate"], evaluate.create_pipeline(), catalog)
    assert run.data.tags["finetune.method"] == "npo_klr"
    assert run.data.tags["dataset_name"] == "demo"
    assert run.data.tags["mlflow.runName"] == "evaluate-npo_klr-demo"


def test_a_run_that_trains_the_adapter_is_tagged_with_the_configured_method(tracking, tmp_path):
    catalog = _catalog(tmp_path, method="ga_gdr", adapter_method="npo_klr")  # about to be overwritten
    run = _tagged_run(tmp_path, ["finetune", "evaluate"], finetune.create_pipeline() + evaluate.create_pipeline(), catalog)
    assert run.data.tags["finetune.method"] == "ga_gdr"
    assert run.data.tags["mlflow.runName"] == "finetune+evaluate-ga_gdr-demo"


def test_evaluate_without_an_adapter_on_disk_falls_back_to_the_parameter(tracking, tmp_path):
    catalog = _catalog(tmp_path, method="ga_klr", adapter_method=None)
    run = _tagged_run(tmp_path, ["evaluate"], evaluate.create_pipeline(), catalog)
    assert run.data.tags["finetune.method"] == "ga_klr"


def test_a_run_without_the_adapter_has_a_dataset_tag_and_no_method(tracking, tmp_path):
    catalog = _catalog(tmp_path, method="ga_gdr", adapter_method="ga_gdr")
    run = _tagged_run(tmp_path, ["target"], target.create_pipeline(), catalog)
    assert "finetune.method" not in run.data.tags
    assert run.data.tags["dataset_name"] == "demo"
    assert run.data.tags["mlflow.runName"] == "target-demo"


def test_compare_places_an_evaluate_only_run_by_its_tag(tracking, tmp_path, project_root):
    params = yaml.safe_load((project_root / "conf/base/parameters_compare.yml").read_text())["compare"]
    catalog = _catalog(tmp_path, method="relearn_klr_gdr", adapter_method="npo_klr")
    with mlflow.start_run():
        RunNamingHook().before_pipeline_run(
            run_params={"pipeline_names": ["evaluate"]}, pipeline=evaluate.create_pipeline(), catalog=catalog
        )
        mlflow.log_metric("evaluate.after.kfr", 0.7)  # what evaluate logs; no fine-tune parameter
    runs = MlflowRunsDataset(experiment="relearn", tracking_uri=tracking).load()
    assert "params.finetune.method" not in runs
    assert list(select_method_runs(runs, params, "demo")["method"]) == ["npo_klr"]


def test_run_label_follows_the_stage_order_whatever_order_the_pipelines_come_in():
    # Kedro handed a sweep's `--pipelines finetune,evaluate` over as evaluate+finetune in some runs.
    assert run_label(["evaluate", "finetune"]) == run_label(["finetune", "evaluate"]) == "finetune+evaluate"
    assert run_label(["__default__"]) == "unlearn"
    assert run_label(["compare", "ingest", "mine"]) == "ingest+compare+mine"
