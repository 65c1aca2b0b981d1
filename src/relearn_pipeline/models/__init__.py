"""Model loading: spec resolution, the embedded SmolLM2, local dirs, Hub ids, tiny test models."""

from relearn_pipeline.models.loading import (
    ModelBundle,
    ModelSpecError,
    load_model,
    pick_device,
    resolve_dtype,
)
from relearn_pipeline.models.tiny import build_tiny_model

__all__ = [
    "ModelBundle",
    "ModelSpecError",
    "build_tiny_model",
    "load_model",
    "pick_device",
    "resolve_dtype",
]
