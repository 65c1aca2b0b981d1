"""Shared fixtures: offline environment, tiny models, the embedded model (slow tests only)."""

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
def tiny_bundle():
    """A fresh tiny random causal LM with a byte-level tokenizer (seed 0)."""
    from relearn_pipeline.models import build_tiny_model

    return build_tiny_model(seed=0)


@pytest.fixture(scope="session")
def embedded_bundle():
    """The embedded SmolLM2-135M-Instruct (converted once into the user cache)."""
    from relearn_pipeline.models import load_model

    return load_model("embedded:smollm2-135m-instruct", dtype="float32", device="cpu")
