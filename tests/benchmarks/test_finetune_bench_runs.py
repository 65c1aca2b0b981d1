"""benchmarks/finetune_bench.py still runs against the project's code (it imports training internals,
which refactors move): both sides on the tiny model, one step, and its --json headline is complete.

Only that it runs and what it reports are checked; its timings are never asserted (they are the
benchmark's, on the real model).
"""

from __future__ import annotations


def test_both_implementations_run_one_step_and_report_every_headline_figure(run_benchmark):
    headline = run_benchmark("finetune_bench.py", "--model", "tiny:0", "--steps", "1", "--batch-size", "1",
                             "--device", "cpu")
    assert headline["benchmark"] == "finetune"
    rows = headline["rows"]
    assert len(rows) == 3
    for row in rows:  # tokens/s, peak memory, share of the matmul peak: this project vs official-style
        assert (row["left"]["label"], row["right"]["label"]) == ("relearn-pipeline", "official-style"), row
        assert row["left"]["value"] > 0 and row["right"]["value"] > 0, row
