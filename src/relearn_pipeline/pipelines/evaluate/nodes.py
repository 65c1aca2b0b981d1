"""Nodes of the `evaluate` pipeline. The per-model nodes run twice, namespaced `before` (the
target) and `after` (target + unlearned adapter); the rest combine both sides.

Splits of ``evaluation_questions`` (every one judged against the forget/retain gold answer):
  forget_eval            held-out paraphrases of forget questions (KFR, the headline figure)
  retain_eval            held-out paraphrases of retain questions (KRR)
  forget_original        the forget set's own questions (robustness: the wording the target saw)
  forget_unused_variant  question variants the augmenter wrote for the forget set that did not
                         make it into ``augmented_forget_set``, i.e. never trained on (robustness)

Membership inference: members are the forget set (trained into the target, then unlearned);
non-members are the retain-eval records. The demo has no records the target never saw, and the
forget-eval records share their gold answers with the forget set, so an AUC on them is 0.5 by
construction; retain-eval records are of the same kind and were trained on but *not* unlearned,
so the AUC reads "can an attacker tell the unlearned records from those the model still knows":
≈0.5 before unlearning (both trained; the exact-wording advantage of the forget questions aside),
and far from 0.5 after it when unlearning leaves a detectable trace (a Streisand effect).
"""

from __future__ import annotations

import copy
import json
import logging
import math
from typing import Any

import pandas as pd

from relearn_pipeline.datasets.peft_adapter import apply_adapter
from relearn_pipeline.generation import generate_texts
from relearn_pipeline.metrics.entities import EntityMatcher
from relearn_pipeline.metrics.judges import build_judge
from relearn_pipeline.metrics.kfr_krr import ForgetThresholds, knowledge_forgetting_rate, knowledge_retention_rate
from relearn_pipeline.metrics.linguistic import combine, linguistic_scores
from relearn_pipeline.metrics.probes import MIA_ATTACKS, attack_scores, membership_auc, memorization_probes
from relearn_pipeline.metrics.result import mean
from relearn_pipeline.metrics.rouge import rouge_recall
from relearn_pipeline.metrics.token_scores import score_answers
from relearn_pipeline.models.context import check_max_length
from relearn_pipeline.models.loading import ModelBundle, load_model
from relearn_pipeline.pipelines.evaluate import report
from relearn_pipeline.prompting import question_prompt

logger = logging.getLogger(__name__)

FORGET_SPLITS = ("forget_eval", "forget_original", "forget_unused_variant")
RETAIN_SPLITS = ("retain_eval",)
QUESTION_COLUMNS = ["split", "id", "source_id", "subject", "question", "gold"]


def _normalise(question: str) -> str:
    return " ".join(str(question).lower().split())


def _check_columns(frame: pd.DataFrame, name: str, columns: list[str]) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ValueError(f"evaluate: dataset {name!r} lacks column(s) {missing}; it has {list(frame.columns)}")


def _split_rows(frame: pd.DataFrame, split: str) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "split": split,
            "id": frame["id"].astype(str),
            "source_id": frame["id"].astype(str),
            "subject": frame["subject"].astype(str),
            "question": frame["question"].astype(str),
            "gold": frame["answer"].astype(str),
        }
    )


def unused_variants(
    forget_set: pd.DataFrame,
    augmented_raw: pd.DataFrame,
    augmented_forget_set: pd.DataFrame,
    exclude_questions: set[str],
    limit: int | None,
) -> pd.DataFrame:
    """QA variants of forget questions that training did not use, with the forget gold answer."""
    for frame, name in ((augmented_raw, "augmented_raw"), (augmented_forget_set, "augmented_forget_set")):
        _check_columns(frame, name, ["kind", "question"])
    _check_columns(augmented_raw, "augmented_raw", ["id", "source_id", "kind", "variant", "question"])
    trained = {_normalise(q) for q in augmented_forget_set["question"]}
    gold = dict(zip(forget_set["id"].astype(str), forget_set["answer"].astype(str)))
    subjects = dict(zip(forget_set["id"].astype(str), forget_set["subject"].astype(str)))
    rows, seen = [], set(trained) | exclude_questions
    for record in augmented_raw.itertuples(index=False):
        key = _normalise(record.question)
        source = str(record.source_id)
        if record.kind != "qa" or key in seen or source not in gold:
            continue
        seen.add(key)
        rows.append(
            {
                "split": "forget_unused_variant",
                "id": f"{record.id}",
                "source_id": source,
                "subject": subjects[source],
                "question": str(record.question),
                "gold": gold[source],
            }
        )
    frame = pd.DataFrame(rows, columns=QUESTION_COLUMNS)
    return frame.head(limit) if limit is not None else frame


def build_evaluation_questions(
    forget_eval_set: pd.DataFrame,
    retain_eval_set: pd.DataFrame,
    forget_set: pd.DataFrame,
    augmented_raw: pd.DataFrame,
    augmented_forget_set: pd.DataFrame,
    params: dict[str, Any],
) -> pd.DataFrame:
    """Every question both models answer, tagged with its split and gold answer."""
    named = {"forget_eval_set": forget_eval_set, "retain_eval_set": retain_eval_set, "forget_set": forget_set}
    for name, frame in named.items():
        _check_columns(frame, name, ["id", "subject", "question", "answer"])
    robustness = params["robustness"]
    parts = [_split_rows(forget_eval_set, "forget_eval"), _split_rows(retain_eval_set, "retain_eval")]
    if robustness["include_forget_original"]:
        parts.append(_split_rows(forget_set, "forget_original"))
    if robustness["include_unused_variants"]:
        asked = {_normalise(q) for part in parts for q in part["question"]}
        parts.append(
            unused_variants(forget_set, augmented_raw, augmented_forget_set, asked, robustness["max_unused_variants"])
        )
    questions = pd.concat(parts, ignore_index=True)[QUESTION_COLUMNS]
    logger.info("Evaluation questions per split: %s", questions["split"].value_counts().to_dict())
    return questions


def load_reference_model(base_model: str, params: dict[str, Any], model_loading: dict[str, Any]) -> ModelBundle:
    """The LM that scores perplexity for LS: ``evaluate.reference_model``, or the base model."""
    spec = params.get("reference_model") or base_model
    return load_model(
        spec, dtype=model_loading["dtype"], device=model_loading["device"], cache_dir=model_loading.get("cache_dir")
    )


def build_unlearned_model(target_model: ModelBundle, unlearned_adapter: Any) -> ModelBundle:
    """The target with the unlearned adapter merged in (applied to a copy: the target stays as is)."""
    return apply_adapter(copy.deepcopy(target_model), unlearned_adapter, merge=True)


def generate_answers(model: ModelBundle, questions: pd.DataFrame, params: dict[str, Any]) -> pd.DataFrame:
    """The model's answer to every evaluation question (batched; greedy unless sampling is set)."""
    settings = params["generation"]
    prompts = [question_prompt(model.tokenizer, q) for q in questions["question"]]
    texts = generate_texts(
        model,
        prompts,
        max_new_tokens=settings["max_new_tokens"],
        batch_size=settings["batch_size"],
        do_sample=settings["do_sample"],
        temperature=settings["temperature"],
        top_p=settings["top_p"],
        top_k=settings["top_k"],
        seed=settings["seed"],
        desc=f"answering ({model.spec})",
    )
    return pd.DataFrame({"split": questions["split"], "id": questions["id"], "answer": [t[0] for t in texts]})


def _families(questions: pd.DataFrame) -> dict[str, pd.Index]:
    return {
        "forget": questions.index[questions["split"].isin(FORGET_SPLITS)],
        "retain": questions.index[questions["split"].isin(RETAIN_SPLITS)],
    }


def judge_answers(questions: pd.DataFrame, answers: pd.DataFrame, params: dict[str, Any]) -> pd.DataFrame:
    """Per record: judge verdict, entity evidence, forgotten/retained decision and ROUGE recall."""
    matcher = EntityMatcher(
        threshold=params["entities"]["match_cosine"], noun_fallback=params["entities"]["noun_fallback"]
    )
    thresholds = ForgetThresholds(**params["kfr"])
    frames = []
    for family, index in _families(questions).items():
        if len(index) == 0:
            continue
        part, predicted = questions.loc[index], answers.loc[index, "answer"].tolist()
        golds, asked = part["gold"].tolist(), part["question"].tolist()
        judge = build_judge(params["judge"], family, matcher)
        verdicts = judge.judge_many(golds, predicted, asked)
        matches = [matcher.match(g, p, q) for g, p, q in zip(golds, predicted, asked)]
        if family == "forget":
            _, records = knowledge_forgetting_rate(verdicts, matches, thresholds)
        else:
            _, records = knowledge_retention_rate(verdicts, matches, params["krr"]["theta"])
        rouge = rouge_recall(golds, predicted)
        frame = pd.DataFrame(records, index=index)
        frame["decision"] = frame.pop("forgotten" if family == "forget" else "retained")
        frame["family"] = family
        frame["judge"] = judge.name
        frame["judge_description"] = judge.description
        frame["judge_evidence"] = [json.dumps(v.evidence, sort_keys=True, default=str) for v in verdicts]
        frame["rouge1_recall"] = rouge["rouge1_recall"].per_sample
        frame["rougeL_recall"] = rouge["rougeL_recall"].per_sample
        frames.append(frame)
    verdicts = pd.concat(frames).sort_index()
    verdicts.insert(0, "id", questions.loc[verdicts.index, "id"])
    verdicts.insert(0, "split", questions.loc[verdicts.index, "split"])
    return verdicts.reset_index(drop=True)


def score_fluency(
    reference_model: ModelBundle, questions: pd.DataFrame, answers: pd.DataFrame, params: dict[str, Any]
) -> pd.DataFrame:
    """Per record: perplexity under the reference LM, Brunet's W, Honoré's H and LS."""
    scoring = params["scoring"]
    check_max_length(scoring["max_length"], reference_model, "evaluate.scoring.max_length")
    token_scores = score_answers(
        reference_model,
        questions["question"].tolist(),
        answers["answer"].tolist(),
        batch_size=scoring["batch_size"],
        max_length=scoring["max_length"],
    )
    scores = linguistic_scores(answers["answer"].tolist(), token_scores)
    return pd.DataFrame(
        {
            "split": questions["split"],
            "id": questions["id"],
            "perplexity": scores.perplexity.per_sample,
            "brunet": scores.brunet.per_sample,
            "honore": scores.honore.per_sample,
            "ls": scores.ls.per_sample,
            "ls_arithmetic": scores.ls_arithmetic.per_sample,
        }
    )


def probe_model(
    model: ModelBundle,
    forget_set: pd.DataFrame,
    forget_eval_set: pd.DataFrame,
    retain_eval_set: pd.DataFrame,
    params: dict[str, Any],
) -> pd.DataFrame:
    """Per gold record: teacher-forced memorization probes and membership-inference attack scores."""
    scoring, k = params["scoring"], params["mia"]["k"]
    check_max_length(scoring["max_length"], model, "evaluate.scoring.max_length")
    frames = []
    for split, frame in (("forget", forget_set), ("forget_eval", forget_eval_set), ("retain_eval", retain_eval_set)):
        answers = frame["answer"].astype(str).tolist()
        token_scores = score_answers(
            model,
            frame["question"].astype(str).tolist(),
            answers,
            batch_size=scoring["batch_size"],
            max_length=scoring["max_length"],
        )
        memorization = memorization_probes(token_scores)
        attacks = attack_scores(token_scores, answers, k=k)
        frames.append(
            pd.DataFrame(
                {
                    "split": split,
                    "id": frame["id"].astype(str).tolist(),
                    "exact_memorization": memorization["exact_memorization"].per_sample,
                    "extraction_strength": memorization["extraction_strength"].per_sample,
                    **{f"mia_{name}": values for name, values in attacks.items()},
                }
            )
        )
    return pd.concat(frames, ignore_index=True)


def _split_mean(frame: pd.DataFrame, column: str, splits: tuple[str, ...]) -> float:
    return mean(frame.loc[frame["split"].isin(splits), column].astype(float).tolist())


def summarise_model(verdicts: pd.DataFrame, fluency: pd.DataFrame, probes: pd.DataFrame) -> dict[str, float]:
    """One model's flat figures: KFR/KRR, LS, ROUGE, probes and MIA AUCs (NaN for an empty split)."""
    summary: dict[str, float] = {
        "kfr": _split_mean(verdicts, "decision", ("forget_eval",)),
        "krr": _split_mean(verdicts, "decision", ("retain_eval",)),
    }
    for split in FORGET_SPLITS:
        summary[f"robustness.kfr.{split}"] = _split_mean(verdicts, "decision", (split,))
    for side, split in (("forget", "forget_eval"), ("retain", "retain_eval")):
        for name, value in linguistic_aggregate(fluency[fluency["split"] == split]).items():
            summary[f"{name}.{side}"] = value
        for rouge in ("rouge1_recall", "rougeL_recall"):
            summary[f"{rouge}.{side}"] = _split_mean(verdicts, rouge, (split,))
    for split in ("forget", "forget_eval", "retain_eval"):
        for probe in ("exact_memorization", "extraction_strength"):
            summary[f"{probe}.{split}"] = _split_mean(probes, probe, (split,))
    members = probes[probes["split"] == "forget"]
    nonmembers = probes[probes["split"] == "retain_eval"]
    for attack in MIA_ATTACKS:
        column = f"mia_{attack}"
        summary[f"mia.{attack}.auc"] = membership_auc(members[column].tolist(), nonmembers[column].tolist())
    return summary


def linguistic_aggregate(fluency: pd.DataFrame) -> dict[str, float]:
    """A split's aggregate LS from its per-record ingredients (transforms of the means)."""
    if fluency.empty:
        return dict.fromkeys(("ls", "ls_arithmetic", "perplexity", "brunet", "honore"), math.nan)
    ppl, w, h = (mean(fluency[c].astype(float).tolist()) for c in ("perplexity", "brunet", "honore"))
    harmonic, arithmetic = combine(ppl, w, h)
    return {"ls": harmonic, "ls_arithmetic": arithmetic, "perplexity": ppl, "brunet": w, "honore": h}


def combine_metrics(before: dict[str, float], after: dict[str, float]) -> dict[str, float]:
    """The flat ``before.*`` / ``after.*`` figures of both models."""
    prefixed = {f"before.{k}": float(v) for k, v in before.items()}
    prefixed.update({f"after.{k}": float(v) for k, v in after.items()})
    return prefixed


def to_mlflow_metrics(metrics: dict[str, float]) -> dict[str, dict[str, float]]:
    """The same figures in kedro-mlflow's metrics format (the catalog prefixes ``evaluate.``); NaNs left out."""
    return {k: {"value": v, "step": 0} for k, v in metrics.items() if not math.isnan(v)}


def assemble_generations(
    questions: pd.DataFrame,
    answers_before: pd.DataFrame,
    answers_after: pd.DataFrame,
    verdicts_before: pd.DataFrame,
    verdicts_after: pd.DataFrame,
    fluency_before: pd.DataFrame,
    fluency_after: pd.DataFrame,
) -> pd.DataFrame:
    """Per record: question, gold, both answers, both verdicts with their evidence, both LS."""
    table = questions.copy()
    for side, answers, verdicts, fluency in (
        ("before", answers_before, verdicts_before, fluency_before),
        ("after", answers_after, verdicts_after, fluency_after),
    ):
        table[f"answer_{side}"] = answers["answer"].to_numpy()
        for column in ("judge_label", "judge_score", "judge_evidence", "entity_similarity", "entity_threshold",
                       "decision", "rougeL_recall"):
            table[f"{column}_{side}"] = verdicts[column].to_numpy()
        for column in ("gold_entities", "predicted_entities"):
            table[f"{column}_{side}"] = [json.dumps(list(v)) for v in verdicts[column]]
        table[f"ls_{side}"] = fluency["ls"].to_numpy()
    table["judge"] = verdicts_after["judge_description"].to_numpy()
    return table


def render_report(
    metrics: dict[str, float], generations: pd.DataFrame, params: dict[str, Any]
) -> tuple[str, str]:
    """The evaluation report as Markdown and as standalone HTML."""
    judges = sorted(set(generations["judge"])) if len(generations) else [params["judge"]["name"]]
    return report.render(metrics, generations, judges, params["report"]["examples_per_split"])


def plot_before_after(metrics: dict[str, float]):
    """Before/after bars for KFR, KRR, LS forget and LS retain."""
    return report.bar_figure(metrics)


def summary_table(metrics: dict[str, float], generations: pd.DataFrame) -> str:
    """The before/after table as text, printed to the console and logged."""
    judges = sorted(set(generations["judge"])) if len(generations) else []
    text = report.console_table(metrics, judges)
    logger.info("Evaluation, target (before) vs unlearned (after):\n%s", text)
    return text
