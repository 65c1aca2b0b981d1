"""Single evaluate nodes: seeded sampling, the MLflow metric format, per-split aggregation."""

import math
from pathlib import Path

import pandas as pd
import yaml

from relearn_pipeline.pipelines.evaluate.nodes import (
    combine_metrics,
    generate_answers,
    linguistic_aggregate,
    to_mlflow_metrics,
)

PROJECT = Path(__file__).resolve().parents[3]


def _params():
    return yaml.safe_load((PROJECT / "conf/base/parameters_evaluate.yml").read_text())["evaluate"]


def test_sampling_is_seeded_and_answers_exclude_the_prompt(tiny_bundle):
    params = _params()
    params["generation"].update(do_sample=True, max_new_tokens=8, seed=7)
    questions = pd.DataFrame({"split": ["forget_eval", "retain_eval"], "id": ["a", "b"],
                              "question": ["Who is Ada?", "Where is Bob from?"]})
    first = generate_answers(tiny_bundle, questions, params)
    second = generate_answers(tiny_bundle, questions, params)
    assert first["answer"].tolist() == second["answer"].tolist()
    assert first[["split", "id"]].equals(questions[["split", "id"]])
    for question, answer in zip(questions["question"], first["answer"]):
        assert "<|im_start|>" not in answer and question not in answer
    params["generation"]["seed"] = 8
    third = generate_answers(tiny_bundle, questions, params)
    assert third["answer"].tolist() != first["answer"].tolist()


def test_metrics_are_prefixed_and_nans_are_not_logged():
    flat = combine_metrics({"kfr": 0.25, "mia.loss.auc": math.nan}, {"kfr": 1.0, "mia.loss.auc": 0.5})
    assert flat["before.kfr"] == 0.25 and flat["after.kfr"] == 1.0 and math.isnan(flat["before.mia.loss.auc"])
    assert to_mlflow_metrics(flat) == {
        "before.kfr": {"value": 0.25, "step": 0},
        "after.kfr": {"value": 1.0, "step": 0},
        "after.mia.loss.auc": {"value": 0.5, "step": 0},
    }


def test_split_ls_transforms_the_means():
    fluency = pd.DataFrame({"perplexity": [1.0, 5.0], "brunet": [1.0, 1.0], "honore": [1.0, 1.0]})
    result = linguistic_aggregate(fluency)
    # means: PPL 3, W 1, H 1 -> transforms 0.25, 0.5, 0.5 -> harmonic 0.375
    assert result["ls"] == 0.375 and result["perplexity"] == 3.0
    assert all(math.isnan(v) for v in linguistic_aggregate(fluency.iloc[:0]).values())
