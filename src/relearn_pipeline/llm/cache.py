"""An append-only JSONL cache of LLM responses, so a rerun or a resumed crash repays nothing.

One line per response: ``{"key": sha256, "backend", "model", "n", "texts": [...]}``. The key hashes
(backend, model, messages, sampling params, candidate count); prompts themselves are not stored
(they contain the sensitive answers). Each response is appended and flushed as it arrives, under a
file lock, so several processes can share one cache. A line cut short by a crash is skipped on load
and cut away before the next append.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from pathlib import Path

from filelock import FileLock

from relearn_pipeline.llm.requests import GenerationRequest

logger = logging.getLogger(__name__)


def request_key(backend: str, model: str, request: GenerationRequest) -> str:
    """sha256 of everything that determines a response: backend, model, messages, sampling, n."""
    payload = {
        "backend": backend,
        "model": model,
        "messages": [list(m) for m in request.messages],
        "sampling": request.sampling.as_dict(),
        "n": request.n,
    }
    blob = json.dumps(payload, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


class ResponseCache:
    """Responses by key, backed by a JSONL file shared safely between processes."""

    def __init__(self, path: str | Path, fsync: bool = True):
        self.path = Path(path)
        self.fsync = fsync
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = FileLock(str(self.path) + ".lock")
        self._entries: dict[str, list[str]] = {}
        self._offset = 0
        self.refresh()

    def __len__(self) -> int:
        return len(self._entries)

    def __repr__(self) -> str:
        return f"ResponseCache({str(self.path)!r}, entries={len(self._entries)})"

    def get(self, key: str) -> list[str] | None:
        """The cached texts for ``key``, or None."""
        texts = self._entries.get(key)
        return list(texts) if texts is not None else None

    def put(self, key: str, texts: list[str], backend: str = "", model: str = "") -> None:
        """Append one response and flush it to disk before returning."""
        if not isinstance(texts, list) or not all(isinstance(t, str) for t in texts):
            raise TypeError(f"ResponseCache.put: texts must be a list of str, got {type(texts).__name__}")
        line = json.dumps(
            {"key": key, "backend": backend, "model": model, "n": len(texts), "texts": texts},
            ensure_ascii=False,
        )
        with self._lock:
            self._repair_tail()
            with open(self.path, "a", encoding="utf-8") as stream:
                stream.write(line + "\n")
                stream.flush()
                if self.fsync:
                    os.fsync(stream.fileno())
        self._entries[key] = list(texts)

    def refresh(self) -> None:
        """Read lines other processes appended since the last read."""
        if not self.path.exists():
            return
        with self._lock:
            with open(self.path, "rb") as stream:
                stream.seek(self._offset)
                data = stream.read()
        complete, _, _partial = data.rpartition(b"\n")
        if not complete and not data.endswith(b"\n"):
            return  # only a partial (possibly crashed) line so far: read it once it is complete
        first_line = self._line_number_at(self._offset)
        for number, raw in enumerate(complete.split(b"\n"), start=first_line):
            self._load_line(raw, number)
        self._offset += len(complete) + 1

    def _load_line(self, raw: bytes, number: int) -> None:
        if not raw.strip():
            return
        try:
            entry = json.loads(raw.decode("utf-8"))
            key, texts = entry["key"], entry["texts"]
            if not isinstance(texts, list):
                raise ValueError("texts is not a list")
        except (ValueError, KeyError, TypeError, UnicodeDecodeError) as exc:
            logger.warning(
                "%s line %d is not a cache entry (%s); skipped, its request will be made again",
                self.path, number, exc,
            )
            return
        self._entries[key] = texts

    def _line_number_at(self, offset: int) -> int:
        if offset == 0:
            return 1
        with open(self.path, "rb") as stream:
            return stream.read(offset).count(b"\n") + 1

    def _repair_tail(self) -> None:
        """Cut a partial last line (a crash mid-write) so the next entry starts on its own line."""
        if not self.path.exists():
            return
        size = self.path.stat().st_size
        if size == 0:
            return
        with open(self.path, "rb+") as stream:
            stream.seek(size - 1)
            if stream.read(1) == b"\n":
                return
            # Find the last newline and truncate after it.
            position = size
            chunk = 4096
            while position > 0:
                start = max(0, position - chunk)
                stream.seek(start)
                block = stream.read(position - start)
                found = block.rfind(b"\n")
                if found >= 0:
                    stream.truncate(start + found + 1)
                    logger.warning("%s: cut a partial last line left by an interrupted write", self.path)
                    return
                position = start
            stream.truncate(0)
