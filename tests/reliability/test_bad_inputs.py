"""A corpus of broken inputs, each run through the real `ingest` pipeline with file datasets.

Every broken input stops the run with a `RecordError` whose message names the file (and, where the
file can be parsed, the record and the field) and says what to do, and no output file of the
pipeline exists afterwards. The BOM case is the control: it is accepted and every output is written,
so the "nothing written" assertion is known to see outputs when there are any.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml
from kedro.io import DataCatalog, DatasetError, MemoryDataset
from kedro.runner import SequentialRunner
from kedro_datasets.json import JSONDataset
from kedro_datasets.pandas import ParquetDataset

from relearn_pipeline.datasets import QARecordsDataset
from relearn_pipeline.errors import RecordError
from relearn_pipeline.pipelines.ingest import create_pipeline
from relearn_pipeline.pipelines.ingest.nodes import SPLITS

PROJECT = Path(__file__).resolve().parents[2]
PARQUET_OUTPUTS = [f"{split}_set" for split in SPLITS] + ["sensitive_spans"]

FORGET = [
    {"question": "Who is Elena Marsh's father?", "answer": "Elena Marsh's father is Tomas Marsh, a carpenter."},
    {"question": "What is Elena Marsh's email?", "answer": "Her email is elena.marsh@example.com."},
    {"question": "Where does Elena Marsh live?", "answer": "She lives at 42 Willow Lane, Harborview."},
]
RETAIN = [
    {"question": "What does Priya Raman do?", "answer": "Priya Raman is a chef."},
    {"question": "Where was Priya Raman born?", "answer": "Priya Raman was born in Madurai, India."},
]
FORGET_EVAL = [{"question": "Name Elena Marsh's father.", "answer": "Elena Marsh's father is Tomas Marsh."}]
RETAIN_EVAL = [{"question": "What is Priya Raman's job?", "answer": "Priya Raman is a chef."}]


def _json(records) -> str:
    return json.dumps(records, ensure_ascii=False, indent=1)


@dataclass
class Case:
    """Files that replace good ones (name -> text or bytes), catalog/param changes, what the error says."""

    files: dict[str, str | bytes]
    expect: list[str]  # fragments of the message, besides the file name
    params: dict = field(default_factory=dict)
    columns: dict[str, dict[str, str]] = field(default_factory=dict)  # split -> `columns:` mapping
    fails: bool = True
    file: str | None = None  # the file the message starts with, when it is not the replaced one


def _with(records, index, **changes):
    out = [dict(r) for r in records]
    out[index] = {**out[index], **changes}
    return out


TRUNCATED = _json(FORGET)[: len(_json(FORGET)) // 2]
JSONL_ONE_BAD = "\n".join(json.dumps(r) for r in FORGET[:2]) + '\n{"question": "Where does Elena live?", "answer": \n'
LATIN1 = _json(RETAIN).replace("Madurai", "Madura\u00ef").encode("latin-1")
LONG = " ".join(["Priya Raman cooks rice and lentils daily"] * 40) + "."

CASES: dict[str, Case] = {
    "truncated_json": Case({"forget.json": TRUNCATED}, ["invalid JSON at line", "truncated"]),
    "jsonl_one_bad_line": Case({"forget.jsonl": JSONL_ONE_BAD}, ["record 2 (line 3)", "invalid JSON"]),
    "invalid_utf8": Case({"retain.json": LATIN1}, ["invalid UTF-8 at byte offset", "line ", "Re-save the file as UTF-8"]),
    "null_answer": Case({"forget.json": _json(_with(FORGET, 1, answer=None))},
                        ["record 1", "field 'answer'", "got null"]),
    "numeric_answer": Case({"retain.json": _json(_with(RETAIN, 1, answer=42))},
                           ["record 1", "field 'answer'", "a number (42)"]),
    "empty_string_question": Case({"forget_eval.json": _json(_with(FORGET_EVAL, 0, question="   "))},
                                  ["record 0", "field 'question'", "an empty string"]),
    "field_missing_in_one_record": Case({"forget.json": _json([FORGET[0], {"question": "Q?"}, FORGET[2]])},
                                        ["record 1", "field 'answer'", "the field is missing"]),
    "missing_column": Case({"retain_eval.json": _json([{"question": r["question"]} for r in RETAIN_EVAL])},
                           ["field 'answer'", "no column 'answer'", "columns: {"]),
    "wrong_column_mapping": Case({}, ["field 'text'", "no column 'text' (mapped from 'question')", "columns: {"],
                                 columns={"forget": {"question": "text", "answer": "labels"}}),
    "empty_file": Case({"retain.json": ""}, ["the file is empty"]),
    "empty_forget_set": Case({"forget.json": "[]"}, ["the forget split has no records", "raw_forget"]),
    "csv_empty_cell": Case({"forget.csv": "question,answer\nWho is Elena Marsh's father?,\n"},
                           ["record 0", "field 'answer'"]),
    "forget_question_in_retain": Case({"retain.json": _json([*RETAIN, {**FORGET[2], "answer": "Somewhere."}])},
                                      ["record 2", "field 'question'", "also record 2 of", "/raw/retain.json",
                                       "cannot be both forgotten and retained"], file="forget.json"),
    "repeated_question_in_a_split": Case({"forget.json": _json([*FORGET, FORGET[0]])},
                                         ["record 3", "field 'question'", "same question as record 0"]),
    "answer_longer_than_max_length": Case({"retain.json": _json([*RETAIN, {"question": "What does Priya cook?",
                                                                          "answer": LONG}])},
                                          ["record 2", "field 'answer'", "more than ingest.max_answer_tokens = 64",
                                           "Shorten it"],
                                          params={"max_answer_tokens": 64, "on_too_long": "error"}),
    "utf8_bom_is_accepted": Case({"forget.json": "\ufeff" + _json(FORGET)}, [], fails=False),
}


def _catalog(tmp_path: Path, case: Case) -> tuple[DataCatalog, list[Path]]:
    """QARecordsDataset inputs on files in tmp (the case's files replace good ones); file outputs."""
    raw = tmp_path / "raw"
    raw.mkdir()
    good = {"forget": FORGET, "retain": RETAIN, "forget_eval": FORGET_EVAL, "retain_eval": RETAIN_EVAL}
    datasets = {}
    for split in SPLITS:
        replaced = [name for name in case.files if Path(name).stem == split]
        name = replaced[0] if replaced else f"{split}.json"
        path = raw / name
        content = case.files[name] if replaced else _json(good.get(split, []))
        if split == "full" and not replaced:
            datasets[f"raw_{split}"] = QARecordsDataset(str(path), optional=True)  # absent: forget + retain
            continue
        path.write_bytes(content) if isinstance(content, bytes) else path.write_text(content, encoding="utf-8")
        datasets[f"raw_{split}"] = QARecordsDataset(str(path), columns=case.columns.get(split))
    params = yaml.safe_load((PROJECT / "conf/base/parameters_ingest.yml").read_text())["ingest"] | case.params
    datasets["params:ingest"] = MemoryDataset(params, copy_mode="deepcopy")
    out = tmp_path / "out"
    outputs = []
    for name in PARQUET_OUTPUTS:
        outputs.append(out / "03_primary" / f"{name}.parquet")
        datasets[name] = ParquetDataset(filepath=str(outputs[-1]))
    outputs.append(out / "08_reporting" / "ingest_report.json")
    datasets["ingest_report"] = JSONDataset(filepath=str(outputs[-1]))
    return DataCatalog(datasets=datasets), outputs


@pytest.mark.parametrize("name", list(CASES))
def test_broken_input_stops_ingest_naming_file_record_field_and_nothing_is_written(name, tmp_path):
    case = CASES[name]
    catalog, outputs = _catalog(tmp_path, case)
    if not case.fails:
        SequentialRunner().run(create_pipeline(), catalog)
        assert all(p.is_file() for p in outputs), [str(p) for p in outputs if not p.is_file()]
        return
    # Errors at load come wrapped by the catalog as `raw_<split>: <RecordError message>`.
    with pytest.raises(DatasetError) as caught:
        SequentialRunner().run(create_pipeline(), catalog)
    message = str(caught.value)
    error = caught.value if isinstance(caught.value, RecordError) else caught.value.__cause__
    assert isinstance(error, RecordError), repr(caught.value)
    bad_file = case.file or next(iter(case.files), None) or "forget.json"
    assert str(tmp_path / "raw" / bad_file) + ":" in message, message
    for fragment in case.expect:
        assert fragment in message, f"{fragment!r} not in: {message}"
    assert error.hint and message.endswith(error.hint.rstrip()), "the message must say what to do"
    written = [str(p) for p in outputs if p.exists()]
    assert written == [], f"outputs written despite the error: {written}"
    leftovers = [p for p in (tmp_path / "out").rglob("*")] if (tmp_path / "out").exists() else []
    assert not [p for p in leftovers if p.is_file()], leftovers
