"""benchmarks/augment_bench.py and benchmarks/evaluate_bench.py still run against the project's code,
on the tiny model with a few prompts, and their --json headlines hold every comparison they print.

Only that they run and what they report are checked; timings are never asserted (they are the
benchmarks', on the real model).
"""

from __future__ import annotations


def test_augment_bench_compares_one_at_a_time_continuous_and_fixed_batches(run_benchmark, tmp_path):
    headline = run_benchmark("augment_bench.py", "--model", "tiny:0", "--batch-size", "2", "3", "--prompts", "6",
                             "--max-new-tokens", "4", "--report", str(tmp_path / "none.json"))
    assert headline["benchmark"] == "augment" and "6 demo augment prompts, sampled, 3 candidates" in headline["settings"]
    pairs = [(r["left"]["label"], r["right"]["label"]) for r in headline["rows"]]
    assert pairs == [
        ("batched (2)", "one at a time"), ("batched (2)", "one at a time"), ("batched (2)", "fixed batches (2)"),
        ("batched (3)", "one at a time"), ("batched (3)", "one at a time"), ("batched (3)", "fixed batches (3)"),
    ]
    assert all(r["left"]["value"] > 0 and r["right"]["value"] > 0 for r in headline["rows"])


def test_evaluate_bench_compares_the_three_ways_and_counts_identical_answers(run_benchmark):
    headline = run_benchmark("evaluate_bench.py", "--model", "tiny:0", "--questions", "4", "--max-new-tokens", "4",
                             "--batch-size", "2")
    assert headline["benchmark"] == "evaluate"
    # Greedy: every way gives the one-at-a-time answers.
    assert "batched 4/4, fixed batches 4/4" in headline["settings"]
    assert [r["right"]["label"] for r in headline["rows"]] == ["one at a time", "one at a time", "fixed batches (2)"]
