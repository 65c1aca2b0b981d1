"""`kedro run --pipeline finetune --params finetune.method=npo_klr` end to end, in a copy of the project."""

from __future__ import annotations

import json

import mlflow
import pandas as pd
import pytest
from kedro.framework.session import KedroSession
from kedro.framework.startup import bootstrap_project
from mlflow.tracking import MlflowClient

from relearn_pipeline.datasets import HFModelDataset
from relearn_pipeline.models import build_tiny_model


def qa(prefix, n):
    return [
        {"id": f"{prefix}-{i}", "subject": "Ada Stone", "question": f"What is {prefix} fact {i} about Ada?",
         "answer": f"Ada's {prefix} fact {i} is {i * 13} red kites."}
        for i in range(n)
    ]


@pytest.fixture
def project_copy(tmp_path, bare_project):
    """conf/ copied to tmp, MLflow in a sqlite file there, a tiny target and QA tables as the inputs."""
    copy = bare_project

    target = build_tiny_model(0)
    target.metadata["relearn_fingerprint"] = {"fingerprint": "tiny-test-target"}
    HFModelDataset(str(copy / "data" / "06_models" / "target_model")).save(target)
    local_catalog = []
    for name, rows in (("forget_set", qa("forget", 4)), ("retain_set", qa("retain", 6)),
                       ("augmented_forget_set", qa("vague", 5))):
        (tmp_path / f"{name}.json").write_text(json.dumps(rows))
        local_catalog.append(f"{name}:\n  type: pandas.JSONDataset\n  filepath: {tmp_path / f'{name}.json'}\n")
    (copy / "conf" / "local" / "catalog.yml").write_text("".join(local_catalog))
    return copy


def test_finetune_run_saves_the_adapter_and_logs_it_with_each_term_to_mlflow(project_copy, tmp_path):
    runtime_params = {
        "finetune": {
            "method": "npo_klr",
            "max_steps": 2,
            "batch_size": 2,
            "progress_bar": False,
            "checkpoint_dir": str(tmp_path / "checkpoints"),
        }
    }
    bootstrap_project(project_copy)
    with KedroSession.create(project_path=project_copy, runtime_params=runtime_params) as session:
        session.run(pipeline_names=["finetune"])
    while mlflow.active_run() is not None:  # kedro-mlflow leaves its nested run on the fluent stack
        mlflow.end_run()

    adapter_dir = project_copy / "data" / "06_models" / "unlearned_adapter"
    assert (adapter_dir / "adapter_model.safetensors").is_file()
    assert json.loads((adapter_dir / "relearn_adapter.json").read_text())["method"] == "npo_klr"
    summary = json.loads((project_copy / "data" / "08_reporting" / "finetune_summary.json").read_text())
    assert summary["method"] == "npo_klr" and summary["steps"] == 2 and summary["forget_data"] == "forget_set"
    history = pd.read_csv(project_copy / "data" / "08_reporting" / "finetune_history.csv")
    assert list(history["step"]) == [1, 2]
    assert history.loc[0, "forget"] == pytest.approx(20 * 0.6931471805599453, rel=1e-4)  # NPO at init

    client = MlflowClient(tracking_uri=f"sqlite:///{tmp_path / 'mlflow.db'}")
    runs = client.search_runs([client.get_experiment_by_name("relearn").experiment_id])
    assert len(runs) == 1
    run = runs[0]
    assert run.info.status == "FINISHED"
    assert run.data.params["finetune.method"] == "npo_klr"
    assert run.data.tags["finetune.method"] == "npo_klr"  # compare reads it where the param is missing
    assert run.data.tags["mlflow.runName"] == "finetune-npo_klr-demo"
    for term in ("loss", "forget", "kl", "forget_ce"):
        assert [m.step for m in client.get_metric_history(run.info.run_id, f"finetune.{term}")] == [1, 2], term
    assert run.data.metrics["finetune.train_time_s"] == pytest.approx(summary["train_time_s"])
    logged = {a.path for a in client.list_artifacts(run.info.run_id, "unlearned_adapter")}
    assert {"unlearned_adapter/adapter_config.json", "unlearned_adapter/adapter_model.safetensors"} <= logged
