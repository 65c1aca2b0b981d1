"""Property tests of QARecordsDataset: arbitrary records round-trip, arbitrary files load or fail cleanly.

"Cleanly" means a `RecordError` (file, record, field, what to do); any other exception type from a
loader is a bug, because Kedro would show it without saying which file or record is at fault.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import pandas as pd
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from relearn_pipeline.datasets import QARecordsDataset
from relearn_pipeline.datasets.qa_records import CONTRACT_COLUMNS
from relearn_pipeline.errors import RecordError

FORMATS = ("json", "jsonl", "csv", "parquet")
SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# Any text, including line and paragraph separators, quotes, commas, control characters, emoji.
_text = st.text(max_size=40)
_required = _text.filter(lambda t: t.strip() != "")
_record = st.fixed_dictionaries(
    {"question": _required, "answer": _required},
    optional={"id": _text, "subject": _text},
)
_json_value = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | _text,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.sampled_from(["question", "answer", "id", "subject", "x"]) | _text, inner, max_size=4),
    max_leaves=12,
)


def _dataset(directory: str, fmt: str, **kwargs) -> QARecordsDataset:
    return QARecordsDataset(str(Path(directory) / f"records.{fmt}"), **kwargs)


@SETTINGS
@given(records=st.lists(_record, min_size=1, max_size=6), fmt=st.sampled_from(FORMATS), mapped=st.booleans())
def test_arbitrary_records_round_trip_in_every_format(records, fmt, mapped):
    columns = {"question": "text", "answer": "labels"} if mapped else None
    frame = pd.DataFrame(
        {c: pd.Series([r.get(c, "") for r in records], dtype=object) for c in CONTRACT_COLUMNS}
    )
    with tempfile.TemporaryDirectory() as directory:
        dataset = _dataset(directory, fmt, columns=columns)
        dataset.save(frame)
        loaded = dataset.load()
    assert list(loaded.columns) == list(CONTRACT_COLUMNS)
    for column in CONTRACT_COLUMNS:
        assert loaded[column].tolist() == frame[column].tolist(), column


@SETTINGS
@given(data=st.binary(max_size=300), fmt=st.sampled_from(FORMATS))
def test_arbitrary_bytes_load_or_raise_record_error(data, fmt):
    with tempfile.TemporaryDirectory() as directory:
        dataset = _dataset(directory, fmt)
        (Path(directory) / f"records.{fmt}").write_bytes(data)
        _load_or_record_error(dataset)


@SETTINGS
@given(value=_json_value, fmt=st.sampled_from(["json", "jsonl"]))
def test_arbitrary_json_loads_or_raises_record_error(value, fmt):
    if fmt == "json":
        text = json.dumps(value, ensure_ascii=False)
    else:
        items = value if isinstance(value, list) else [value]
        text = "\n".join(json.dumps(v, ensure_ascii=False) for v in items)
    with tempfile.TemporaryDirectory() as directory:
        dataset = _dataset(directory, fmt)
        (Path(directory) / f"records.{fmt}").write_text(text, encoding="utf-8")
        _load_or_record_error(dataset)


def _load_or_record_error(dataset: QARecordsDataset) -> None:
    """Loads to the contract (string cells, required ones non-empty), or raises RecordError naming the file."""
    try:
        frame = dataset.load()
    except RecordError as error:
        assert str(error).startswith(dataset._filepath)
        return
    assert list(frame.columns) == list(CONTRACT_COLUMNS)
    for column in CONTRACT_COLUMNS:
        assert all(isinstance(v, str) for v in frame[column])
    assert all(q.strip() for q in frame["question"]) and all(a.strip() for a in frame["answer"])
