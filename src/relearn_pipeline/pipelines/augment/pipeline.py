"""Wire the augment nodes: forget_set -> question_variants -> augmented_raw (+ LLM usage)."""

from kedro.pipeline import Node, Pipeline

from relearn_pipeline.pipelines.augment.nodes import (
    generate_answer_candidates,
    generate_question_variants,
    summarize_augment_usage,
)


def create_pipeline(**kwargs) -> Pipeline:
    """The `augment` pipeline: question variants and vague answer candidates by an LLM."""
    return Pipeline(
        [
            Node(
                generate_question_variants,
                inputs=["forget_set", "augment_prompts", "params:augment", "llm_credentials"],
                outputs=["question_variants", "augment_question_usage"],
                name="generate_question_variants",
            ),
            Node(
                generate_answer_candidates,
                inputs=[
                    "question_variants", "forget_set", "sensitive_spans",
                    "augment_prompts", "params:augment", "llm_credentials",
                ],
                outputs=["augmented_raw", "augment_answer_usage"],
                name="generate_answer_candidates",
            ),
            Node(
                summarize_augment_usage,
                inputs=["augment_question_usage", "augment_answer_usage"],
                outputs="augment_llm_usage",
                name="summarize_augment_usage",
            ),
        ]
    )
