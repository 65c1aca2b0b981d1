"""A trained LoRA adapter as a Kedro dataset (a PEFT directory), and how to apply it to a target.

Directory layout (written whole or not at all):

    adapter_config.json, adapter_model.safetensors   PEFT's own files
    tokenizer files                                   the tokenizer the adapter was trained with
    merged/                                           optional: target + adapter merged, a plain model dir
    relearn_adapter.json                              written last: method, base model, training summary
"""

from __future__ import annotations

import copy
import json
import logging
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from kedro.io import AbstractDataset, DatasetError

from relearn_pipeline.atomic import atomic_dir
from relearn_pipeline.models.loading import ModelBundle

logger = logging.getLogger(__name__)

ADAPTER_RECORD = "relearn_adapter.json"
MERGED_DIR = "merged"
# Shape fields an adapter must agree on with the model it is applied to.
_SHAPE_FIELDS = ("model_type", "hidden_size", "num_hidden_layers", "intermediate_size", "vocab_size")


@dataclass
class UnlearnedAdapter:
    """What the finetune node hands to ``PeftAdapterDataset.save``."""

    model: Any  # peft.PeftModel: the target with the trained adapter
    tokenizer: Any
    metadata: dict[str, Any] = field(default_factory=dict)
    save_merged: bool = False


@dataclass
class AdapterArtifact:
    """A saved adapter: where it is, its PEFT config, its record, and the merged model if written."""

    path: Path
    config: dict[str, Any]
    metadata: dict[str, Any]
    merged_path: Path | None = None


def base_shape(model: Any) -> dict[str, Any]:
    """The config fields that decide whether an adapter fits a model."""
    config = model.config
    return {name: getattr(config, name, None) for name in _SHAPE_FIELDS}


class PeftAdapterDataset(AbstractDataset[UnlearnedAdapter, AdapterArtifact]):
    """Saves an ``UnlearnedAdapter`` as a PEFT directory; loads an ``AdapterArtifact`` describing it.

    ``mlflow_artifact_path``: when set and an MLflow run is active, the whole directory is logged
    to that run under this artifact path after it is written.
    """

    def __init__(self, path: str, mlflow_artifact_path: str | None = None, metadata: dict[str, Any] | None = None):
        self._path = Path(path)
        self._mlflow_artifact_path = mlflow_artifact_path
        self.metadata = metadata

    def load(self) -> AdapterArtifact:
        """Describe the saved adapter (nothing heavy is loaded; see ``apply_adapter``)."""
        record_file = self._path / ADAPTER_RECORD
        config_file = self._path / "adapter_config.json"
        if not record_file.is_file() or not config_file.is_file():
            raise DatasetError(
                f"{self._path} is not a complete adapter directory (needs adapter_config.json and "
                f"{ADAPTER_RECORD}); run `kedro run --pipeline finetune` first"
            )
        merged = self._path / MERGED_DIR
        return AdapterArtifact(
            path=self._path,
            config=json.loads(config_file.read_text(encoding="utf-8")),
            metadata=json.loads(record_file.read_text(encoding="utf-8")),
            merged_path=merged if (merged / "config.json").is_file() else None,
        )

    def save(self, data: UnlearnedAdapter) -> None:
        """Write adapter, tokenizer, optional merged model and record to staging, then rename into place."""
        if not isinstance(data, UnlearnedAdapter):
            raise DatasetError(
                f"PeftAdapterDataset({self._path}) saves a datasets.peft_adapter.UnlearnedAdapter, "
                f"got {type(data).__name__}"
            )
        record = {**data.metadata, "base_shape": base_shape(data.model.get_base_model())}
        with atomic_dir(self._path) as staging:
            data.model.save_pretrained(staging, safe_serialization=True)
            data.tokenizer.save_pretrained(staging)
            if data.save_merged:
                # Merge a copy, so the model handed in keeps its adapter (and the target its weights).
                merged = copy.deepcopy(data.model).merge_and_unload()
                merged.save_pretrained(staging / MERGED_DIR, safe_serialization=True)
                data.tokenizer.save_pretrained(staging / MERGED_DIR)
                del merged
            (staging / ADAPTER_RECORD).write_text(
                json.dumps(record, indent=2, sort_keys=True, default=str), encoding="utf-8"
            )
        logger.info("Saved adapter (%s) to %s", record.get("method", "?"), self._path)
        self._log_to_mlflow()

    def _log_to_mlflow(self) -> None:
        if not self._mlflow_artifact_path:
            return
        import mlflow

        if mlflow.active_run() is None:
            logger.info("No active MLflow run; %s not logged as an artifact", self._path)
            return
        mlflow.log_artifacts(str(self._path), artifact_path=self._mlflow_artifact_path)

    def _exists(self) -> bool:
        return (self._path / ADAPTER_RECORD).is_file()

    def _describe(self) -> dict[str, Any]:
        return {"path": PurePosixPath(self._path).as_posix(), "mlflow_artifact_path": self._mlflow_artifact_path}


def apply_adapter(bundle: ModelBundle, adapter: AdapterArtifact | str | Path, merge: bool = True) -> ModelBundle:
    """The unlearned model: ``bundle``'s target with the adapter applied.

    ``bundle.model`` is changed in place (PEFT injects the adapter into its layers; ``merge`` folds
    it into the weights), so load the target again if you also need it unchanged. ``merge=False``
    returns the ``PeftModel``: ``with model.disable_adapter():`` then gives the target's outputs.
    """
    from peft import PeftModel

    if not isinstance(adapter, AdapterArtifact):
        adapter = PeftAdapterDataset(str(adapter)).load()
    expected = adapter.metadata.get("base_shape") or {}
    actual = base_shape(bundle.model)
    mismatched = {k: (v, actual.get(k)) for k, v in expected.items() if v is not None and actual.get(k) != v}
    if mismatched:
        details = ", ".join(f"{k}: adapter {a!r} vs model {b!r}" for k, (a, b) in mismatched.items())
        raise ValueError(
            f"adapter {adapter.path} was trained on {adapter.metadata.get('base_model', 'another model')!r}, "
            f"which does not fit {bundle.spec!r} ({details}); apply it to the target it was trained on"
        )
    model = PeftModel.from_pretrained(bundle.model, str(adapter.path), is_trainable=False)
    if merge:
        model = model.merge_and_unload()
    model.eval()
    return ModelBundle(
        model=model,
        tokenizer=bundle.tokenizer,
        spec=f"{bundle.spec}+{adapter.path}",
        metadata={**bundle.metadata, "adapter": {"path": str(adapter.path), **adapter.metadata}},
    )
