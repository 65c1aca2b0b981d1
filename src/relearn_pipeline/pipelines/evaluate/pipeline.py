"""Wire `evaluate`: questions -> (before: target | after: target + adapter) x (answers, verdicts,
fluency, probes, summary) -> metrics, generations, report, plot, table.

The per-model nodes are one template instantiated twice under the namespaces `before` and
`after`, so lineage shows `before.generate_answers` next to `after.generate_answers`; their
outputs are named `<what>_before` / `<what>_after`.
"""

from kedro.pipeline import Node, Pipeline

from relearn_pipeline.pipelines.evaluate.nodes import (
    assemble_generations,
    build_evaluation_questions,
    build_unlearned_model,
    combine_metrics,
    generate_answers,
    judge_answers,
    load_reference_model,
    plot_before_after,
    probe_model,
    render_report,
    score_fluency,
    summarise_model,
    summary_table,
    to_mlflow_metrics,
)

PER_MODEL_OUTPUTS = ("answers", "verdicts", "fluency", "probes", "summary")
SHARED_INPUTS = {"evaluation_questions", "reference_model", "forget_set", "forget_eval_set", "retain_eval_set"}


def model_evaluation() -> Pipeline:
    """Everything measured on one model (input `model`), before namespacing."""
    return Pipeline(
        [
            Node(generate_answers, ["model", "evaluation_questions", "params:evaluate"], "answers",
                 name="generate_answers"),
            Node(judge_answers, ["evaluation_questions", "answers", "params:evaluate"], "verdicts",
                 name="judge_answers"),
            Node(score_fluency, ["reference_model", "evaluation_questions", "answers", "params:evaluate"], "fluency",
                 name="score_fluency"),
            Node(probe_model, ["model", "forget_set", "forget_eval_set", "retain_eval_set", "params:evaluate"],
                 "probes", name="probe_model"),
            Node(summarise_model, ["verdicts", "fluency", "probes"], "summary", name="summarise_model"),
        ]
    )


def create_pipeline(**kwargs) -> Pipeline:
    """The `evaluate` pipeline."""
    setup = Pipeline(
        [
            Node(
                build_evaluation_questions,
                ["forget_eval_set", "retain_eval_set", "forget_set", "augmented_raw", "augmented_forget_set",
                 "params:evaluate"],
                "evaluation_questions",
                name="build_evaluation_questions",
            ),
            Node(load_reference_model, ["params:base_model", "params:evaluate", "params:model_loading"],
                 "reference_model", name="load_reference_model"),
            Node(build_unlearned_model, ["target_model", "unlearned_adapter"], "unlearned_model",
                 name="build_unlearned_model"),
        ]
    )
    before = Pipeline(
        model_evaluation(),
        namespace="before",
        inputs={"model": "target_model", **{name: name for name in SHARED_INPUTS}},
        outputs={name: f"{name}_before" for name in PER_MODEL_OUTPUTS},
        parameters={"params:evaluate": "params:evaluate"},
    )
    after = Pipeline(
        model_evaluation(),
        namespace="after",
        inputs={"model": "unlearned_model", **{name: name for name in SHARED_INPUTS}},
        outputs={name: f"{name}_after" for name in PER_MODEL_OUTPUTS},
        parameters={"params:evaluate": "params:evaluate"},
    )
    outputs = Pipeline(
        [
            Node(combine_metrics, ["summary_before", "summary_after"], "evaluation_metrics", name="combine_metrics"),
            Node(to_mlflow_metrics, "evaluation_metrics", "metrics", name="log_metrics"),
            Node(
                assemble_generations,
                ["evaluation_questions", "answers_before", "answers_after", "verdicts_before", "verdicts_after",
                 "fluency_before", "fluency_after"],
                "generations",
                name="assemble_generations",
            ),
            Node(render_report, ["evaluation_metrics", "generations", "params:evaluate"],
                 ["evaluation_report", "evaluation_report_html"], name="render_report"),
            Node(plot_before_after, "evaluation_metrics", "evaluation_plot", name="plot_before_after"),
            Node(summary_table, ["evaluation_metrics", "generations"], "evaluation_table", name="print_summary_table"),
        ]
    )
    return setup + before + after + outputs
