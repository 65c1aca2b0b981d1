"""Kedro datasets for a transformers model directory (safetensors + tokenizer + fingerprint).

``HFModelDataset`` saves a ``ModelBundle`` whole or not at all and loads it back.
``ModelFingerprintDataset`` reads the same directory's fingerprint only, so a node can tell whether
the model it is about to build is already there, and load it lazily instead of building it again.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from kedro.io import AbstractDataset, DatasetError

from relearn_pipeline.atomic import atomic_dir
from relearn_pipeline.models.loading import ModelBundle, load_model_dir, pick_device, resolve_dtype

logger = logging.getLogger(__name__)

FINGERPRINT_FILE = "relearn_fingerprint.json"
# ModelBundle.metadata key whose value (a dict with a "fingerprint" entry) goes to FINGERPRINT_FILE
FINGERPRINT_KEY = "relearn_fingerprint"
_WEIGHT_FILES = ("model.safetensors", "model.safetensors.index.json")
_DEFAULT_LOAD_ARGS = {"dtype": "float32", "device": "auto"}


def is_complete_model_dir(directory: Path) -> bool:
    """True when ``directory`` holds a config, safetensors weights, a tokenizer and a fingerprint."""
    return (
        (directory / "config.json").is_file()
        and any((directory / name).is_file() for name in _WEIGHT_FILES)
        and (directory / "tokenizer_config.json").is_file()
        and (directory / FINGERPRINT_FILE).is_file()
    )


def read_fingerprint_record(directory: Path) -> dict[str, Any] | None:
    """The fingerprint record of a complete model directory, or None if absent, incomplete or unreadable."""
    if not is_complete_model_dir(directory):
        return None
    try:
        record = json.loads((directory / FINGERPRINT_FILE).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        logger.warning("Ignoring unreadable %s: %s", directory / FINGERPRINT_FILE, exc)
        return None
    return record if isinstance(record, dict) else None


class _ModelDirectory:
    """The model directory and load arguments shared by the two datasets on it.

    A mixin, not an ``AbstractDataset`` subclass: Kedro wraps each dataset class's ``__init__`` to
    record its arguments, and a wrapper around an inherited wrapper would record ``*args`` only.
    """

    def __init__(
        self,
        filepath: str,
        load_args: dict[str, Any] | None = None,
        metadata: dict[str, Any] | None = None,
    ):
        self._filepath = Path(filepath)
        self._load_args = {**_DEFAULT_LOAD_ARGS, **(load_args or {})}
        unknown = set(self._load_args) - set(_DEFAULT_LOAD_ARGS)
        if unknown:
            raise DatasetError(
                f"{type(self).__name__}({filepath}): unknown load_args {sorted(unknown)}; "
                f"use only {sorted(_DEFAULT_LOAD_ARGS)}"
            )
        self.metadata = metadata

    def _describe(self) -> dict[str, Any]:
        return {"filepath": PurePosixPath(self._filepath).as_posix(), "load_args": self._load_args}


class HFModelDataset(_ModelDirectory, AbstractDataset[ModelBundle, ModelBundle]):
    """A transformers causal-LM directory, saved atomically with a fingerprint, loaded as a ModelBundle.

    ``load_args``: ``dtype`` (float32 | bfloat16 | float16 | auto) and ``device`` (auto | cpu | cuda | mps).
    A save is skipped when the directory already holds a complete model with the same fingerprint.
    """

    def load(self) -> ModelBundle:
        """Load the model directory onto the configured device and dtype."""
        if not is_complete_model_dir(self._filepath):
            raise DatasetError(
                f"{self._filepath} is not a complete model directory (needs config.json, safetensors "
                f"weights, a tokenizer and {FINGERPRINT_FILE}); run the pipeline that produces it first"
            )
        device = pick_device(self._load_args["device"])
        dtype = resolve_dtype(self._load_args["dtype"], device)
        bundle = load_model_dir(self._filepath, spec=str(self._filepath), dtype=dtype, device=device)
        record = read_fingerprint_record(self._filepath)
        if record is not None:
            bundle.metadata[FINGERPRINT_KEY] = record
        return bundle

    def save(self, data: ModelBundle) -> None:
        """Write weights, tokenizer and fingerprint to a staging directory, then rename it into place."""
        if not isinstance(data, ModelBundle):
            raise DatasetError(
                f"HFModelDataset({self._filepath}) saves a models.ModelBundle, got {type(data).__name__}"
            )
        record = dict(data.metadata.get(FINGERPRINT_KEY) or {})
        fingerprint = record.get("fingerprint")
        stored = read_fingerprint_record(self._filepath)
        if fingerprint and stored is not None and stored.get("fingerprint") == fingerprint:
            logger.info("%s already holds fingerprint %s; not rewriting", self._filepath, fingerprint[:12])
            return
        record.setdefault("fingerprint", None)
        record["spec"] = data.spec
        with atomic_dir(self._filepath) as staging:
            data.model.save_pretrained(staging, safe_serialization=True)
            data.tokenizer.save_pretrained(staging)
            # Written last: a directory only counts as complete once its fingerprint is there.
            text = json.dumps(record, indent=2, sort_keys=True)
            (staging / FINGERPRINT_FILE).write_text(text, encoding="utf-8")
        logger.info("Saved %s to %s", data.spec, self._filepath)

    def _exists(self) -> bool:
        return is_complete_model_dir(self._filepath)


@dataclass
class CachedModel:
    """A complete model directory already on disk: its fingerprint record, loaded lazily on demand."""

    path: Path
    record: dict[str, Any]
    load_args: dict[str, Any]

    @property
    def fingerprint(self) -> str | None:
        """The fingerprint the directory was saved with."""
        return self.record.get("fingerprint")

    def load(self) -> ModelBundle:
        """Load the cached model directory as a ModelBundle."""
        return HFModelDataset(str(self.path), load_args=self.load_args).load()


class ModelFingerprintDataset(_ModelDirectory, AbstractDataset[None, "CachedModel | None"]):
    """Read-only view of a model directory's fingerprint: a ``CachedModel``, or None when absent/incomplete.

    ``load_args`` are those of the ``HFModelDataset`` entry on the same directory (used by
    ``CachedModel.load``)."""

    def load(self) -> CachedModel | None:
        """The cached model's record (without loading weights), or None if there is no complete model."""
        record = read_fingerprint_record(self._filepath)
        if record is None:
            return None
        return CachedModel(path=self._filepath, record=record, load_args=dict(self._load_args))

    def save(self, data: Any) -> None:
        """Refuse: the directory is written by its HFModelDataset entry."""
        raise DatasetError(
            f"ModelFingerprintDataset({self._filepath}) is read-only; save the model through the "
            "HFModelDataset entry on the same directory"
        )

    def _exists(self) -> bool:
        return read_fingerprint_record(self._filepath) is not None
