"""`ingest` pipeline: load, validate and normalise the QA splits; find sensitive spans in forget answers."""

from relearn_pipeline.pipelines.ingest.pipeline import create_pipeline

__all__ = ["create_pipeline"]
