"""QA records from JSON, JSONL, CSV or Parquet, with configurable column names, checked record by record.

Loads to the QA split contract of docs/architecture.md: a DataFrame with string columns
`id, subject, question, answer` (`id`/`subject` are "" where the file has none; the ingest
pipeline assigns ids and infers subjects) and `attrs["source"]` = the file path, so later
checks can name the file. Every problem raises `RecordError` naming file, record and field.
"""

from __future__ import annotations

import csv
import io
import json
from numbers import Number
from pathlib import Path
from typing import Any

import pandas as pd
from kedro.io import AbstractDataset

from relearn_pipeline.atomic import atomic_write_text
from relearn_pipeline.errors import RecordError

CONTRACT_COLUMNS = ("id", "subject", "question", "answer")
REQUIRED_COLUMNS = ("question", "answer")
FORMATS = {".json": "json", ".jsonl": "jsonl", ".ndjson": "jsonl", ".csv": "csv"}
FORMATS |= {".parquet": "parquet", ".pq": "parquet"}
# Column names other benchmarks use, to suggest a `columns:` mapping when ours are missing.
KNOWN_ALIASES = {
    "question": ("text", "prompt", "query", "input", "instruction", "q"),
    "answer": ("labels", "label", "response", "output", "target", "completion", "a"),
    "subject": ("name", "person", "entity", "author"),
    "id": ("uid", "idx", "index", "record_id"),
}


def empty_split() -> pd.DataFrame:
    """A QA split with the contract columns and no rows."""
    return pd.DataFrame({column: pd.Series([], dtype=object) for column in CONTRACT_COLUMNS})


def _is_null(value: Any) -> bool:
    """Whether a cell is missing (None, NaN or pd.NA, as pandas and Parquet write it)."""
    return value is None or (pd.api.types.is_scalar(value) and bool(pd.isna(value)))


def _describe_value(value: Any) -> str:
    """How a bad value reads in an error: null, a number (3), a list, an empty string."""
    if _is_null(value):
        return "null"
    if isinstance(value, bool):
        return f"a boolean ({str(value).lower()})"
    if isinstance(value, Number):
        return f"a number ({value})"
    if isinstance(value, str):
        return "an empty string" if not value.strip() else f"a string ({value!r})"
    return f"a {type(value).__name__}"


class QARecordsDataset(AbstractDataset[pd.DataFrame, pd.DataFrame]):
    """QA records from a local JSON/JSONL/CSV/Parquet file, mapped to `id, subject, question, answer`.

    Example catalog entry (KnowUnDo stores questions as `text` and answers as `labels`)::

        raw_forget:
          type: relearn_pipeline.datasets.QARecordsDataset
          filepath: ../shared/benchmarks/knowundo_privacy/unlearn_train.json
          columns: {question: text, answer: labels}
    """

    def __init__(
        self,
        filepath: str,
        format: str = "auto",
        columns: dict[str, str] | None = None,
        optional: bool = False,
        metadata: dict[str, Any] | None = None,
    ) -> None:
        """`columns` maps contract names (question, answer, id, subject) to the file's names."""
        self._filepath = str(filepath)
        self._path = Path(filepath)
        self._columns = dict(columns or {})
        self._optional = optional
        self.metadata = metadata
        unknown = sorted(set(self._columns) - set(CONTRACT_COLUMNS))
        if unknown:
            raise RecordError(
                self._filepath,
                f"unknown key(s) {unknown} in `columns:`; the keys are our names "
                f"{list(CONTRACT_COLUMNS)} and the values the file's column names",
                hint="Fix the catalog entry.",
            )
        self._format = self._resolve_format(format)

    def _resolve_format(self, format: str) -> str:
        """The file format: as given, or from the file extension when `auto`."""
        known = sorted(set(FORMATS.values()))
        if format != "auto":
            if format not in known:
                raise RecordError(
                    self._filepath, f"unknown format {format!r}", hint=f"Use one of {known}."
                )
            return format
        suffix = self._path.suffix.lower()
        if suffix not in FORMATS:
            raise RecordError(
                self._filepath,
                f"cannot tell the format from the extension {suffix!r}",
                hint=f"Set `format:` in the catalog entry to one of {known}.",
            )
        return FORMATS[suffix]

    def _describe(self) -> dict[str, Any]:
        """Parameters shown in Kedro's logs."""
        return {"filepath": self._filepath, "format": self._format, "columns": self._columns}

    def _exists(self) -> bool:
        """Whether the file is there."""
        return self._path.is_file()

    # ------------------------------------------------------------------ load

    def load(self) -> pd.DataFrame:
        """Read, check and map the records; a missing optional file gives an empty split."""
        if not self._path.is_file():
            if self._optional:
                frame = empty_split()
                frame.attrs["source"] = self._filepath
                return frame
            raise RecordError(
                self._filepath,
                f"file not found (looked for {self._path.resolve()})",
                hint="Point this catalog entry's `filepath:` at an existing file, "
                "or set `optional: true` if the split may be absent.",
            )
        records = self._read_records()
        frame = self._to_contract(records)
        frame.attrs["source"] = self._filepath
        return frame

    def _read_records(self) -> list[dict[str, Any]]:
        """The file's records as dicts, in file order."""
        if self._format == "parquet":
            return self._read_parquet()
        text = self._read_text()
        if not text.strip():
            raise RecordError(
                self._filepath,
                "the file is empty",
                hint="It may have been cut short while writing; restore it or remove the entry.",
            )
        if self._format == "json":
            return self._parse_json(text)
        if self._format == "jsonl":
            return self._parse_jsonl(text)
        return self._parse_csv(text)

    def _read_text(self) -> str:
        """The file decoded as UTF-8; a leading byte-order mark is dropped."""
        raw = self._path.read_bytes()
        try:
            return raw.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            line = raw[: exc.start].count(b"\n") + 1
            raise RecordError(
                self._filepath,
                f"invalid UTF-8 at byte offset {exc.start} ({raw[exc.start:exc.start + 4]!r})",
                line=line,
                hint="Re-save the file as UTF-8 (e.g. `iconv -f latin1 -t utf-8`).",
            ) from None

    def _parse_json(self, text: str) -> list[dict[str, Any]]:
        """Records of a JSON file: a list of objects, or an object holding one such list."""
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise RecordError(
                self._filepath,
                f"invalid JSON at line {exc.lineno}, column {exc.colno} (char {exc.pos}): {exc.msg}",
                hint="The file may be truncated or hand-edited; repair it. "
                "For one object per line, name it .jsonl or set `format: jsonl`.",
            ) from None
        if isinstance(data, dict):
            lists = [v for v in data.values() if isinstance(v, list)]
            if len(lists) != 1:
                raise RecordError(
                    self._filepath,
                    f"expected a list of records, got an object with keys {sorted(data)[:10]}",
                    hint="Store the records as a JSON list of objects.",
                )
            data = lists[0]
        if not isinstance(data, list):
            raise RecordError(
                self._filepath,
                f"expected a list of records, got {_describe_value(data)}",
                hint="Store the records as a JSON list of objects.",
            )
        for index, item in enumerate(data):
            if not isinstance(item, dict):
                raise RecordError(
                    self._filepath, f"expected an object, got {_describe_value(item)}", record=index
                )
        return data

    def _parse_jsonl(self, text: str) -> list[dict[str, Any]]:
        """Records of a JSON Lines file (blank lines skipped).

        Lines end at LF only (the JSON Lines rule): `str.splitlines` would also split inside
        strings at U+0085, U+2028 and other separators that `json.dumps(ensure_ascii=False)` writes raw.
        """
        records: list[dict[str, Any]] = []
        for lineno, line in enumerate(text.split("\n"), start=1):
            if not line.strip():
                continue
            try:
                item = json.loads(line)
            except json.JSONDecodeError as exc:
                raise RecordError(
                    self._filepath,
                    f"invalid JSON at column {exc.colno}: {exc.msg}",
                    record=len(records),
                    line=lineno,
                ) from None
            if not isinstance(item, dict):
                raise RecordError(
                    self._filepath,
                    f"expected an object, got {_describe_value(item)}",
                    record=len(records),
                    line=lineno,
                )
            records.append(item)
        return records

    def _parse_csv(self, text: str) -> list[dict[str, Any]]:
        """Records of a CSV file with a header row; every cell is read as text."""
        try:
            frame = pd.read_csv(io.StringIO(text), dtype=str, keep_default_na=False)
        except (pd.errors.ParserError, ValueError) as exc:
            raise RecordError(
                self._filepath,
                f"invalid CSV: {str(exc).strip()}",
                hint="Quote fields that contain commas or newlines, and keep one header row.",
            ) from None
        return frame.to_dict(orient="records")

    def _read_parquet(self) -> list[dict[str, Any]]:
        """Records of a Parquet file."""
        try:
            frame = pd.read_parquet(self._path)
        except Exception as exc:  # pyarrow raises several unrelated types for a corrupt file
            raise RecordError(
                self._filepath,
                f"not a readable Parquet file ({type(exc).__name__}: {exc})",
                hint="Rewrite it with pandas/pyarrow, or set `format:` if it is not Parquet.",
            ) from None
        return frame.to_dict(orient="records")

    # ------------------------------------------------------------------ mapping and checks

    def _source_column(self, name: str) -> str:
        """The file's column holding contract column `name`."""
        return self._columns.get(name, name)

    def _check_columns(self, records: list[dict[str, Any]]) -> None:
        """Stop when a required (or explicitly mapped) column appears in no record."""
        present: dict[str, None] = {}
        for record in records:
            present.update(dict.fromkeys(record))
        needed = list(REQUIRED_COLUMNS) + [c for c in ("id", "subject") if c in self._columns]
        missing = [name for name in needed if self._source_column(name) not in present]
        if not missing:
            return
        # Suggest the whole mapping at once, from column names other benchmarks use.
        mapping = dict(self._columns)
        for name in missing:
            alias = next((a for a in KNOWN_ALIASES[name] if a in present), None)
            mapping[name] = alias or f"<column with the {name}s>"
        suggestion = ", ".join(f"{key}: {value}" for key, value in mapping.items())
        column = self._source_column(missing[0])
        mapped = f" (mapped from {missing[0]!r})" if column != missing[0] else ""
        raise RecordError(
            self._filepath,
            f"no column {column!r}{mapped}; columns present: {list(present)}",
            field=column,
            hint=f"Map the file's columns in the catalog entry: `columns: {{{suggestion}}}`.",
        )

    def _text_value(self, record: dict[str, Any], index: int, name: str, required: bool) -> str:
        """One string cell, checked: required ones must be non-empty strings."""
        column = self._source_column(name)
        if column not in record:
            if required:
                raise RecordError(self._filepath, "the field is missing", record=index, field=column)
            return ""
        value = record[column]
        if isinstance(value, str) and (value.strip() or not required):
            return value
        if not required and _is_null(value):
            return ""
        # Integer ids and subjects are common (row numbers); accept them as text.
        if not required and isinstance(value, Number) and not isinstance(value, bool):
            return str(int(value)) if float(value).is_integer() else str(value)
        raise RecordError(
            self._filepath,
            f"expected a non-empty string, got {_describe_value(value)}",
            record=index,
            field=column,
        )

    def _to_contract(self, records: list[dict[str, Any]]) -> pd.DataFrame:
        """Checked records as a DataFrame with exactly the contract columns."""
        if not records:
            return empty_split()
        self._check_columns(records)
        rows = {name: [] for name in CONTRACT_COLUMNS}
        for index, record in enumerate(records):
            for name in CONTRACT_COLUMNS:
                value = self._text_value(record, index, name, name in REQUIRED_COLUMNS)
                rows[name].append(value)
        return pd.DataFrame({name: pd.Series(values, dtype=object) for name, values in rows.items()})

    # ------------------------------------------------------------------ save

    def save(self, data: pd.DataFrame) -> None:
        """Write the contract columns in this dataset's format, under its own column names."""
        missing = [c for c in REQUIRED_COLUMNS if c not in data.columns]
        if missing:
            raise RecordError(self._filepath, f"cannot save: the table lacks columns {missing}")
        frame = data[[c for c in CONTRACT_COLUMNS if c in data.columns]]
        frame = frame.rename(columns={c: self._source_column(c) for c in frame.columns})
        self._path.parent.mkdir(parents=True, exist_ok=True)
        if self._format == "parquet":
            frame.to_parquet(self._path, index=False)
        elif self._format == "csv":
            # Every cell quoted: unquoted, a lone "\r" inside a cell reads back as a line break.
            atomic_write_text(self._path, frame.to_csv(index=False, quoting=csv.QUOTE_ALL))
        else:
            records = frame.to_dict(orient="records")
            if self._format == "json":
                text = json.dumps(records, ensure_ascii=False, indent=2) + "\n"
            else:
                text = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records)
            atomic_write_text(self._path, text)
