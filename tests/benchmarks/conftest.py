"""Run a script of benchmarks/ in a subprocess and read the headline it writes with --json."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

BENCHMARKS_DIR = Path(__file__).resolve().parents[2] / "benchmarks"


@pytest.fixture
def run_benchmark(tmp_path):
    def run(script: str, *args: str) -> dict:
        out = tmp_path / f"{Path(script).stem}.json"
        command = [sys.executable, str(BENCHMARKS_DIR / script), *args, "--json", str(out)]
        done = subprocess.run(command, capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, done.stderr[-3000:]
        return json.loads(out.read_text())

    return run
