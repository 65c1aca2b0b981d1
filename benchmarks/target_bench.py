"""Benchmark the `target` stage on this machine and print a table.

  * the embedded SmolLM2 load: cold (GGUF conversion into a fresh temporary cache) and cached;
  * `kedro run --pipeline ingest` then `kedro run --pipeline target` on the demo data (wall time and
    peak RSS of the target run, ROUGE-L recall before/after), then the same target run again (reuse).

Everything runs in a temporary copy of the project (conf/, pyproject.toml, the demo data), so the
project's own data/06_models and mlflow.db are left alone. Usage:

    python benchmarks/target_bench.py [--skip-cold] [--keep DIR] [--json PATH]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench_common import ENV, ROOT, project_copy, row, write_headline

KEDRO = Path(sys.executable).with_name("kedro")
LOAD_SNIPPET = (
    "import time; from relearn_pipeline.models import load_model; t = time.perf_counter(); "
    "load_model('embedded:smollm2-135m-instruct', device='cpu', cache_dir={cache!r}); "
    "print('LOAD_SECONDS', time.perf_counter() - t)"
)


def timed_child(command: list[str], cwd: Path, env: dict[str, str]) -> tuple[float, float, str]:
    """Run a command; return wall seconds, its own peak RSS in MiB, and its output (raises on failure).

    The peak comes from wait4 on this child alone: RUSAGE_CHILDREN would report the largest of all
    children so far (the cold GGUF conversion, say) instead of this one.
    """
    with tempfile.TemporaryFile("w+") as output:
        started = time.perf_counter()
        child = subprocess.Popen(command, cwd=cwd, env=env, stdout=output, stderr=subprocess.STDOUT, text=True)
        _, status, usage = os.wait4(child.pid, 0)
        wall = time.perf_counter() - started
        child.returncode = os.waitstatus_to_exitcode(status)
        output.seek(0)
        text = output.read()
    if child.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed in {cwd} (exit {child.returncode}):\n{text[-4000:]}")
    return wall, usage.ru_maxrss / 1024, text


def embedded_load_seconds(cache_dir: Path | None) -> float:
    """Seconds to load the embedded model from ``cache_dir`` (None: the user cache), in a fresh process."""
    cache = None if cache_dir is None else str(cache_dir)
    _, _, output = timed_child([sys.executable, "-c", LOAD_SNIPPET.format(cache=cache)], ROOT, ENV)
    return float(re.search(r"LOAD_SECONDS ([\d.]+)", output).group(1))


def main() -> None:
    """Measure and print the table."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--skip-cold", action="store_true", help="skip the cold GGUF conversion (about a minute)")
    parser.add_argument("--keep", type=Path, help="work in this directory and keep it, instead of a temporary one")
    parser.add_argument("--json", help="also write the headline figures here, for run_all.py")
    args = parser.parse_args()
    rows: list[tuple[str, str]] = []
    headline: list[dict] = []
    if args.keep:
        args.keep.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="target-bench-", dir=args.keep))
    try:
        if not args.skip_cold:
            cold = embedded_load_seconds(work / "cold-cache")
            rows.append(("embedded model load, cold (GGUF -> safetensors)", f"{cold:.1f} s"))
        cached = embedded_load_seconds(None if args.skip_cold else work / "cold-cache")
        rows.append(("embedded model load, cached", f"{cached:.2f} s"))
        if args.skip_cold:
            headline.append(row("embedded model load (fresh process), cached", ("cached", cached), None, "s"))
        else:
            headline.append(row("embedded model load (fresh process): cold (GGUF conversion) vs cached",
                                ("cold", cold), ("cached", cached), "s"))

        copy = project_copy(work)
        timed_child([str(KEDRO), "run", "--pipeline", "ingest"], copy, ENV)
        wall, peak, output = timed_child([str(KEDRO), "run", "--pipeline", "target"], copy, ENV)
        report = json.loads((copy / "data" / "08_reporting" / "target_report.json").read_text())
        rows += [
            ("demo target stage, wall (kedro run --pipeline target)", f"{wall / 60:.1f} min ({wall:.0f} s)"),
            ("demo target stage, peak RSS", f"{peak:.0f} MiB"),
            ("  of which training", f"{report['train_time_s']:.0f} s, {report['steps']} steps, final loss {report['final_loss']:.3f}"),
            ("  ROUGE-L recall, base before memorizing", f"{report['base_rougeL_recall_full']:.3f}"),
            ("  ROUGE-L recall, memorized target", f"{report['target_rougeL_recall_full']:.3f}"),
            ("  questions", str(report["questions"])),
        ]
        rerun, _, _ = timed_child([str(KEDRO), "run", "--pipeline", "target"], copy, ENV)
        reused = json.loads((copy / "data" / "08_reporting" / "target_report.json").read_text())["reused"]
        rows.append(("demo target stage rerun (reuses the cached target)", f"{rerun:.0f} s, reused={reused}"))
        headline += [
            row("demo target stage wall time: memorize (first run) vs rerun reusing the cached target",
                ("memorize", wall), ("rerun", rerun), "s"),
            row("demo target stage peak RSS (memorize)", ("memorize", peak), None, "MiB"),
        ]
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)

    print(f"\ntarget benchmark on {os.cpu_count()} CPU core(s), torch threads default, OMP_WAIT_POLICY={ENV['OMP_WAIT_POLICY']}")
    width = max(len(name) for name, _ in rows)
    print(f"{'measure'.ljust(width)} | value")
    print(f"{'-' * width}-|-{'-' * 30}")
    for name, value in rows:
        print(f"{name.ljust(width)} | {value}")
    settings = f"`kedro run --pipeline target` on the demo ({report['questions']} questions, {report['steps']} steps)"
    write_headline(args.json, "target", settings, headline)


if __name__ == "__main__":
    main()
