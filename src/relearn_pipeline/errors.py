"""Errors about user data that say where the problem is and what to do about it."""

from __future__ import annotations

from kedro.io import DatasetError

DEFAULT_HINT = "Fix the record or drop it."


class RecordError(DatasetError, ValueError):
    """Bad input data: names the file, the record (0-based) and line, the field, and a fix.

    A `DatasetError`, so Kedro passes it through a dataset's `load()` unwrapped, and a
    `ValueError`, so callers outside Kedro can catch it as bad input.
    """

    def __init__(
        self,
        file: str,
        message: str,
        *,
        record: int | None = None,
        field: str | None = None,
        line: int | None = None,
        hint: str | None = DEFAULT_HINT,
    ) -> None:
        self.file = str(file)
        self.message = message
        self.record = record
        self.field = field
        self.line = line
        self.hint = hint
        super().__init__(self._render())

    def _render(self) -> str:
        """`<file>: record <i> (line <n>), field '<f>': <message>. <hint>`, omitting unknown parts."""
        where = []
        if self.record is not None:
            where.append(f"record {self.record}")
        if self.line is not None:
            where.append(f"(line {self.line})" if where else f"line {self.line}")
        location = " ".join(where)
        if self.field is not None:
            location = f"{location}, field '{self.field}'" if location else f"field '{self.field}'"
        text = f"{self.file}: {location}: {self.message}" if location else f"{self.file}: {self.message}"
        text = text.rstrip(".") + "."
        return f"{text} {self.hint}" if self.hint else text

    def __reduce__(self):
        """Pickle with keyword arguments (ParallelRunner sends exceptions across processes)."""
        return (_rebuild, (self.file, self.message, self.record, self.field, self.line, self.hint))


def _rebuild(file, message, record, field, line, hint) -> RecordError:
    """Recreate a RecordError from its parts."""
    return RecordError(file, message, record=record, field=field, line=line, hint=hint)
