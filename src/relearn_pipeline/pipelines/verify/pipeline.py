"""Wire the verify nodes: augmented_raw -> verified QA -> training set -> report."""

from kedro.pipeline import Node, Pipeline

from relearn_pipeline.pipelines.verify.nodes import (
    assemble_training_set,
    build_verification_report,
    render_verification_report,
    verify_candidates,
)


def create_pipeline(**kwargs) -> Pipeline:
    """The `verify` pipeline: checks, regeneration, fallback, training-set assembly, report."""
    return Pipeline(
        [
            Node(
                verify_candidates,
                inputs=[
                    "augmented_raw", "forget_set", "sensitive_spans", "augment_prompts",
                    "params:augment", "params:verify", "llm_credentials",
                ],
                outputs=["verified_qa", "verification_log", "verify_llm_usage"],
                name="verify_candidates",
            ),
            Node(
                assemble_training_set,
                inputs=["verified_qa", "forget_set", "retain_set", "params:verify"],
                outputs="augmented_forget_set",
                name="assemble_training_set",
            ),
            Node(
                build_verification_report,
                inputs=["verification_log", "augmented_forget_set", "augment_llm_usage", "verify_llm_usage", "params:verify"],
                outputs="verification_report",
                name="build_verification_report",
            ),
            Node(
                render_verification_report,
                inputs="verification_report",
                outputs="verification_report_md",
                name="render_verification_report",
            ),
        ]
    )
