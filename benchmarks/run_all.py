"""`make bench`: run every speed/memory benchmark of the project, one after the other.

Each script prints its own comparison table (what it compares, both sides, the ratio, measured in
the same run); this runner runs them in order with the same environment and reports which
finished. Figures are never test assertions: they belong here.

    python benchmarks/run_all.py                 # all
    python benchmarks/run_all.py evaluate augment # a subset, by name
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
# name -> (script, extra arguments, what it compares)
BENCHMARKS = {
    "target": ("target_bench.py", [], "embedded model load cold vs cached; demo target wall time, peak RSS, reuse"),
    "augment": ("augment_bench.py", [], "augmentation batched vs one prompt at a time; verified yield per variant"),
    "finetune": ("finetune_bench.py", [], "fine-tune tokens/s and peak memory vs the official code's approach; share of matmul peak"),
    "evaluate": ("evaluate_bench.py", [], "evaluation generation batched vs one question at a time"),
}


def main(argv: list[str]) -> int:
    chosen = argv or list(BENCHMARKS)
    unknown = [name for name in chosen if name not in BENCHMARKS]
    if unknown:
        print(f"unknown benchmark(s) {unknown}; choose from {list(BENCHMARKS)}", file=sys.stderr)
        return 2
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "KEDRO_DISABLE_TELEMETRY": "1",
           "DO_NOT_TRACK": "1", "OMP_WAIT_POLICY": "PASSIVE"}
    outcomes = []
    for name in chosen:
        script, extra, compares = BENCHMARKS[name]
        print(f"\n### {name}: {compares}\n", flush=True)
        started = time.perf_counter()
        code = subprocess.run([sys.executable, str(HERE / script), *extra], env=env).returncode
        outcomes.append((name, code, time.perf_counter() - started))
    print("\n| benchmark | exit code | wall time (s) |\n| --- | --- | --- |")
    for name, code, seconds in outcomes:
        print(f"| {name} | {code} | {seconds:.0f} |")
    return max((code for _, code, _ in outcomes), default=0)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
