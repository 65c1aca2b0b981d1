"""Compare unlearning methods across MLflow runs: one table row and one plot point per method."""

from __future__ import annotations

import logging

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402

logger = logging.getLogger(__name__)


def select_method_runs(runs: pd.DataFrame, params: dict, dataset: str) -> pd.DataFrame:
    """Keep the newest finished evaluated run of each method on the configured dataset."""
    marker = f"metrics.{params['columns'][params['require']]}"
    runs = runs.assign(method=run_methods(runs, params["method_param"]))
    if runs.empty or marker not in runs or runs["method"].isna().all():
        raise ValueError(
            f"no evaluated runs to compare: no run in the experiment has the metric {marker[8:]!r} "
            f"and the parameter or tag {params['method_param']!r}. Run `kedro run --pipeline unlearn` "
            "(or `make sweep`) first."
        )
    evaluated = runs[runs[marker].notna() & runs["method"].notna()]
    if dataset and "tags.dataset_name" in evaluated:
        evaluated = evaluated[evaluated["tags.dataset_name"] == dataset]
    if evaluated.empty:
        raise ValueError(f"no evaluated runs on dataset {dataset!r}; run the sweep for that dataset first")
    newest = evaluated.sort_values("start_time").groupby("method", sort=False).tail(1)
    return newest.reset_index(drop=True)


def run_methods(runs: pd.DataFrame, key: str) -> pd.Series:
    """Each run's method: its parameter ``key``, else its tag ``key`` (an `evaluate`-only run logs
    no fine-tune parameter; hooks.RunNamingHook tags it with the method of the adapter it measured)."""
    missing = pd.Series(None, index=runs.index, dtype=object)
    param = runs[f"params.{key}"] if f"params.{key}" in runs else missing
    tag = runs[f"tags.{key}"] if f"tags.{key}" in runs else missing
    return param.where(param.notna(), tag)


def build_comparison_table(runs: pd.DataFrame, params: dict) -> pd.DataFrame:
    """Method × metric table, with the target (before unlearning) as the first row."""
    rows = []
    newest = runs.sort_values("start_time").iloc[-1]
    target = {"method": "target (before)", "run_id": newest["run_id"]}
    for column, key in params["target_columns"].items():
        target[column] = newest.get(f"metrics.{key}")
    rows.append(target)
    for _, run in runs.iterrows():
        row = {"method": run["method"], "run_id": run["run_id"]}
        for column, key in params["columns"].items():
            row[column] = run.get(f"metrics.{key}")
        rows.append(row)
    table = pd.DataFrame(rows)
    summary = params.get("harmonic_mean")
    if summary:
        table[summary["name"]] = [harmonic_mean([row.get(c) for c in summary["of"]]) for row in rows]
    order = {name: i for i, name in enumerate(params.get("method_order", []))}
    table["_order"] = [-1 if i == 0 else order.get(m, len(order)) for i, m in enumerate(table["method"])]
    table = table.sort_values(["_order", "method"], kind="stable").drop(columns="_order")
    logger.info("Method comparison:\n%s", table.drop(columns="run_id").to_string(index=False))
    return table.reset_index(drop=True)


def harmonic_mean(values: list) -> float:
    """n / sum(1/v): 0 when any value is 0 (a method that forgets nothing or keeps nothing scores 0),
    NaN when any is missing or negative."""
    numbers = [float(v) for v in values if v is not None and not pd.isna(v)]
    if len(numbers) < len(values) or any(v < 0 for v in numbers):
        return float("nan")
    if any(v == 0 for v in numbers):
        return 0.0
    return len(numbers) / sum(1 / v for v in numbers)


def comparison_markdown(table: pd.DataFrame) -> str:
    """The comparison table as Markdown, figures to 3 decimals."""
    shown = table.drop(columns="run_id")
    header = "| " + " | ".join(shown.columns) + " |"
    rule = "| " + " | ".join("---" for _ in shown.columns) + " |"
    lines = [header, rule]
    for _, row in shown.iterrows():
        cells = [_cell(value) for value in row]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def plot_comparison(table: pd.DataFrame, params: dict) -> plt.Figure:
    """KFR (x) against KRR (y), marker size by retain LS: up and right is better."""
    x, y, size = params["plot"]["x"], params["plot"]["y"], params["plot"]["size"]
    figure, axes = plt.subplots(figsize=(6.4, 4.8))
    sizes = table[size].fillna(0).astype(float)
    scale = 1200 / max(sizes.max(), 1e-9)
    for _, row in table.iterrows():
        target = row["method"].startswith("target")
        axes.scatter(
            row[x], row[y], s=max(float(row[size] or 0) * scale, 20), alpha=0.6,
            marker="s" if target else "o", edgecolors="black",
        )
        axes.annotate(row["method"], (row[x], row[y]), textcoords="offset points", xytext=(6, 6), fontsize=9)
    axes.set_xlabel(f"{x} (knowledge forgetting rate, higher is better)")
    axes.set_ylabel(f"{y} (knowledge retention rate, higher is better)")
    axes.set_xlim(-0.05, 1.05)
    axes.set_ylim(-0.05, 1.05)
    axes.grid(alpha=0.3)
    axes.set_title(f"Unlearning methods: {x} vs {y} (marker size: {size})")
    figure.tight_layout()
    return figure


def _cell(value) -> str:
    if isinstance(value, float):
        return "" if pd.isna(value) else f"{value:.3f}"
    return "" if value is None else str(value)
