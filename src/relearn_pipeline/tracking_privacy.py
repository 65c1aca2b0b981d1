"""Personal data stays out of MLflow: forget-set spans are masked in every logged artifact.

The forget set is personal data. With ``tracking.mask_personal_data: true`` (the default), every
``kedro_mlflow.io.artifacts.MlflowArtifactDataset`` of the catalog still writes its local file
unmasked, but what goes to MLflow is a copy in which each sensitive span of the forget set (the
``sensitive_spans`` dataset written by ``ingest``) reads ``[REDACTED:<LABEL>]``. The masking works on
the data before it is serialised (strings, nested dicts/lists, DataFrame cells), so JSON escapes or
Parquet compression cannot hide a span from it.

If an artifact is saved before the spans exist (``ingest`` writes its splits first), it is logged
once ``sensitive_spans`` is saved, or at the end of the run; when no spans can be found at all, the
artifact is not logged (fail closed) and a warning says so. ``false`` restores kedro-mlflow's plain
behaviour. Registered in ``settings.HOOKS``; one place, so a new artifact entry is covered as well.
"""

from __future__ import annotations

import copy
import logging
import re
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

import mlflow
import numpy as np
import pandas as pd
from kedro.framework.hooks import hook_impl
from kedro.io import AbstractDataset

logger = logging.getLogger(__name__)

SPANS_DATASET = "sensitive_spans"


class SpanMasker:
    """Replaces every occurrence (case-insensitive) of a span's text by ``[REDACTED:<LABEL>]``."""

    def __init__(self, spans: Iterable[tuple[str, str]]):
        labels: dict[str, str] = {}
        for text, label in spans:
            text = str(text).strip()
            if text:
                labels.setdefault(text.casefold(), str(label or "PII").upper())
        self._labels = labels
        # Longest first, so "12 Elm Street, Oslo" is masked whole before "Oslo" alone.
        ordered = sorted(labels, key=len, reverse=True)
        self._pattern = re.compile("|".join(span_regex(t) for t in ordered), re.IGNORECASE) if ordered else None

    @classmethod
    def from_frame(cls, spans: pd.DataFrame) -> SpanMasker:
        return cls(zip(spans["text"], spans["label"] if "label" in spans else ["PII"] * len(spans)))

    def __len__(self) -> int:
        return len(self._labels)

    def mask_text(self, text: str) -> str:
        if self._pattern is None:
            return text
        return self._pattern.sub(lambda m: f"[REDACTED:{self._labels[m.group(0).casefold()]}]", text)

    def mask(self, data: Any) -> Any:
        """A masked copy of ``data``; types without text (figures, numbers) come back as they are."""
        if isinstance(data, str):
            return self.mask_text(data)
        if isinstance(data, bytes):
            try:
                return self.mask_text(data.decode("utf-8")).encode("utf-8")
            except UnicodeDecodeError:
                return data
        if isinstance(data, dict):
            return {self.mask(k) if isinstance(k, str) else k: self.mask(v) for k, v in data.items()}
        if isinstance(data, (list, tuple)):
            return type(data)(self.mask(v) for v in data)
        if isinstance(data, pd.DataFrame):
            masked = data.copy()
            masked.columns = [self.mask(c) if isinstance(c, str) else c for c in masked.columns]
            for column in masked.columns:
                if masked[column].dtype == object or pd.api.types.is_string_dtype(masked[column]):
                    masked[column] = masked[column].map(self.mask)
            return masked
        if isinstance(data, pd.Series):
            return data.map(self.mask) if data.dtype == object else data
        if isinstance(data, np.ndarray) and data.dtype.kind in "OUS":
            return np.array([self.mask(v) for v in data.tolist()], dtype=object)
        return data


def span_regex(text: str) -> str:
    """``text`` as a regex that does not match inside a longer word or number ("2004" not in "20045")."""
    body = re.escape(text)
    if text[:1].isalnum() or text[:1] == "_":
        body = r"(?<!\w)" + body
    if text[-1:].isalnum() or text[-1:] == "_":
        body = body + r"(?!\w)"
    return body


def _is_mlflow_artifact_dataset(dataset: Any) -> bool:
    """kedro-mlflow's MlflowArtifactDataset builds a subclass of the wrapped dataset on the fly."""
    return hasattr(dataset, "artifact_path") and hasattr(dataset, "_logging_activated") and hasattr(dataset, "run_id")


@dataclass
class _Pending:
    name: str
    dataset: AbstractDataset
    data: Any
    run_id: str


class MaskedArtifactDataset(AbstractDataset):
    """Wraps one MlflowArtifactDataset: local save as is, MLflow copy masked (through the hook)."""

    def __init__(self, name: str, inner: AbstractDataset, hook: PersonalDataMaskingHook):
        self._name = name
        self._inner = inner
        self._hook = hook
        self.metadata = getattr(inner, "metadata", None)

    # kedro-mlflow switches logging off for disabled pipelines through this attribute.
    @property
    def _logging_activated(self) -> bool:
        return self._inner._logging_activated

    @_logging_activated.setter
    def _logging_activated(self, flag: bool) -> None:
        self._inner._logging_activated = flag

    @property
    def artifact_path(self) -> str | None:
        return self._inner.artifact_path

    def load(self) -> Any:
        return self._inner.load()

    def save(self, data: Any) -> None:
        logging_on = self._inner._logging_activated
        self._inner._logging_activated = False
        try:
            self._inner.save(data)
        finally:
            self._inner._logging_activated = logging_on
        if logging_on:
            self._hook.log_masked(self._name, self._inner, data)

    def _exists(self) -> bool:
        return self._inner.exists()

    def _describe(self) -> dict[str, Any]:
        return {"masked_for_mlflow": True, **self._inner._describe()}


class PersonalDataMaskingHook:
    """Installs MaskedArtifactDataset over every MLflow artifact dataset when masking is on."""

    def __init__(self) -> None:
        self._catalog = None
        self._masker: SpanMasker | None = None
        self._pending: list[_Pending] = []

    @hook_impl
    def after_catalog_created(self, catalog, parameters: dict[str, Any]) -> None:
        self._catalog = catalog
        self._masker = None
        self._pending = []
        # Kedro passes the catalog's parameter entries: {"parameters": {...}, "params:tracking": {...}, ...}
        tracking = ((parameters or {}).get("parameters") or {}).get("tracking") or {}
        if not tracking.get("mask_personal_data", True):
            logger.info("tracking.mask_personal_data is off: artifacts go to MLflow unmasked")
            return
        for name, dataset in list(catalog.items()):
            if _is_mlflow_artifact_dataset(dataset):
                catalog[name] = MaskedArtifactDataset(name, dataset, self)

    @hook_impl
    def after_dataset_saved(self, dataset_name: str, data: Any) -> None:
        if dataset_name == SPANS_DATASET and isinstance(data, pd.DataFrame):
            self._masker = SpanMasker.from_frame(data)
            self._flush()

    @hook_impl
    def after_pipeline_run(self) -> None:
        self._flush(final=True)

    @hook_impl
    def on_pipeline_error(self) -> None:
        self._flush(final=True)

    # -- logging -------------------------------------------------------------------------------
    def log_masked(self, name: str, dataset: AbstractDataset, data: Any) -> None:
        run = mlflow.active_run()
        run_id = dataset.run_id or (run.info.run_id if run else None)
        if run_id is None:
            return
        self._pending.append(_Pending(name, dataset, data, run_id))
        if self._spans_masker() is not None:
            self._flush()

    def _spans_masker(self) -> SpanMasker | None:
        if self._masker is None and self._catalog is not None and SPANS_DATASET in self._catalog:
            try:
                if self._catalog.exists(SPANS_DATASET):
                    self._masker = SpanMasker.from_frame(self._catalog.load(SPANS_DATASET))
            except Exception as err:  # noqa: BLE001 - any failure means: no spans, fail closed
                logger.warning("could not load %s for masking: %s", SPANS_DATASET, err)
        return self._masker

    def _flush(self, final: bool = False) -> None:
        masker = self._spans_masker()
        if masker is None:
            if final and self._pending:
                logger.warning(
                    "tracking.mask_personal_data is on but no `%s` exist: not logged to MLflow: %s",
                    SPANS_DATASET, ", ".join(p.name for p in self._pending),
                )
                self._pending = []
            return
        pending, self._pending = self._pending, []
        for item in pending:
            _log_artifact(item, masker.mask(item.data))


def _log_artifact(item: _Pending, masked: Any) -> None:
    """Writes ``masked`` with (a copy of) the item's own dataset to a temp file of the same name and logs it."""
    dataset = item.dataset
    filepath = getattr(dataset, "_filepath", None)
    if filepath is None or getattr(dataset, "_protocol", "file") not in ("file", None):
        logger.warning("%s: cannot write a masked copy of this dataset; not logged to MLflow", item.name)
        return
    with tempfile.TemporaryDirectory(prefix="relearn-masked-") as tmp:
        clone = copy.copy(dataset)
        clone._logging_activated = False
        clone._filepath = PurePosixPath(Path(tmp, PurePosixPath(filepath).name).as_posix())
        if hasattr(clone, "_version"):
            clone._version = None
        clone.save(masked)
        mlflow.MlflowClient().log_artifact(item.run_id, str(clone._filepath), item.dataset.artifact_path)
