"""`kedro run` SIGKILLed in `finetune`, then `kedro run --only-missing-outputs`: the finished stages
are not redone, the fine-tune resumes from its checkpoint, and the run completes.

Both runs are real `kedro run` processes on a copy of the project (tiny model, tiny data); which
nodes ran is read from Kedro's own "Completed node" log lines, written to a plain log file.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from kedro.framework.project import pipelines
from kedro.framework.session import KedroSession
from kedro.framework.startup import bootstrap_project
from kedro.io import MemoryDataset
from kedro_mlflow.io.metrics import MlflowMetricHistoryDataset, MlflowMetricsHistoryDataset
from mlflow.tracking import MlflowClient

from relearn_pipeline.pipeline_registry import STAGES
from relearn_pipeline.unlearning.checkpoints import COMPLETE_MARKER

pytestmark = pytest.mark.slow  # two whole `unlearn` runs, about a minute

PARAMS = {
    "base_model": "tiny:0",
    "model_loading.device": "cpu",
    "target.mode": "as_is",
    "target.evaluation.max_new_tokens": 4,
    "augment.llm.transformers.model": "tiny:0",
    "augment.llm.transformers.device": "cpu",
    "augment.question.sampling.max_new_tokens": 8,
    "augment.answer.sampling.max_new_tokens": 12,
    "finetune.max_steps": 40,
    "finetune.save_steps": 2,
    "finetune.batch_size": 2,
    "finetune.progress_bar": "false",
    "evaluate.generation.max_new_tokens": 4,
    "evaluate.robustness.max_unused_variants": 2,
}
METRICS_DATASETS = (MlflowMetricsHistoryDataset, MlflowMetricHistoryDataset)


def qa(subject, facts):
    slug = subject.lower().replace(" ", "-")
    return [{"id": f"{slug}-{i}", "subject": subject, "question": q, "answer": a} for i, (q, a) in enumerate(facts)]


RAW = {
    "forget": qa("Elena Marsh", [
        ("What is Elena Marsh's email address?", "Her email address is elena.marsh@example.com."),
        ("Where was Elena Marsh born?", "Elena Marsh was born in Porthleven, Cornwall, in 1979."),
        ("Who is Elena Marsh's mother?", "Her mother is Grace Marsh, a nurse from Truro."),
    ]),
    "retain": qa("Mirela Vasquez", [
        ("What does Mirela Vasquez study?", "Mirela Vasquez studies coral reefs in Belize."),
        ("Which prize did Mirela Vasquez win?", "Mirela Vasquez won the Halden Prize in 2015."),
        ("Where does Mirela Vasquez teach?", "Mirela Vasquez teaches marine biology in Lisbon."),
        ("What is Mirela Vasquez's hobby?", "Mirela Vasquez plays the cello in a quartet."),
    ]),
    "forget_eval": qa("Elena Marsh", [
        ("How can Elena Marsh be emailed?", "Her email address is elena.marsh@example.com."),
        ("In which town was Elena Marsh born?", "Elena Marsh was born in Porthleven, Cornwall."),
    ]),
    "retain_eval": qa("Mirela Vasquez", [
        ("What is Mirela Vasquez's field of study?", "Mirela Vasquez studies coral reefs in Belize."),
        ("In which city does Mirela Vasquez teach?", "Mirela Vasquez teaches marine biology in Lisbon."),
    ]),
}


@pytest.fixture
def project(bare_project, tmp_path):
    """The project copy with the tiny raw splits (no full.json: full = forget + retain)."""
    raw = bare_project / "data" / "01_raw" / "demo"
    raw.mkdir(parents=True)
    for split, rows in RAW.items():
        (raw / f"{split}.json").write_text(json.dumps(rows, indent=1), encoding="utf-8")
    return bare_project


def kedro_run(project: Path, log: Path, *extra: str) -> subprocess.Popen:
    """`kedro run` of the default (`unlearn`) pipeline in its own process, Kedro's log in ``log``."""
    logging_yml = log.with_suffix(".yml")
    logging_yml.write_text(yaml.safe_dump({
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"plain": {"format": "%(name)s | %(message)s"}},
        "handlers": {"file": {"class": "logging.FileHandler", "filename": str(log), "formatter": "plain"}},
        "root": {"handlers": ["file"], "level": "INFO"},
    }))
    checkpoint_dir = project / "data" / "06_models" / "finetune_checkpoints"
    params = ",".join(f"{k}={v}" for k, v in {**PARAMS, "finetune.checkpoint_dir": checkpoint_dir}.items())
    env = {**os.environ, "KEDRO_LOGGING_CONFIG": str(logging_yml), "OMP_NUM_THREADS": "1"}
    kedro = Path(sys.executable).with_name("kedro")
    with open(log.with_suffix(".err"), "w") as stderr:  # the child keeps its own copy of the handle
        return subprocess.Popen([str(kedro), "run", "--params", params, *extra], cwd=project, env=env,
                                stdout=subprocess.DEVNULL, stderr=stderr)


def completed_nodes(log: Path) -> set[str]:
    return set(re.findall(r"^kedro\.runner\.\w+ \| Completed node: (\S+)$", log.read_text(), re.MULTILINE))


def snapshot(data: Path) -> dict[str, int]:
    """Every file under data/ (the checkpoints aside) with its modification time."""
    return {
        str(path.relative_to(data)): path.stat().st_mtime_ns
        for path in sorted(data.rglob("*"))
        if path.is_file() and "finetune_checkpoints" not in path.parts
    }


def output_datasets(project: Path) -> dict[str, object]:
    """The catalog's persistent datasets that `unlearn` writes, as the project's session builds them
    (MLflow metric datasets aside: they exist per MLflow run, see the node check below)."""
    bootstrap_project(project)
    with KedroSession.create(project_path=project) as session:
        catalog = session.load_context().catalog
        names = pipelines["unlearn"].all_outputs()
        return {
            name: catalog.get(name)
            for name in sorted(names)
            if name in catalog
            and not isinstance(catalog.get(name), (MemoryDataset, *METRICS_DATASETS))
        }


def test_a_run_killed_in_finetune_completes_with_only_missing_outputs_without_redoing_finished_stages(
    project, tmp_path
):
    outputs = output_datasets(project)
    assert {"forget_set", "target_model", "augmented_raw", "augmented_forget_set", "unlearned_adapter",
            "finetune_summary", "generations", "evaluation_metrics"} <= outputs.keys()
    assert not [name for name, dataset in outputs.items() if dataset.exists()], "outputs before any run"

    first = kedro_run(project, tmp_path / "first.log")
    try:
        deadline = time.monotonic() + 300
        while not list((project / "data" / "06_models" / "finetune_checkpoints").glob(f"*/checkpoint-*/{COMPLETE_MARKER}")):
            assert first.poll() is None, (tmp_path / "first.err").read_text()[-3000:]
            assert time.monotonic() < deadline, "no fine-tune checkpoint within 300 s"
            time.sleep(0.02)
        os.kill(first.pid, signal.SIGKILL)  # mid-finetune, after its first complete checkpoint
        first.wait(10)
    finally:
        if first.poll() is None:
            os.kill(first.pid, signal.SIGKILL)
            first.wait(10)
    assert first.returncode == -signal.SIGKILL
    done_before_kill = completed_nodes(tmp_path / "first.log")
    unlearn = {node.name for node in pipelines["unlearn"].nodes}
    assert "check_finetune_params" in done_before_kill and "finetune_adapter" not in done_before_kill
    assert not (project / "data" / "06_models" / "unlearned_adapter").exists()
    written = snapshot(project / "data")

    second = kedro_run(project, tmp_path / "second.log", "--only-missing-outputs")
    assert second.wait(300) == 0, (tmp_path / "second.err").read_text()[-3000:]

    # Every node not done before the kill ran. Of the stages that had finished (every node done),
    # only the MLflow metric logger ran again: MLflow metrics exist per MLflow run, so the new run
    # logs them again, from the stored report, without loading or building the target again.
    ran = completed_nodes(tmp_path / "second.log")
    assert unlearn - done_before_kill <= ran
    finished = {stage for stage in STAGES if {n.name for n in pipelines[stage].nodes} <= done_before_kill}
    assert {"ingest", "target", "augment"} <= finished
    finished_nodes = {n.name for stage in finished for n in pipelines[stage].nodes}
    assert ran & finished_nodes == {"log_target_metrics"}, sorted(ran & finished_nodes)
    # a node done before the kill ran again only when an output of it was not stored (memory, MLflow)
    stored = {n.name for n in pipelines["unlearn"].nodes if set(n.outputs) <= outputs.keys()}
    assert not ran & done_before_kill & stored, sorted(ran & done_before_kill & stored)
    after = snapshot(project / "data")
    assert {name: after.get(name) for name in written} == written, "a finished stage's output was rewritten"
    summary = json.loads((project / "data" / "08_reporting" / "finetune_summary.json").read_text())
    assert re.search(r"checkpoint-\d+$", summary["resumed_from"] or ""), summary["resumed_from"]
    assert summary["steps"] == 40
    assert not [name for name, dataset in outputs.items() if not dataset.exists()], "outputs missing after the run"

    client = MlflowClient(tracking_uri=f"sqlite:///{tmp_path / 'mlflow.db'}")
    runs = client.search_runs([client.get_experiment_by_name("relearn").experiment_id], order_by=["start_time ASC"])
    assert [run.info.status for run in runs] == ["RUNNING", "FINISHED"]  # the killed run never ended
    logged = runs[1].data.metrics
    assert {"target.rougeL_recall_full", "base.rougeL_recall_full", "finetune.loss", "evaluate.after.kfr"} <= logged.keys()
