"""Method comparison across MLflow runs."""

from relearn_pipeline.pipelines.compare.pipeline import create_pipeline

__all__ = ["create_pipeline"]
