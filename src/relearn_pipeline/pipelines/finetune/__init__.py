"""`finetune`: LoRA unlearning of the target with one method from the loss registry (DESIGN.md section 6)."""

from relearn_pipeline.pipelines.finetune.pipeline import create_pipeline

__all__ = ["create_pipeline"]
