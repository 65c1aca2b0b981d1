"""`target` pipeline: the model to unlearn from (base model as is, or memorized on `full`), cached."""

from relearn_pipeline.pipelines.target.pipeline import create_pipeline

__all__ = ["create_pipeline"]
