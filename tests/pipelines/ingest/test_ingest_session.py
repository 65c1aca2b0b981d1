"""`kedro run --pipeline ingest` on the demo data, through a KedroSession on a copy of the project."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import mlflow
import pandas as pd
from kedro.framework.session import KedroSession
from kedro.framework.startup import bootstrap_project

from relearn_pipeline.pipelines.ingest.nodes import SPLITS

PROJECT = Path(__file__).resolve().parents[3]


def test_ingest_runs_on_the_demo_data_in_a_session(tmp_path, monkeypatch):
    # A copy of the project, so outputs and the MLflow sqlite store land in tmp, never in data/.
    root = tmp_path / "project"
    shutil.copytree(PROJECT / "conf" / "base", root / "conf" / "base")
    (root / "conf" / "local").mkdir()
    shutil.copytree(PROJECT / "data" / "01_raw" / "demo", root / "data" / "01_raw" / "demo")
    shutil.copy(PROJECT / "pyproject.toml", root / "pyproject.toml")
    (root / "src").mkdir()  # the package itself is imported from the installed project
    real_data_before = _snapshot(PROJECT / "data")
    monkeypatch.chdir(root)  # mlflow.yml's sqlite:///mlflow.db is relative to the working dir

    bootstrap_project(root)
    with KedroSession.create(project_path=root) as session:
        session.run(pipeline_name="ingest")

    primary = root / "data" / "03_primary"
    forget = pd.read_parquet(primary / "forget_set.parquet")
    retain = pd.read_parquet(primary / "retain_set.parquet")
    full = pd.read_parquet(primary / "full_set.parquet")
    spans = pd.read_parquet(primary / "sensitive_spans.parquet")
    demo = json.loads((root / "data/01_raw/demo/full.json").read_text(encoding="utf-8"))
    forget_eval = pd.read_parquet(primary / "forget_eval_set.parquet")
    retain_eval = pd.read_parquet(primary / "retain_eval_set.parquet")
    # like KnowUnDo's full.json, the demo's holds every split, eval questions included
    assert len(full) == len(demo) == len(forget) + len(retain) + len(forget_eval) + len(retain_eval)
    assert set(spans["record_id"]) <= set(forget["id"])
    report = json.loads((root / "data/08_reporting/ingest_report.json").read_text())
    assert report["splits"]["full"]["built_from"] == "raw_full"
    assert report["sensitive_spans"]["total"] == len(spans)
    assert _snapshot(PROJECT / "data") == real_data_before

    client = mlflow.MlflowClient(tracking_uri=f"sqlite:///{root / 'mlflow.db'}")
    runs = client.search_runs(client.get_experiment_by_name("relearn").experiment_id)
    assert len(runs) == 1
    logged = [a.path for a in client.list_artifacts(runs[0].info.run_id, "ingest")]
    assert logged == ["ingest/ingest_report.json"]


def _snapshot(folder: Path) -> dict[str, float]:
    """The ingest outputs under a project's `data/` folder, with their modification times."""
    names = [f"{split}_set" for split in SPLITS] + ["sensitive_spans"]
    outputs = [folder / f"03_primary/{name}.parquet" for name in names]
    outputs.append(folder / "08_reporting/ingest_report.json")
    return {str(p): p.stat().st_mtime for p in outputs if p.is_file()}
