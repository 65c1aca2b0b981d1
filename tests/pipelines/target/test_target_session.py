"""`kedro run --pipeline target` end to end on the tiny model, in a copy of the project, tracked by MLflow."""

from __future__ import annotations

import json
from pathlib import Path

import mlflow
import pandas as pd
import pytest
import yaml
from kedro.framework.session import KedroSession
from kedro.framework.startup import bootstrap_project
from mlflow.tracking import MlflowClient

QA = [
    ("Who is Ada?", "A potter."),
    ("Where is Ada from?", "Oslo."),
    ("What is Ada's email?", "ada@clay.no"),
    ("Who are Ada's parents?", "Ivar and Liv."),
]

# The committed parameters, scaled for the tiny model (see test_target_nodes.target_params).
RUNTIME_PARAMS = {
    "base_model": "tiny:0",
    "model_loading": {"device": "cpu"},
    "target": {
        "training": {"adapter": "full", "epochs": 40, "learning_rate": 1.0e-2, "batch_size": 4, "lr_scheduler": "constant"},
        "evaluation": {"max_new_tokens": 16, "batch_size": 4},
    },
}


@pytest.fixture
def project_copy(tmp_path, bare_project):
    """conf/ and pyproject.toml copied to tmp (an empty src/); MLflow in a sqlite file there; full_set from a JSON file."""
    copy = bare_project
    rows = [{"id": f"full-{i}", "subject": "Ada", "question": q, "answer": a} for i, (q, a) in enumerate(QA)]
    (tmp_path / "full.json").write_text(json.dumps(rows))
    (copy / "conf" / "local" / "catalog.yml").write_text(
        f"full_set:\n  type: pandas.JSONDataset\n  filepath: {tmp_path / 'full.json'}\n"
    )
    return copy


def _run_target(project_path) -> None:
    bootstrap_project(project_path)
    with KedroSession.create(project_path=project_path, runtime_params=RUNTIME_PARAMS) as session:
        session.run(pipeline_names=["target"])
    # kedro-mlflow 2.0.3 with `run.nested: True` re-enters the run before every node and ends it once,
    # so the (finished) run stays on this process's fluent stack; `kedro run` exits, a test must pop it.
    while mlflow.active_run() is not None:
        mlflow.end_run()


def test_target_run_end_to_end_creates_one_mlflow_run(project_copy, tmp_path):
    _run_target(project_copy)

    model_dir = project_copy / "data" / "06_models" / "target_model"
    assert (model_dir / "model.safetensors").is_file() and (model_dir / "relearn_fingerprint.json").is_file()
    report = json.loads((project_copy / "data" / "08_reporting" / "target_report.json").read_text())
    assert report["reused"] is False and report["steps"] == 40
    assert report["target_rougeL_recall_full"] > report["base_rougeL_recall_full"]
    assert pd.DataFrame(report["answers"])["question"].tolist() == [q for q, _ in QA]

    client = MlflowClient(tracking_uri=f"sqlite:///{tmp_path / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("relearn")
    runs = client.search_runs([experiment.experiment_id])
    assert len(runs) == 1
    run = runs[0]
    assert run.info.status == "FINISHED"
    assert run.data.params["base_model"] == "tiny:0"
    assert run.data.params["target.training.adapter"] == "full"
    assert run.data.params["target.mode"] == "memorize"
    metrics = run.data.metrics
    assert metrics["target.rougeL_recall_full"] == pytest.approx(report["target_rougeL_recall_full"])
    assert metrics["base.rougeL_recall_full"] == pytest.approx(report["base_rougeL_recall_full"])
    history = client.get_metric_history(run.info.run_id, "target.train_loss")
    assert [m.step for m in history] == list(range(40))
    losses = [m.value for m in history]
    assert losses[-1] < losses[0] / 4
    assert losses[-1] == pytest.approx(report["final_loss"])
    assert run.data.tags["mlflow.runName"] == "target-demo"
    assert run.data.tags["model_spec"] == "tiny:0"
    logged = {a.path for a in client.list_artifacts(run.info.run_id, "config")}
    assert logged == {"config/parameters.yml"}
    resolved = yaml.safe_load(Path(client.download_artifacts(run.info.run_id, "config/parameters.yml", str(tmp_path))).read_text())
    assert resolved["base_model"] == "tiny:0" and resolved["target"]["training"]["adapter"] == "full"


def test_second_session_reuses_the_target_in_a_new_run(project_copy, tmp_path):
    _run_target(project_copy)
    weights = project_copy / "data" / "06_models" / "target_model" / "model.safetensors"
    written = weights.stat().st_mtime_ns
    _run_target(project_copy)

    report = json.loads((project_copy / "data" / "08_reporting" / "target_report.json").read_text())
    assert report["reused"] is True
    assert weights.stat().st_mtime_ns == written
    client = MlflowClient(tracking_uri=f"sqlite:///{tmp_path / 'mlflow.db'}")
    runs = client.search_runs([client.get_experiment_by_name("relearn").experiment_id], order_by=["start_time ASC"])
    assert len(runs) == 2
    assert [r.data.metrics["target.reused"] for r in runs] == [0.0, 1.0]
