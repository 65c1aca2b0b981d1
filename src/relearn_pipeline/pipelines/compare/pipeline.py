"""`compare`: read the experiment's runs from MLflow and compare methods side by side."""

from kedro.pipeline import Node, Pipeline

from relearn_pipeline.pipelines.compare.nodes import (
    build_comparison_table,
    comparison_markdown,
    plot_comparison,
    select_method_runs,
)


def create_pipeline(**kwargs) -> Pipeline:
    """Runs → newest run per method → table (CSV + Markdown) and KFR-vs-KRR plot."""
    return Pipeline(
        [
            Node(select_method_runs, ["mlflow_runs", "params:compare", "params:dataset_name"], "method_runs", name="select_method_runs"),
            Node(
                build_comparison_table, ["method_runs", "params:compare"], "comparison_table",
                name="build_comparison_table",
            ),
            Node(comparison_markdown, "comparison_table", "comparison_table_md", name="comparison_markdown"),
            Node(plot_comparison, ["comparison_table", "params:compare"], "comparison_plot", name="plot_comparison"),
        ]
    )
