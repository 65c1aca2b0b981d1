"""Wire the target nodes: fingerprint -> reuse or build (and evaluate) -> report -> MLflow metrics."""

from kedro.pipeline import Node, Pipeline

from relearn_pipeline.pipelines.target.nodes import (
    fingerprint_target,
    make_target_model,
    report_target,
    target_mlflow_metrics,
)


def create_pipeline(**kwargs) -> Pipeline:
    """The `target` pipeline: full_set + base model -> target_model, target_report, MLflow metrics."""
    return Pipeline(
        [
            Node(
                fingerprint_target,
                inputs=["full_set", "params:base_model", "params:model_loading", "params:target"],
                outputs="target_fingerprint",
                name="fingerprint_target",
            ),
            Node(
                make_target_model,
                inputs=[
                    "full_set",
                    "params:base_model",
                    "params:model_loading",
                    "params:target",
                    "target_fingerprint",
                    "target_model_cache",
                ],
                outputs=["target_model", "target_outcome"],
                name="make_target_model",
            ),
            Node(
                report_target,
                inputs=["target_outcome", "params:target.warn_below_rougeL_recall"],
                outputs="target_report",
                name="report_target",
            ),
            Node(
                target_mlflow_metrics,
                inputs="target_report",
                outputs=["target_metrics", "base_metrics", "target_training_history"],
                name="log_target_metrics",
            ),
        ]
    )
