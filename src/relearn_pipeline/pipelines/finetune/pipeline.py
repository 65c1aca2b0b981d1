"""Wire the finetune nodes: check the settings first, then train, then shape the logs."""

from kedro.pipeline import Node, Pipeline

from relearn_pipeline.pipelines.finetune.nodes import check_finetune_params, finetune_adapter, finetune_metrics


def create_pipeline(**kwargs) -> Pipeline:
    """target_model + augmented_forget_set / forget_set + retain_set -> unlearned_adapter and its logs."""
    return Pipeline(
        [
            Node(
                check_finetune_params,
                inputs=["params:finetune", "params:seed"],
                outputs="finetune_config",
                name="check_finetune_params",
            ),
            Node(
                finetune_adapter,
                inputs=["target_model", "augmented_forget_set", "forget_set", "retain_set", "finetune_config"],
                outputs=["unlearned_adapter", "finetune_history", "finetune_summary"],
                name="finetune_adapter",
            ),
            Node(
                finetune_metrics,
                inputs=["finetune_history", "finetune_summary"],
                outputs="finetune_metrics",
                name="finetune_metrics",
            ),
        ]
    )
