"""benchmarks/finetune_bench.py still runs against the project's code (it imports training internals,
which refactors move): both sides on the tiny model, one step, and its --json headline is complete.

Only that it runs and what it reports are checked; its timings are never asserted (they are the
benchmark's, on the real model).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

BENCHMARKS_DIR = Path(__file__).resolve().parents[2] / "benchmarks"


def test_both_implementations_run_one_step_and_report_every_headline_figure(tmp_path):
    out = tmp_path / "finetune.json"
    command = [sys.executable, str(BENCHMARKS_DIR / "finetune_bench.py"), "--model", "tiny:0", "--steps", "1",
               "--batch-size", "1", "--device", "cpu", "--json", str(out)]
    done = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    headline = json.loads(out.read_text())
    assert headline["benchmark"] == "finetune"
    rows = headline["rows"]
    assert len(rows) == 3
    for row in rows:  # tokens/s, peak memory, share of the matmul peak: this project vs official-style
        assert (row["left"]["label"], row["right"]["label"]) == ("relearn-pipeline", "official-style"), row
        assert row["left"]["value"] > 0 and row["right"]["value"] > 0, row
