"""Wire the ingest nodes: prepare each split -> check splits together -> spans -> report."""

from typing import Any

import pandas as pd
from kedro.pipeline import Node, Pipeline

from relearn_pipeline.pipelines.ingest.nodes import (
    SPLITS,
    build_ingest_report,
    check_splits,
    find_forget_spans,
    prepare_split,
)


def _preparer(split: str):
    """`prepare_split` for one split, as a plain typed function (Kedro inspects its hints)."""

    def prepare(raw: pd.DataFrame, params: dict[str, Any]) -> tuple[pd.DataFrame, dict[str, Any]]:
        return prepare_split(raw, params, split)

    prepare.__name__ = prepare.__qualname__ = f"prepare_{split}"
    prepare.__doc__ = f"The {split} split normalised and checked, with its ingest log."
    return prepare


def _prepare_node(split: str) -> Node:
    """Normalise and check one raw split."""
    return Node(
        _preparer(split),
        inputs=[f"raw_{split}", "params:ingest"],
        outputs=[f"{split}_prepared", f"{split}_ingest_log"],
        name=f"prepare_{split}",
    )


def create_pipeline(**kwargs) -> Pipeline:
    """The `ingest` pipeline: raw_* files -> the five QA splits, sensitive_spans, ingest_report."""
    return Pipeline(
        [
            *(_prepare_node(split) for split in SPLITS),
            Node(
                check_splits,
                inputs=[f"{split}_prepared" for split in SPLITS],
                outputs=[
                    "forget_set",
                    "retain_set",
                    "forget_eval_set",
                    "retain_eval_set",
                    "full_set",
                    "ingest_cross_checks",
                ],
                name="check_splits",
            ),
            Node(
                find_forget_spans,
                inputs=["forget_set", "params:ingest"],
                outputs="sensitive_spans",
                name="find_forget_spans",
            ),
            Node(
                build_ingest_report,
                inputs=[
                    *(f"{split}_ingest_log" for split in SPLITS),
                    "ingest_cross_checks",
                    "full_set",
                    "sensitive_spans",
                ],
                outputs="ingest_report",
                name="build_ingest_report",
            ),
        ]
    )
