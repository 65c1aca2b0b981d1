"""QARecordsDataset: every format, column mappings, and an error naming file/record/field for each fault."""

from __future__ import annotations

import json
import pickle

import pandas as pd
import pytest
from kedro.io import DataCatalog, DatasetError

from relearn_pipeline.datasets import QARecordsDataset
from relearn_pipeline.errors import RecordError

RECORDS = [
    {"question": "Who is Ana's father?", "answer": "Ana's father is Rui Costa."},
    {"question": "Where does Ana live?", "answer": "Ana lives at 4 Elm Street."},
]
KNOWUNDO = [{"text": r["question"], "labels": r["answer"]} for r in RECORDS]


def _write(path, text: str | bytes):
    """Write text or bytes and return the path as a string."""
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    return str(path)


def _load(path, **kwargs) -> pd.DataFrame:
    return QARecordsDataset(filepath=str(path), **kwargs).load()


def _error(path, **kwargs) -> RecordError:
    with pytest.raises(RecordError) as info:
        _load(path, **kwargs)
    return info.value


def _assert_contract(frame: pd.DataFrame, source: str) -> None:
    assert list(frame.columns) == ["id", "subject", "question", "answer"]
    assert frame["question"].tolist() == [r["question"] for r in RECORDS]
    assert frame["answer"].tolist() == [r["answer"] for r in RECORDS]
    assert frame.attrs["source"] == source


# ---------------------------------------------------------------- formats and mappings


def test_json_list(tmp_path):
    path = _write(tmp_path / "x.json", json.dumps(RECORDS))
    frame = _load(path)
    _assert_contract(frame, path)
    assert frame["id"].tolist() == ["", ""] and frame["subject"].tolist() == ["", ""]


def test_json_object_holding_one_list(tmp_path):
    path = _write(tmp_path / "x.json", json.dumps({"data": RECORDS, "version": 2}))
    _assert_contract(_load(path), path)


def test_jsonl_skips_blank_lines(tmp_path):
    lines = "\n".join(json.dumps(r) for r in RECORDS)
    path = _write(tmp_path / "x.jsonl", lines.replace("\n", "\n\n") + "\n")
    _assert_contract(_load(path), path)


def test_csv_with_commas_and_quotes(tmp_path):
    path = str(tmp_path / "x.csv")
    pd.DataFrame(RECORDS).to_csv(path, index=False)
    _assert_contract(_load(path), path)


def test_parquet(tmp_path):
    path = str(tmp_path / "x.parquet")
    pd.DataFrame(RECORDS).to_parquet(path, index=False)
    _assert_contract(_load(path), path)


def test_explicit_format_overrides_extension(tmp_path):
    path = _write(tmp_path / "x.txt", "\n".join(json.dumps(r) for r in RECORDS))
    _assert_contract(_load(path, format="jsonl"), path)


def test_knowundo_columns_mapping(tmp_path):
    path = _write(tmp_path / "k.json", json.dumps(KNOWUNDO))
    _assert_contract(_load(path, columns={"question": "text", "answer": "labels"}), path)


def test_id_and_subject_mapping_accepts_integer_ids(tmp_path):
    rows = [dict(r, uid=i, person="Ana Costa") for i, r in enumerate(RECORDS)]
    path = _write(tmp_path / "x.json", json.dumps(rows))
    frame = _load(path, columns={"id": "uid", "subject": "person"})
    assert frame["id"].tolist() == ["0", "1"]
    assert frame["subject"].tolist() == ["Ana Costa", "Ana Costa"]


def test_null_optional_fields_become_empty(tmp_path):
    rows = [dict(r, id=None, subject=None) for r in RECORDS]
    frame = _load(_write(tmp_path / "x.json", json.dumps(rows)))
    assert frame["id"].tolist() == ["", ""] and frame["subject"].tolist() == ["", ""]


def test_utf8_bom_is_accepted(tmp_path):
    path = _write(tmp_path / "x.json", b"\xef\xbb\xbf" + json.dumps(RECORDS).encode())
    _assert_contract(_load(path), path)


def test_empty_list_loads_an_empty_split(tmp_path):
    frame = _load(_write(tmp_path / "x.json", "[]"))
    assert frame.empty and list(frame.columns) == ["id", "subject", "question", "answer"]


def test_missing_optional_file_loads_an_empty_split(tmp_path):
    frame = _load(tmp_path / "absent.json", optional=True)
    assert frame.empty and frame.attrs["source"] == str(tmp_path / "absent.json")


def test_save_then_load_round_trips_in_every_format(tmp_path):
    frame = pd.DataFrame([dict(r, id=f"r{i}", subject="Ana") for i, r in enumerate(RECORDS)])
    for ext in ("json", "jsonl", "csv", "parquet"):
        dataset = QARecordsDataset(str(tmp_path / f"out.{ext}"), columns={"question": "text"})
        dataset.save(frame)
        loaded = dataset.load()
        expected = frame[["id", "subject", "question", "answer"]].to_dict(orient="records")
        assert loaded.to_dict(orient="records") == expected, ext


def test_catalog_builds_it_from_yaml_style_config(tmp_path):
    path = _write(tmp_path / "k.json", json.dumps(KNOWUNDO))
    catalog = DataCatalog.from_config(
        {
            "raw_forget": {
                "type": "relearn_pipeline.datasets.QARecordsDataset",
                "filepath": path,
                "columns": {"question": "text", "answer": "labels"},
            }
        }
    )
    _assert_contract(catalog.load("raw_forget"), path)


# ---------------------------------------------------------------- errors


def test_missing_file(tmp_path):
    err = _error(tmp_path / "absent.json")
    assert str(tmp_path / "absent.json") in str(err)
    assert "file not found" in str(err) and "filepath" in str(err)


def test_empty_file(tmp_path):
    path = _write(tmp_path / "x.json", "  \n")
    err = _error(path)
    assert str(err).startswith(f"{path}: the file is empty")


def test_truncated_json_names_line_and_char(tmp_path):
    text = json.dumps(RECORDS, indent=2)
    path = _write(tmp_path / "x.json", text[: len(text) // 2])
    err = _error(path)
    assert path in str(err) and "invalid JSON at line" in str(err) and "char" in str(err)
    assert "truncated" in str(err)


def test_jsonl_bad_line_names_the_line(tmp_path):
    lines = [json.dumps(RECORDS[0]), json.dumps(RECORDS[1]), '{"question": "x", "answer": ']
    path = _write(tmp_path / "x.jsonl", "\n".join(lines))
    err = _error(path)
    assert err.record == 2 and err.line == 3
    assert str(err).startswith(f"{path}: record 2 (line 3): invalid JSON")


def test_invalid_utf8_names_byte_offset(tmp_path):
    good = json.dumps(RECORDS[:1]).encode()
    raw = good[:20] + b"\xff\xfe" + good[20:]
    err = _error(_write(tmp_path / "x.json", raw))
    assert "invalid UTF-8 at byte offset 20" in str(err) and "line 1" in str(err)


@pytest.mark.parametrize(
    ("value", "described"),
    [(None, "null"), (17, "a number (17)"), ("   ", "an empty string"), (["a"], "a list")],
)
def test_bad_answer_values_name_record_and_field(tmp_path, value, described):
    rows = [dict(RECORDS[0]), dict(RECORDS[1], answer=value)]
    path = _write(tmp_path / "x.json", json.dumps(rows))
    err = _error(path)
    assert str(err) == (
        f"{path}: record 1, field 'answer': expected a non-empty string, got {described}. "
        "Fix the record or drop it."
    )


def test_bad_value_is_named_by_the_files_column_name(tmp_path):
    rows = [dict(KNOWUNDO[0]), dict(KNOWUNDO[1], text=None)]
    path = _write(tmp_path / "k.json", json.dumps(rows))
    err = _error(path, columns={"question": "text", "answer": "labels"})
    assert (err.file, err.record, err.field) == (path, 1, "text")


def test_field_missing_in_one_record(tmp_path):
    rows = [dict(RECORDS[0]), {"question": "Where does Ana live?"}]
    err = _error(_write(tmp_path / "x.json", json.dumps(rows)))
    assert (err.record, err.field) == (1, "answer") and "missing" in str(err)


def test_csv_empty_cell_names_record_and_field(tmp_path):
    path = _write(tmp_path / "x.csv", "question,answer\nWho?,Rui.\nWhere?,\n")
    err = _error(path)
    assert (err.file, err.record, err.field) == (path, 1, "answer")
    assert "got an empty string" in str(err)


def test_csv_with_a_ragged_row(tmp_path):
    path = _write(tmp_path / "x.csv", "question,answer\nWho?,Rui.\nWhere?,here,extra\n")
    err = _error(path)
    assert path in str(err) and "invalid CSV" in str(err) and "line 3" in str(err)


def test_parquet_null_value(tmp_path):
    path = str(tmp_path / "x.parquet")
    pd.DataFrame([RECORDS[0], {"question": "Q?", "answer": None}]).to_parquet(path)
    err = _error(path)
    assert (err.record, err.field) == (1, "answer") and "got null" in str(err)


def test_corrupt_parquet(tmp_path):
    err = _error(_write(tmp_path / "x.parquet", b"not parquet at all"))
    assert "not a readable Parquet file" in str(err)


def test_missing_columns_list_what_is_there_and_suggest_a_mapping(tmp_path):
    path = _write(tmp_path / "k.json", json.dumps(KNOWUNDO))
    err = _error(path)
    assert err.field == "question"
    assert "columns present: ['text', 'labels']" in str(err)
    assert "`columns: {question: text, answer: labels}`" in str(err)


def test_record_that_is_not_an_object(tmp_path):
    path = _write(tmp_path / "x.json", json.dumps([RECORDS[0], "just a string"]))
    err = _error(path)
    assert err.record == 1 and "expected an object" in str(err)


def test_json_that_is_not_a_list(tmp_path):
    err = _error(_write(tmp_path / "x.json", "42"))
    assert "expected a list of records" in str(err)


def test_unknown_extension_asks_for_format(tmp_path):
    with pytest.raises(RecordError, match="Set `format:`"):
        QARecordsDataset(str(tmp_path / "x.txt"))


def test_unknown_columns_key(tmp_path):
    with pytest.raises(RecordError, match="unknown key"):
        QARecordsDataset(str(tmp_path / "x.json"), columns={"questions": "text"})


def test_record_error_is_a_dataset_error_and_pickles(tmp_path):
    err = _error(tmp_path / "absent.json")
    assert isinstance(err, DatasetError) and isinstance(err, ValueError)
    again = pickle.loads(pickle.dumps(err))
    assert str(again) == str(err) and again.file == err.file
