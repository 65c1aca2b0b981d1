"""`augment`: the paper's data synthesis (question variants, vague answers) by an LLM backend."""

from relearn_pipeline.pipelines.augment.pipeline import create_pipeline

__all__ = ["create_pipeline"]
