"""Render the evaluation: a before/after table (Markdown, HTML, console) and the bar figure."""

from __future__ import annotations

import html
import io
import math

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402

# (label, metric key without the before./after. prefix, higher is better after unlearning?)
HEADLINE = [
    ("KFR (forget-eval)", "kfr"),
    ("KRR (retain-eval)", "krr"),
    ("LS forget", "ls.forget"),
    ("LS retain", "ls.retain"),
    ("ROUGE-L recall forget", "rougeL_recall.forget"),
    ("ROUGE-L recall retain", "rougeL_recall.retain"),
    ("MIA AUC loss (forget vs retain-eval)", "mia.loss.auc"),
    ("MIA AUC zlib", "mia.zlib.auc"),
    ("MIA AUC min-k", "mia.min_k.auc"),
    ("MIA AUC min-k++", "mia.min_k_plus_plus.auc"),
]
DETAIL = [
    ("KFR on forget-set questions", "robustness.kfr.forget_original"),
    ("KFR on unused augmenter variants", "robustness.kfr.forget_unused_variant"),
    ("ROUGE-1 recall forget", "rouge1_recall.forget"),
    ("ROUGE-1 recall retain", "rouge1_recall.retain"),
    ("LS forget (arithmetic mean)", "ls_arithmetic.forget"),
    ("LS retain (arithmetic mean)", "ls_arithmetic.retain"),
    ("Perplexity forget", "perplexity.forget"),
    ("Perplexity retain", "perplexity.retain"),
    ("Exact memorization forget set", "exact_memorization.forget"),
    ("Exact memorization retain-eval", "exact_memorization.retain_eval"),
    ("Extraction strength forget set", "extraction_strength.forget"),
    ("Extraction strength retain-eval", "extraction_strength.retain_eval"),
]
BARS = [("KFR", "kfr"), ("KRR", "krr"), ("LS forget", "ls.forget"), ("LS retain", "ls.retain")]


def _fmt(value: float) -> str:
    return "n/a" if value is None or math.isnan(value) else f"{value:.4f}"


def rows(metrics: dict[str, float], spec: list[tuple[str, str]]) -> list[tuple[str, str, str, str]]:
    """(label, before, after, after − before) as text, for the metrics present."""
    out = []
    for label, key in spec:
        before, after = metrics.get(f"before.{key}", math.nan), metrics.get(f"after.{key}", math.nan)
        delta = after - before
        out.append((label, _fmt(before), _fmt(after), "n/a" if math.isnan(delta) else f"{delta:+.4f}"))
    return out


def _markdown_table(table: list[tuple[str, ...]], header: tuple[str, ...]) -> str:
    def cell(text: str) -> str:
        return str(text).replace("|", "\\|").replace("\n", " ")

    lines = ["| " + " | ".join(header) + " |", "| " + " | ".join("---" for _ in header) + " |"]
    lines += ["| " + " | ".join(cell(c) for c in row) + " |" for row in table]
    return "\n".join(lines)


def _html_table(table: list[tuple[str, ...]], header: tuple[str, ...]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in row) + "</tr>" for row in table)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def examples(generations: pd.DataFrame, per_split: int) -> list[tuple[str, ...]]:
    """A few records per split: question, gold, both answers and both verdicts."""
    table = []
    for _, part in generations.groupby("split", sort=True):
        for record in part.head(per_split).itertuples(index=False):
            table.append(
                (
                    record.split,
                    record.question,
                    record.gold,
                    record.answer_before,
                    f"{record.judge_label_before}, sim {record.entity_similarity_before:.2f}, "
                    f"{'yes' if record.decision_before else 'no'}",
                    record.answer_after,
                    f"{record.judge_label_after}, sim {record.entity_similarity_after:.2f}, "
                    f"{'yes' if record.decision_after else 'no'}",
                )
            )
    return table


HEADER = ("metric", "target (before)", "unlearned (after)", "Δ")
EXAMPLE_HEADER = ("split", "question", "gold", "answer before", "verdict before", "answer after", "verdict after")
LEGEND = (
    "Verdicts read `judge label, entity similarity, decision`; the decision is *forgotten* for forget "
    "splits and *retained* for the retain split. KFR counts a forget answer as forgotten when the judge "
    "finds a contradiction or its entity similarity is ≤ θ1 (0.5 for ≤3 gold entities, else 0.3); KRR "
    "counts a retain answer as retained when there is no contradiction and entity similarity ≥ θ2. "
    "MIA AUC: forget set (members) against retain-eval records (same kind, trained, not unlearned); "
    "0.5 = indistinguishable."
)


def render(
    metrics: dict[str, float], generations: pd.DataFrame, judges: list[str], per_split: int
) -> tuple[str, str]:
    """(Markdown, HTML) of the same report."""
    judge_line = "; ".join(judges)
    sample = examples(generations, per_split)
    counts = generations["split"].value_counts().sort_index().to_dict() if len(generations) else {}
    md = "\n\n".join(
        [
            "# Evaluation: target (before) vs unlearned (after)",
            f"**Judge:** {judge_line}",
            f"Records per split: {', '.join(f'{k} {v}' for k, v in counts.items())}",
            _markdown_table(rows(metrics, HEADLINE), HEADER),
            "## More figures",
            _markdown_table(rows(metrics, DETAIL), HEADER),
            "## Examples",
            LEGEND,
            _markdown_table(sample, EXAMPLE_HEADER),
            "![before/after](evaluation_plot.png)",
        ]
    ) + "\n"
    page = "\n".join(
        [
            "<!doctype html><html><head><meta charset='utf-8'><title>ReLearn evaluation</title>",
            "<style>body{font-family:sans-serif;max-width:1200px;margin:2em auto}table{border-collapse:collapse;"
            "margin:1em 0}td,th{border:1px solid #ccc;padding:4px 8px;vertical-align:top;text-align:left}</style>",
            "</head><body>",
            "<h1>Evaluation: target (before) vs unlearned (after)</h1>",
            f"<p><b>Judge:</b> {html.escape(judge_line)}</p>",
            f"<p>Records per split: {html.escape(', '.join(f'{k} {v}' for k, v in counts.items()))}</p>",
            _html_table(rows(metrics, HEADLINE), HEADER),
            "<h2>More figures</h2>",
            _html_table(rows(metrics, DETAIL), HEADER),
            "<h2>Examples</h2>",
            f"<p>{html.escape(LEGEND.replace('`', '').replace('*', ''))}</p>",
            _html_table(sample, EXAMPLE_HEADER),
            "<img src='evaluation_plot.png' alt='before/after bars'>",
            "</body></html>",
        ]
    )
    return md, page


def bar_figure(metrics: dict[str, float]):
    """Grouped bars: KFR, KRR, LS forget, LS retain for target vs unlearned."""
    labels = [label for label, _ in BARS]
    before = [metrics.get(f"before.{key}", math.nan) for _, key in BARS]
    after = [metrics.get(f"after.{key}", math.nan) for _, key in BARS]
    figure, axis = plt.subplots(figsize=(7, 4))
    positions = range(len(labels))
    width = 0.38
    for offset, values, name in ((-width / 2, before, "target (before)"), (width / 2, after, "unlearned (after)")):
        bars = axis.bar([p + offset for p in positions], [0 if math.isnan(v) else v for v in values], width, label=name)
        for bar, value in zip(bars, values):
            axis.annotate(_fmt(value), (bar.get_x() + bar.get_width() / 2, bar.get_height()),
                          ha="center", va="bottom", fontsize=8)
    axis.set_xticks(list(positions), labels)
    axis.set_ylim(0, 1.1)
    axis.set_ylabel("score")
    axis.set_title("ReLearn: target vs unlearned")
    axis.legend(loc="upper right")
    figure.tight_layout()
    return figure


def console_table(metrics: dict[str, float], judges: list[str]) -> str:
    """The headline table as fixed-width text (rich), naming the judge."""
    from rich.console import Console
    from rich.table import Table

    table = Table(title="ReLearn evaluation: target vs unlearned", caption=f"judge: {'; '.join(judges)}")
    for column in HEADER:
        table.add_column(column, justify="left" if column == "metric" else "right")
    for row in rows(metrics, HEADLINE) + rows(metrics, DETAIL[:2]):
        table.add_row(*row)
    buffer = io.StringIO()
    Console(file=buffer, width=110, force_terminal=False, color_system=None).print(table)
    return buffer.getvalue()
