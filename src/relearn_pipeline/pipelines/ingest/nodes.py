"""Ingest nodes: normalise and check each QA split, check splits against each other, find spans.

Each split arrives from `QARecordsDataset` with the contract columns and `attrs["source"]`
(its file), so every error here can name the file, the record index in that file and the field.
"""

from __future__ import annotations

import logging
import re
import unicodedata
from collections import Counter
from typing import Any

import pandas as pd

from relearn_pipeline.errors import RecordError
from relearn_pipeline.pipelines.ingest.subset import select_people
from relearn_pipeline.text.spans import find_sensitive_spans

logger = logging.getLogger(__name__)

SPLITS = ("forget", "retain", "forget_eval", "retain_eval", "full")
QA_COLUMNS = ["id", "subject", "question", "answer"]
SPAN_COLUMNS = ["record_id", "text", "label", "start", "end", "source"]
# Model-independent token count: words and punctuation marks (a lower bound on subword tokens).
TOKEN_RE = re.compile(r"\w+|[^\w\s]")
_INVISIBLE = dict.fromkeys(map(ord, "\u200b\u200c\u200d\u2060\ufeff"))
_WHITESPACE = re.compile(r"\s+")
_WORD = re.compile(r"\w+")


def source_of(frame: pd.DataFrame, split: str) -> str:
    """The file a split came from (set by the loader), or a stand-in naming the split."""
    return str(frame.attrs.get("source", f"<{split} split>"))


def normalise_text(text: str) -> str:
    """Unicode NFC, invisible characters removed, whitespace runs collapsed to one space."""
    text = unicodedata.normalize("NFC", text).translate(_INVISIBLE)
    return _WHITESPACE.sub(" ", text).strip()


def question_key(question: str) -> str:
    """The form in which two questions count as the same (case and spacing ignored)."""
    return normalise_text(question).casefold()


def count_tokens(text: str) -> int:
    """Number of words and punctuation marks in `text`."""
    return sum(1 for _ in TOKEN_RE.finditer(text))


def truncate_tokens(text: str, max_tokens: int) -> str:
    """`text` cut after its `max_tokens`-th word or punctuation mark."""
    for index, match in enumerate(TOKEN_RE.finditer(text), start=1):
        if index == max_tokens:
            return text[: match.end()]
    return text


def infer_subject(question: str, answer: str, spacy_model: str) -> str:
    """The first PERSON named in the question, else in the answer, else ""."""
    for text in (question, answer):
        for span in find_sensitive_spans(text, spacy_model):
            if span.label == "PERSON":
                return span.text
    return ""


def _check_not_empty(frame: pd.DataFrame, split: str, source: str) -> None:
    """Stop when a split has no records: nothing downstream can work without them."""
    if frame.empty:
        raise RecordError(
            source,
            f"the {split} split has no records",
            hint=f"Point raw_{split} in conf/base/catalog_ingest.yml at a file with QA records.",
        )


def _check_duplicate_ids(frame: pd.DataFrame, source: str) -> None:
    """Stop when two records share an id (ids key spans, variants and metrics)."""
    first_seen: dict[str, Any] = {}
    for index, record_id in frame["id"].items():
        if record_id in first_seen:
            raise RecordError(
                source,
                f"id {record_id!r} is also the id of record {first_seen[record_id]}",
                record=index,
                field="id",
                hint="Give every record its own id, or drop the id column to number them.",
            )
        first_seen[record_id] = index


def _handle_duplicate_questions(
    frame: pd.DataFrame, source: str, on_duplicate: str, log: dict[str, Any]
) -> pd.DataFrame:
    """Stop on (or drop, keeping the first) records that repeat an earlier question."""
    keys = frame["question"].map(question_key)
    duplicated = keys.duplicated(keep="first")
    if not duplicated.any():
        return frame
    index = duplicated[duplicated].index[0]
    first = keys[keys == keys[index]].index[0]
    if on_duplicate == "error":
        raise RecordError(
            source,
            f"the same question as record {first}",
            record=index,
            field="question",
            hint="Remove one of the two, or set ingest.on_duplicate: keep_first.",
        )
    dropped = list(frame.index[duplicated])
    message = f"{source}: dropped {len(dropped)} repeated question(s), records {dropped[:10]}"
    logger.warning(message)
    log["warnings"].append(message)
    log["duplicates_dropped"] = len(dropped)
    return frame[~duplicated]


def _handle_long_answers(
    frame: pd.DataFrame, source: str, max_tokens: int, on_too_long: str, log: dict[str, Any]
) -> pd.DataFrame:
    """Stop on, or truncate (with a counted warning), answers over `max_tokens` tokens."""
    lengths = frame["answer"].map(count_tokens)
    too_long = lengths > max_tokens
    if not too_long.any():
        return frame
    index = too_long[too_long].index[0]
    if on_too_long == "error":
        raise RecordError(
            source,
            f"the answer has {lengths[index]} tokens, more than ingest.max_answer_tokens "
            f"= {max_tokens}",
            record=index,
            field="answer",
            hint="Shorten it, raise ingest.max_answer_tokens, or set ingest.on_too_long: truncate.",
        )
    frame = frame.copy()
    frame.loc[too_long, "answer"] = frame.loc[too_long, "answer"].map(
        lambda text: truncate_tokens(text, max_tokens)
    )
    records = list(frame.index[too_long])
    message = (
        f"{source}: truncated {len(records)} answer(s) to {max_tokens} tokens, "
        f"records {records[:10]}"
    )
    logger.warning(message)
    log["warnings"].append(message)
    log["truncated"] = len(records)
    return frame


def _check_options(params: dict[str, Any]) -> None:
    """Stop on a misspelt or out-of-range value in parameters_ingest.yml before any work."""
    where = "conf/base/parameters_ingest.yml: ingest"
    choices = {"on_too_long": ("error", "truncate"), "on_duplicate": ("error", "keep_first")}
    for key, allowed in choices.items():
        if params.get(key) not in allowed:
            raise ValueError(f"{where}.{key} is {params.get(key)!r}; use one of {list(allowed)}.")
    limit = params.get("max_answer_tokens")
    if not isinstance(limit, int) or isinstance(limit, bool) or limit < 1:
        raise ValueError(f"{where}.max_answer_tokens is {limit!r}; use a positive integer.")


def prepare_split(
    raw: pd.DataFrame, params: dict[str, Any], split: str
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """One split normalised, restricted to `ingest.subset`'s people (if set) and checked, with a log
    of what was changed (for the report)."""
    _check_options(params)
    source = source_of(raw, split)
    log: dict[str, Any] = {"split": split, "source": source, "records_in": len(raw)}
    log |= {"ids_assigned": 0, "subjects_inferred": 0, "subjects_unknown": 0}
    log |= {"truncated": 0, "duplicates_dropped": 0, "warnings": []}
    if split == "full" and raw.empty:  # no raw_full: built from forget + retain later
        log["records_out"] = 0
        return raw[QA_COLUMNS].copy(), log
    _check_not_empty(raw, split, source)
    frame = raw[QA_COLUMNS].copy()
    for column in QA_COLUMNS:
        frame[column] = frame[column].map(normalise_text)
    for column in ("question", "answer"):
        # The loader rejects blank values; this catches text that was only invisible characters.
        blank = frame[column] == ""
        if blank.any():
            raise RecordError(
                source,
                "expected a non-empty string, got only invisible or space characters",
                record=blank[blank].index[0],
                field=column,
            )
    frame = select_people(frame, params.get("subset"), split, source, log)
    missing_id = frame["id"] == ""
    frame.loc[missing_id, "id"] = [f"{split}-{index}" for index in frame.index[missing_id]]
    log["ids_assigned"] = int(missing_id.sum())
    _check_duplicate_ids(frame, source)
    no_subject = frame["subject"] == ""
    if no_subject.any():
        frame.loc[no_subject, "subject"] = [
            infer_subject(q, a, params["spacy_model"])
            for q, a in zip(frame.loc[no_subject, "question"], frame.loc[no_subject, "answer"])
        ]
        log["subjects_inferred"] = int((frame.loc[no_subject, "subject"] != "").sum())
        log["subjects_unknown"] = int((frame["subject"] == "").sum())
    frame = _handle_duplicate_questions(frame, source, params["on_duplicate"], log)
    frame = _handle_long_answers(
        frame, source, params["max_answer_tokens"], params["on_too_long"], log
    )
    log["records_out"] = len(frame)
    frame.attrs["source"] = source
    return frame, log


def _first_overlap(left: pd.DataFrame, right: pd.DataFrame) -> tuple[Any, Any] | None:
    """Record indices of the first question of `left` that `right` also asks, if any."""
    right_keys: dict[str, Any] = {}
    for index, question in right["question"].items():
        right_keys.setdefault(question_key(question), index)
    for index, question in left["question"].items():
        if question_key(question) in right_keys:
            return index, right_keys[question_key(question)]
    return None


def _overlap_count(left: pd.DataFrame, right: pd.DataFrame) -> int:
    """How many questions of `left` are also asked in `right`."""
    right_keys = set(right["question"].map(question_key))
    return int(left["question"].map(question_key).isin(right_keys).sum())


def _clean(frame: pd.DataFrame) -> pd.DataFrame:
    """A split as persisted: contract columns, string values, fresh 0..n-1 index."""
    out = frame[QA_COLUMNS].reset_index(drop=True).astype(str)
    out.attrs = {}
    return out


def check_splits(
    forget: pd.DataFrame,
    retain: pd.DataFrame,
    forget_eval: pd.DataFrame,
    retain_eval: pd.DataFrame,
    full: pd.DataFrame,
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame, pd.DataFrame, pd.DataFrame, dict[str, Any]]:
    """Splits checked against each other (forget vs retain is an error), `full` filled if absent."""
    clash = _first_overlap(forget, retain)
    if clash is not None:
        raise RecordError(
            source_of(forget, "forget"),
            f"this question is also record {clash[1]} of {source_of(retain, 'retain')}; "
            "a question cannot be both forgotten and retained",
            record=clash[0],
            field="question",
            hint="Remove it from one of the two files.",
        )
    warnings: list[str] = []
    held_out = {
        "forget_eval_in_forget": _overlap_count(forget_eval, forget),
        "retain_eval_in_retain": _overlap_count(retain_eval, retain),
    }
    for name, count in held_out.items():
        if count:
            # Allowed (some benchmarks do it), but then the metric is not on held-out questions.
            message = f"{count} question(s) of {name.replace('_in_', ' also in ')} (not held out)"
            logger.warning(message)
            warnings.append(message)
    full_from = "raw_full"
    if full.empty:
        full = pd.concat([forget, retain])
        full_from = "forget + retain"
    cross = {"warnings": warnings, "overlaps": held_out, "full_from": full_from}
    outputs = (_clean(forget), _clean(retain), _clean(forget_eval), _clean(retain_eval))
    return (*outputs, _clean(full), cross)


def _names_subject(span_text: str, subject: str) -> bool:
    """Whether a span only repeats (part of) the record's subject name."""
    words = set(_WORD.findall(span_text.casefold()))
    return bool(subject) and words <= set(_WORD.findall(subject.casefold()))


def find_forget_spans(forget_set: pd.DataFrame, params: dict[str, Any]) -> pd.DataFrame:
    """The `sensitive_spans` table: one row per span found in a forget answer, subject excluded."""
    # The subject's own name is public and every vague answer must keep it, so it is no span.
    rows = [
        {"record_id": record_id, "text": s.text, "label": s.label}
        | {"start": s.start, "end": s.end, "source": s.source}
        for record_id, subject, answer in zip(
            forget_set["id"], forget_set["subject"], forget_set["answer"]
        )
        for s in find_sensitive_spans(answer, params["spacy_model"])
        if not _names_subject(s.text, subject)
    ]
    spans = pd.DataFrame(rows, columns=SPAN_COLUMNS)
    return spans.astype({"start": "int64", "end": "int64"})


def build_ingest_report(
    forget_log: dict[str, Any],
    retain_log: dict[str, Any],
    forget_eval_log: dict[str, Any],
    retain_eval_log: dict[str, Any],
    full_log: dict[str, Any],
    cross: dict[str, Any],
    full_set: pd.DataFrame,
    sensitive_spans: pd.DataFrame,
) -> dict[str, Any]:
    """Counts per split, every warning, and sensitive spans per label."""
    logs = [forget_log, retain_log, forget_eval_log, retain_eval_log, full_log]
    splits = {log["split"]: {k: v for k, v in log.items() if k != "warnings"} for log in logs}
    splits["full"]["records_out"] = len(full_set)
    splits["full"]["built_from"] = cross["full_from"]
    warnings = [w for log in logs for w in log["warnings"]] + cross["warnings"]
    by_label = Counter(sensitive_spans["label"])
    return {
        "splits": splits,
        "overlaps": cross["overlaps"],
        "warnings": warnings,
        "warning_count": len(warnings),
        "sensitive_spans": {
            "total": len(sensitive_spans),
            "records_with_spans": int(sensitive_spans["record_id"].nunique()),
            "by_label": dict(sorted(by_label.items())),
        },
    }
