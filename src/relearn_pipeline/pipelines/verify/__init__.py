"""`verify`: check every augmented variant, regenerate failures, assemble the training set, report."""

from relearn_pipeline.pipelines.verify.pipeline import create_pipeline

__all__ = ["create_pipeline"]
