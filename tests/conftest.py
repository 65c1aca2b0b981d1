"""Shared fixtures: offline environment, tiny models, the embedded model (slow tests only), the
scripted LLM backend, a Kedro project copy."""

from __future__ import annotations

import os

# Nothing may reach the network in tests; set before transformers/mlflow/kedro are imported.
for _var, _value in {
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "KEDRO_DISABLE_TELEMETRY": "1",
    "DO_NOT_TRACK": "1",
    "TOKENIZERS_PARALLELISM": "false",
    "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false",
    "OMP_WAIT_POLICY": "PASSIVE",
}.items():
    os.environ.setdefault(_var, _value)

from pathlib import Path  # noqa: E402

import pytest  # noqa: E402
import torch  # noqa: E402

PROJECT_ROOT = Path(__file__).resolve().parents[1]
torch.set_num_threads(min(2, os.cpu_count() or 1))


@pytest.fixture(scope="session")
def project_root() -> Path:
    return PROJECT_ROOT


@pytest.fixture
def one_thread():
    """Tiny models run many small ops: one thread is faster and immune to a busy, shared CPU.
    Directories of tiny-model training tests use it for every test (their conftest.py)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def tiny_bundle():
    """A fresh tiny random causal LM with a byte-level tokenizer (seed 0)."""
    from relearn_pipeline.models import build_tiny_model

    return build_tiny_model(seed=0)


@pytest.fixture(scope="session")
def embedded_bundle():
    """The embedded SmolLM2-135M-Instruct (converted once into the user cache)."""
    from relearn_pipeline.models import load_model

    return load_model("embedded:smollm2-135m-instruct", dtype="float32", device="cpu")


@pytest.fixture(scope="session")
def scripted():
    """tests/llm/scripted.py as a module (ScriptedBackend, prompt_kind, field, default_reply)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("scripted_backend", PROJECT_ROOT / "tests" / "llm" / "scripted.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def bare_project(tmp_path) -> Path:
    """The project's conf/ and pyproject.toml in tmp_path/project (an empty src/, no conf/local
    secrets), tracking into tmp_path/mlflow.db, for Kedro sessions that must not touch the real one."""
    import re
    import shutil

    copy = tmp_path / "project"
    copy.mkdir()
    shutil.copy(PROJECT_ROOT / "pyproject.toml", copy / "pyproject.toml")
    (copy / "src").mkdir()  # bootstrap_project wants it; relearn_pipeline itself is installed
    shutil.copytree(PROJECT_ROOT / "conf", copy / "conf", ignore=shutil.ignore_patterns("local"))
    (copy / "conf" / "local").mkdir()
    mlflow_yml = copy / "conf" / "base" / "mlflow.yml"
    text, count = re.subn(
        r"mlflow_tracking_uri: .*", f"mlflow_tracking_uri: sqlite:///{tmp_path / 'mlflow.db'}", mlflow_yml.read_text()
    )
    assert count == 1, "conf/base/mlflow.yml no longer sets server.mlflow_tracking_uri"
    mlflow_yml.write_text(text)
    # The experiment exists before kedro-mlflow looks for it, with its artifacts in tmp_path too:
    # created by kedro-mlflow it would store them under ./mlruns of pytest's working directory.
    from mlflow.tracking import MlflowClient

    MlflowClient(tracking_uri=f"sqlite:///{tmp_path / 'mlflow.db'}").create_experiment(
        "relearn", artifact_location=(tmp_path / "mlruns").as_uri()
    )
    return copy
