"""No secret reaches MLflow, and forget-set spans are masked in logged artifacts (Kedro session runs).

The session runs `ingest` on the demo data in a copy of the project, with a planted API key in the
environment and in conf/local/credentials.yml, and with `forget_set` (personal data by definition)
also declared as an MLflow artifact in conf/local/catalog.yml, the way a user might log it.
"""

from __future__ import annotations

import io
import json
import re
import shutil
from pathlib import Path

import mlflow
import pandas as pd
import pytest
from kedro.framework.session import KedroSession
from kedro.framework.startup import bootstrap_project
from openai_stub import ChatServer

from relearn_pipeline.tracking_privacy import SpanMasker, span_regex

PROJECT = Path(__file__).resolve().parents[1]
PLANTED_ENV = "sk-test-PLANTED-env-7f3c9a1e5b2d4c6f8a0b"
PLANTED_CREDS = "sk-test-PLANTED-creds-0d9e8f7a6b5c4d3e2f1a"

LOCAL_CATALOG = """\
forget_set:
  type: kedro_mlflow.io.artifacts.MlflowArtifactDataset
  dataset:
    type: pandas.ParquetDataset
    filepath: data/03_primary/forget_set.parquet
  artifact_path: personal
"""


@pytest.fixture
def project(tmp_path, monkeypatch):
    root = tmp_path / "project"
    shutil.copytree(PROJECT / "conf" / "base", root / "conf" / "base")
    (root / "conf" / "local").mkdir()
    # An absolute store URI: MLflow caches its sqlite store per URI string, so a relative one would
    # reach the first test's database from the second test on.
    mlflow_yml = root / "conf" / "base" / "mlflow.yml"
    text, count = re.subn(r"mlflow_tracking_uri: .*", f"mlflow_tracking_uri: sqlite:///{root / 'mlflow.db'}", mlflow_yml.read_text())
    assert count == 1
    mlflow_yml.write_text(text)
    (root / "conf" / "local" / "credentials.yml").write_text(f"llm_api:\n  api_key: {PLANTED_CREDS}\n")
    (root / "conf" / "local" / "catalog.yml").write_text(LOCAL_CATALOG)
    shutil.copytree(PROJECT / "data" / "01_raw" / "demo", root / "data" / "01_raw" / "demo")
    shutil.copy(PROJECT / "pyproject.toml", root / "pyproject.toml")
    (root / "src").mkdir()
    monkeypatch.chdir(root)  # sqlite:///mlflow.db and ./mlruns (artifacts) land in the copy
    monkeypatch.setenv("OPENAI_API_KEY", PLANTED_ENV)
    return root


def _run(root: Path, pipelines: list[str] | None = None, **runtime_params) -> mlflow.entities.Run:
    bootstrap_project(root)
    with KedroSession.create(project_path=root, runtime_params=runtime_params or None) as session:
        session.run(pipeline_names=pipelines or ["ingest"])
    while mlflow.active_run() is not None:
        mlflow.end_run()
    client = mlflow.MlflowClient(tracking_uri=f"sqlite:///{root / 'mlflow.db'}")
    runs = client.search_runs(client.get_experiment_by_name("relearn").experiment_id, order_by=["start_time DESC"])
    return runs[0]


def _artifact_files(root: Path, run: mlflow.entities.Run) -> dict[str, Path]:
    base = Path(run.info.artifact_uri.removeprefix("file://"))
    if not base.is_absolute():
        base = root / base
    return {p.relative_to(base).as_posix(): p for p in base.rglob("*") if p.is_file()}


def _text_of(path: Path) -> str:
    """Every string an artifact holds, decoded (Parquet cells, JSON without \\u escapes, raw text)."""
    if path.suffix == ".parquet":
        frame = pd.read_parquet(path)
        buffer = io.StringIO()
        frame.to_csv(buffer, index=False)
        return " ".join(map(str, frame.columns)) + "\n" + buffer.getvalue()
    raw = path.read_bytes().decode("utf-8", errors="replace")
    if path.suffix == ".json":
        return json.dumps(json.loads(raw), ensure_ascii=False)
    return raw


def _leaked_spans(text: str, spans: pd.DataFrame) -> set[str]:
    return {s for s in spans["text"].unique() if re.search(span_regex(s), text, re.IGNORECASE)}


def test_planted_api_key_used_by_augment_reaches_neither_the_store_nor_the_artifacts(project):
    with ChatServer(lambda prompt, k: f"Could you tell me more about their work ({k})?") as server:
        run = _run(project, pipelines=["ingest", "augment"], augment={
            "max_records": 2, "variants": ["rephrase"],
            "llm": {"backend": "openai", "openai": {"base_url": server.url, "timeout_s": 10, "max_retries": 0}},
        })
    assert run.info.status == "FINISHED"
    # The key was really in play: the run sent the one from conf/local/credentials.yml.
    sent = [request["auth"] for request in server.requests]
    assert sent and set(sent) == {f"Bearer {PLANTED_CREDS}"}
    assert (project / "data" / "02_intermediate" / "augmented_raw.parquet").is_file()

    stores = [p for p in project.iterdir() if p.name.startswith("mlflow.db")]
    artifacts = [p for p in (project / "mlruns").rglob("*") if p.is_file()]
    assert stores and len(artifacts) >= 2  # ingest_report + forget_set at least
    for path in stores + artifacts:
        data = path.read_bytes()
        for key in (PLANTED_ENV, PLANTED_CREDS):
            assert key.encode() not in data, f"{key} found in {path}"
        assert b"PLANTED" not in data, f"part of a planted key found in {path}"
    client = mlflow.MlflowClient(tracking_uri=f"sqlite:///{project / 'mlflow.db'}")
    logged = client.get_run(run.info.run_id).data
    assert logged.params["augment.llm.backend"] == "openai"  # the augment params were logged, the key not
    assert not any("PLANTED" in str(v) for v in [*logged.params.values(), *logged.tags.values()])


def test_masking_on_by_default_for_mlflow_artifacts_off_for_local_files(project):
    run = _run(project)
    spans = pd.read_parquet(project / "data" / "03_primary" / "sensitive_spans.parquet")
    assert len(spans) >= 10

    logged = _artifact_files(project, run)
    assert {"ingest/ingest_report.json", "personal/forget_set.parquet"} <= set(logged)
    for name, path in logged.items():
        assert _leaked_spans(_text_of(path), spans) == set(), f"sensitive spans in the MLflow artifact {name}"
    masked_forget = pd.read_parquet(logged["personal/forget_set.parquet"])
    local_forget = pd.read_parquet(project / "data" / "03_primary" / "forget_set.parquet")
    assert masked_forget["answer"].str.contains(r"\[REDACTED:(?:EMAIL|PHONE|PERSON)\]").sum() >= 3
    assert masked_forget["id"].tolist() == local_forget["id"].tolist()
    assert masked_forget["subject"].tolist() == local_forget["subject"].tolist()  # subjects are public
    # Local files keep the text: every span is still in the local forget set.
    assert _leaked_spans(_text_of(project / "data" / "03_primary" / "forget_set.parquet"), spans) == set(spans["text"])


def test_masking_off_logs_the_text_as_is(project):
    run = _run(project, tracking={"mask_personal_data": False})
    spans = pd.read_parquet(project / "data" / "03_primary" / "sensitive_spans.parquet")
    logged = _artifact_files(project, run)
    assert _leaked_spans(_text_of(logged["personal/forget_set.parquet"]), spans) == set(spans["text"])


def test_span_masker_masks_nested_data_and_whole_words_only():
    masker = SpanMasker([("2004", "date"), ("Ada Lind", "PERSON"), ("Lind", "PERSON"), ("a@b.no", "EMAIL")])
    data = {
        "answers": ["Ada Lind was born in 2004, id 20045.", "Mail A@B.NO to Lind"],
        "table": pd.DataFrame({"q": ["Who is Ada Lind?"], "n": [2004]}),
        "Lind": 1,
    }
    masked = masker.mask(data)
    assert masked["answers"] == [
        "[REDACTED:PERSON] was born in [REDACTED:DATE], id 20045.",
        "Mail [REDACTED:EMAIL] to [REDACTED:PERSON]",
    ]
    assert masked["table"]["q"].tolist() == ["Who is [REDACTED:PERSON]?"] and masked["table"]["n"].tolist() == [2004]
    assert masked["[REDACTED:PERSON]"] == 1
    assert data["answers"][0].startswith("Ada Lind")  # the input is left as it was


def test_every_mlflow_artifact_of_the_catalog_is_logged_masked(tmp_path, monkeypatch):
    """The real MlflowArtifactDataset entries (evaluate, verify, compare, ingest), each saved once."""
    import matplotlib
    import yaml
    from kedro.io import DataCatalog

    from relearn_pipeline.tracking_privacy import PersonalDataMaskingHook

    matplotlib.use("Agg")
    monkeypatch.chdir(tmp_path)
    config = {}
    for path in sorted((PROJECT / "conf" / "base").glob("catalog_*.yml")):
        for name, entry in yaml.safe_load(path.read_text()).items():
            if isinstance(entry, dict) and entry.get("type") == "kedro_mlflow.io.artifacts.MlflowArtifactDataset":
                entry["dataset"]["filepath"] = str(tmp_path / "local" / Path(entry["dataset"]["filepath"]).name)
                config[name] = entry
    assert {"generations", "augmented_forget_set", "verification_report", "ingest_report", "evaluation_report"} <= set(config)

    catalog = DataCatalog.from_config(config)
    hook = PersonalDataMaskingHook()
    hook.after_catalog_created(catalog, {"parameters": {"tracking": {"mask_personal_data": True}}})
    spans = pd.DataFrame({"text": ["Ada Lind", "ada@lind.no", "12 Elm Road"], "label": ["PERSON", "EMAIL", "ADDRESS"]})
    hook.after_dataset_saved("sensitive_spans", spans)
    secret = "Ada Lind lives at 12 Elm Road, mail ada@lind.no"
    samples = {
        "AtomicParquetDataset": pd.DataFrame({"question": ["Who is Ada Lind?"], "answer": [secret],
                                               "evidence": [[secret, "ok"]]}),
        "AtomicCSVDataset": pd.DataFrame({"method": ["npo_klr"], "note": [secret]}),
        "AtomicJSONDataset": {"answers": [{"gold": secret}], secret: 1},
        "AtomicTextDataset": f"# Report\n\n| gold |\n| {secret} |\n",
    }
    previous_uri = mlflow.get_tracking_uri()
    mlflow.set_tracking_uri(f"sqlite:///{tmp_path / 'mlflow.db'}")
    try:
        run = _save_all(catalog, config, samples)
    finally:
        mlflow.set_tracking_uri(previous_uri)
    logged = _artifact_files(tmp_path, run)
    expected = {f"{e['artifact_path']}/{Path(e['dataset']['filepath']).name}" for e in config.values()}
    assert set(logged) == expected
    for name, path in logged.items():
        if path.suffix != ".png":
            text = _text_of(path)
            assert _leaked_spans(text, spans) == set(), name
            assert "[REDACTED:PERSON]" in text and "[REDACTED:EMAIL]" in text, name
    for local in (tmp_path / "local").iterdir():  # local files: as saved
        if local.suffix != ".png":
            assert "ada@lind.no" in _text_of(local), local.name


def _save_all(catalog, config: dict, samples: dict) -> mlflow.entities.Run:
    import matplotlib.pyplot as plt

    from relearn_pipeline.tracking_privacy import MaskedArtifactDataset

    experiment = mlflow.create_experiment("masking", artifact_location=(Path.cwd() / "artifacts").as_uri())
    with mlflow.start_run(experiment_id=experiment) as run:
        for name, entry in config.items():
            assert isinstance(catalog.get(name), MaskedArtifactDataset), name
            kind = entry["dataset"]["type"].rsplit(".", 1)[-1]  # relearn_pipeline.datasets.atomic_files.<kind>
            if kind == "AtomicMatplotlibDataset":
                figure, axes = plt.subplots()
                axes.plot([0, 1], [1, 0])
                catalog.save(name, figure)
                plt.close(figure)
            else:
                catalog.save(name, samples[kind])
    return run
