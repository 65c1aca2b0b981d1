"""Typed parameters: the shipped conf validates; every bad value, type or key fails before any node runs."""

from __future__ import annotations

import copy
import functools
import os
import subprocess
import sys
from pathlib import Path

import pytest
from kedro.config import OmegaConfigLoader
from kedro.framework.session import KedroSession
from kedro.framework.startup import bootstrap_project

from relearn_pipeline.params import STAGE_MODELS, ParameterError, validate_parameters
from relearn_pipeline.unlearning.losses import METHODS

PROJECT = Path(__file__).resolve().parents[1]


@functools.lru_cache(maxsize=1)
def _load_shipped() -> dict:
    loader = OmegaConfigLoader(str(PROJECT / "conf"), base_env="base", default_run_env="base")
    return loader["parameters"]


def _shipped_params() -> dict:
    """conf/base's parameters, as the config loader merges them (a fresh copy each call)."""
    return copy.deepcopy(_load_shipped())


def _set(params: dict, dotted: str, value) -> dict:
    out = copy.deepcopy(params)
    node = out
    *head, last = dotted.split(".")
    for part in head:
        node = node[part]
    node[last] = value
    return out


def test_the_shipped_parameters_validate_and_cover_every_stage():
    params = _shipped_params()
    models = validate_parameters(params)
    assert set(models) == {"shared", *STAGE_MODELS}
    assert models["finetune"].method in METHODS
    # every registered method is accepted as finetune.method
    for name in METHODS:
        validate_parameters(_set(params, "finetune.method", name))


BAD = [
    # (dotted key, bad value, file named, words the message must contain)
    ("finetune.method", "nope", "parameters_finetune.yml", "unknown method 'nope'"),
    ("finetune.epochs", "abc", "parameters_finetune.yml", "valid integer"),
    ("finetune.epochs", 0, "parameters_finetune.yml", "greater than 0"),
    ("finetune.epochs", 1.5, "parameters_finetune.yml", "fractional"),
    ("finetune.learning_rate", -1e-4, "parameters_finetune.yml", "greater than 0"),
    ("finetune.learning_rate", "fast", "parameters_finetune.yml", "valid number"),
    ("finetune.batch_size", 0, "parameters_finetune.yml", "greater than 0"),
    ("finetune.bf16", "maybe", "parameters_finetune.yml", "'auto'"),
    ("finetune.warmup_steps", 1.5, "parameters_finetune.yml", "[0, 1)"),
    ("finetune.lora.dropout", 1.0, "parameters_finetune.yml", "less than 1"),
    ("finetune.weights.nope", {"forget": 1.0}, "parameters_finetune.yml", "unknown method 'nope'"),
    ("finetune.weights.ga.forget", "x", "parameters_finetune.yml", "valid number"),
    ("ingest.on_too_long", "clip", "parameters_ingest.yml", "'truncate' or 'error'"),
    ("ingest.max_answer_tokens", -5, "parameters_ingest.yml", "greater than 0"),
    ("target.mode", "memorise", "parameters_target.yml", "'memorize' or 'as_is'"),
    ("target.training.adapter", "qlora", "parameters_target.yml", "'lora' or 'full'"),
    ("augment.llm.backend", "vllm", "parameters_augment.yml", "'transformers' or 'openai'"),
    ("augment.llm.openai.concurrency", 0, "parameters_augment.yml", "greater than 0"),
    ("augment.llm.openai.base_url", "localhost:8080", "parameters_augment.yml", "pattern"),
    ("augment.llm.transformers.model", "no such model", "parameters_augment.yml", "not a model spec"),
    ("augment.variants", ["rephrase", "poem"], "parameters_augment.yml", "'rephrase'"),
    ("augment.question.rounds", 0, "parameters_augment.yml", "greater than 0"),
    ("augment.question.sampling.top_p", 0, "parameters_augment.yml", "greater than 0"),
    ("verify.fallback", "skip", "parameters_verify.yml", "'template' or 'drop'"),
    ("verify.well_formed.min_english_share", 2, "parameters_verify.yml", "less than or equal to 1"),
    ("verify.judge.enabled", "perhaps", "parameters_verify.yml", "valid boolean"),
    ("evaluate.judge.name", "nli", "parameters_evaluate.yml", "nli.model_dir is not set"),
    ("evaluate.mia.k", 0, "parameters_evaluate.yml", "greater than 0"),
    ("evaluate.reference_model", "embedded:gpt-9", "parameters_evaluate.yml", "unknown embedded model 'gpt-9'"),
    ("compare.method_order", ["relearn", "dpo"], "parameters_compare.yml", "unknown method 'dpo'"),
    ("compare.plot.x", "KFRR", "parameters_compare.yml", "not among columns"),
    ("compare.harmonic_mean.of", ["KFR", "KRR", "LS"], "parameters_compare.yml", "harmonic_mean.of[2] ('LS') not among columns"),
    ("base_model", "embedded:nope", "parameters.yml", "unknown embedded model 'nope'"),
    ("base_model", "tiny:abc", "parameters.yml", "tiny:<integer seed>"),
    ("model_loading.dtype", "int8", "parameters.yml", "'float32'"),
    ("model_loading.device", "tpu", "parameters.yml", "use auto, cpu"),
    ("seed", "forty-two", "parameters.yml", "valid integer"),
]
# checks across fields name the block that holds them
CROSS_FIELD = {"evaluate.judge.name": "evaluate.judge", "compare.plot.x": "compare", "compare.harmonic_mean.of": "compare"}


@pytest.mark.parametrize(("dotted", "value", "file", "words"), BAD, ids=[f"{d}={v!r}" for d, v, *_ in BAD])
def test_a_bad_value_is_rejected_with_its_file_and_field_named(dotted, value, file, words):
    with pytest.raises(ParameterError) as caught:
        validate_parameters(_set(_shipped_params(), dotted, value))
    assert len(caught.value.problems) == 1, caught.value.problems
    problem = caught.value.problems[0]
    field = CROSS_FIELD.get(dotted, dotted)
    assert problem.startswith(f"{file}: {field}"), problem
    assert words in problem, problem


@pytest.mark.parametrize("stage", [*STAGE_MODELS, "model_loading"])
def test_an_unknown_key_is_rejected_in_every_block(stage):
    params = _shipped_params()
    params[stage]["learning_rte"] = 1e-4
    with pytest.raises(ParameterError) as caught:
        validate_parameters(params)
    (problem,) = caught.value.problems
    assert f"{stage}.learning_rte: unknown key" in problem
    assert problem.startswith("parameters.yml" if stage == "model_loading" else f"parameters_{stage}.yml")


def test_every_problem_is_listed_at_once_and_secrets_are_never_echoed():
    params = _shipped_params()
    params["finetune"]["method"] = "nope"
    params["finetune"]["epochs"] = "abc"
    params["ingest"]["on_duplicate"] = "ignore"
    params["augment"]["llm"]["openai"]["api_key"] = "sk-very-secret-value"
    with pytest.raises(ParameterError) as caught:
        validate_parameters(params)
    text = str(caught.value)
    assert len(caught.value.problems) == 4
    for field in ("finetune.method", "finetune.epochs", "ingest.on_duplicate", "augment.llm.openai.api_key"):
        assert field in text
    assert "sk-very-secret" not in text


def test_a_value_from_the_command_line_is_blamed_on_params():
    params = _set(_shipped_params(), "finetune.epochs", "abc")
    with pytest.raises(ParameterError) as caught:
        validate_parameters(params, runtime_params={"finetune": {"epochs": "abc"}})
    assert caught.value.problems[0].startswith("--params finetune.epochs:")


# ------------------------------------------------------------------ in a real session / CLI


@pytest.fixture
def project_copy(bare_project):
    """conf/ and pyproject.toml in tmp (an empty src/); MLflow in a sqlite file there."""
    return bare_project


def test_a_session_fails_before_any_node_runs(project_copy, tmp_path):
    """`--params finetune.method=nope`: the ParameterValidationHook stops the run before a node or MLflow run."""
    bootstrap_project(project_copy)
    with KedroSession.create(project_path=project_copy, runtime_params={"finetune": {"method": "nope"}}) as session:
        with pytest.raises(ParameterError, match=r"--params finetune\.method: unknown method 'nope'"):
            session.run(pipeline_names=["ingest"])  # ingest would write data/03_primary at once
    assert not (project_copy / "data" / "03_primary").exists()
    assert not (project_copy / "data" / "08_reporting").exists()
    assert not (tmp_path / "mlflow.db").exists() or _mlflow_runs(tmp_path / "mlflow.db") == 0


def _mlflow_runs(db: Path) -> int:
    import sqlite3

    with sqlite3.connect(db) as conn:
        try:
            return conn.execute("select count(*) from runs").fetchone()[0]
        except sqlite3.OperationalError:
            return 0


def test_kedro_run_cli_with_a_bad_override_exits_with_the_field_named(project_copy):
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "KEDRO_DISABLE_TELEMETRY": "1"}
    kedro = Path(sys.executable).with_name("kedro")
    result = subprocess.run(
        [str(kedro), "run", "--pipelines", "ingest", "--params", "finetune.epochs=abc,finetune.learning_rate=-1"],
        cwd=project_copy, env=env, capture_output=True, text=True, timeout=120,
    )
    output = result.stdout + result.stderr
    assert result.returncode != 0, output
    assert "--params finetune.epochs: Input should be a valid integer" in output, output[-3000:]
    assert "--params finetune.learning_rate: Input should be greater than 0" in output, output[-3000:]
    assert not (project_copy / "data" / "03_primary").exists()
