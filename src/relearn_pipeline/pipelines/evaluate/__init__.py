"""`evaluate`: target (before) vs unlearned (after) — KFR, KRR, LS, ROUGE, probes, report, plots."""

from relearn_pipeline.pipelines.evaluate.pipeline import create_pipeline

__all__ = ["create_pipeline"]
