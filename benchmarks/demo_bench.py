"""End-to-end wall time of the demo: `kedro run --pipelines unlearn` on a fresh copy of the project.

The copy has its own data directory and MLflow store and starts from the raw demo data only, so
every stage runs (no cached target, no augmentation cache); only the embedded model's converted
weights in the user cache are reused, as on any machine after the first `make demo`. Kedro logs
each finished node with a timestamp into a file; each node's time (from the previous node's end)
is summed per stage of the paper. About an hour on a 2-core CPU.

    python benchmarks/demo_bench.py [--keep DIR] [--json PATH]
    python benchmarks/demo_bench.py --pipelines ingest,target   # only the first stages (a quick check)
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

from bench_common import ENV, project_copy, row, write_headline

KEDRO = Path(sys.executable).with_name("kedro")
# Kedro's logging, with the epoch time of each record, into a file the timings are read from.
LOGGING_YML = """\
version: 1
disable_existing_loggers: False
formatters:
  stamped: {{format: "%(created).3f %(name)s %(levelname)s %(message)s"}}
  simple: {{format: "%(asctime)s %(levelname)s %(name)s: %(message)s"}}
handlers:
  console: {{class: logging.StreamHandler, level: INFO, formatter: simple, stream: ext://sys.stdout}}
  timings: {{class: logging.FileHandler, level: INFO, formatter: stamped, filename: "{path}", encoding: utf8}}
loggers:
  kedro: {{level: INFO}}
root: {{level: INFO, handlers: [console, timings]}}
"""
# The runner logs its mode right before the first node, and each node when it is done.
RUNNER_START = re.compile(r"^(?P<t>\d+\.\d+) \S+ INFO (Using synchronous mode|Asynchronous mode is enabled)")
COMPLETED = re.compile(r"^(?P<t>\d+\.\d+) \S+ INFO Completed node: (?P<node>\S+)\s*$")


def stage_of_nodes() -> dict[str, str]:
    """Node name -> the stage (pipeline) of `unlearn` it belongs to."""
    from relearn_pipeline.pipeline_registry import STAGES, register_pipelines

    pipelines = register_pipelines()
    return {node.name: stage for stage in STAGES for node in pipelines[stage].nodes}


def stage_times(log_lines: list[str], started: float, ended: float, stages: dict[str, str]) -> dict[str, float]:
    """Seconds per stage from a timestamped Kedro log, plus `startup` (process start to the
    runner's start: Kedro, the parameter checks, the MLflow run) and `teardown` (last node to exit).

    A node's time runs from the end of the node before it (the sequential runner starts the next
    node right away), the first node's from the runner's start.
    """
    times: dict[str, float] = defaultdict(float)
    previous = None
    for line in log_lines:
        if previous is None and (start := RUNNER_START.match(line)):
            previous = float(start["t"])
            times["startup"] = previous - started
        elif done := COMPLETED.match(line):
            if previous is None:
                raise ValueError(f"'Completed node: {done['node']}' before the runner started")
            stage = stages.get(done["node"])
            if stage is None:
                raise ValueError(f"node {done['node']!r} of the log belongs to no stage of `unlearn`")
            times[stage] += float(done["t"]) - previous
            previous = float(done["t"])
    if previous is None:
        raise ValueError("the Kedro log names no finished node: was logging configured?")
    times["teardown"] = ended - previous
    return dict(times)


def run_demo(copy: Path, pipelines: str, log_file: Path, output_file: Path) -> tuple[float, float]:
    """Run `kedro run --pipelines <pipelines>` in ``copy``; return its start and end (epoch seconds)."""
    config = copy / "bench_logging.yml"
    config.write_text(LOGGING_YML.format(path=log_file))
    env = {**ENV, "KEDRO_LOGGING_CONFIG": str(config)}
    command = [str(KEDRO), "run", "--pipelines", pipelines]
    shown = f"kedro run --pipelines {pipelines}"
    print(f"running `{shown}` in {copy} (output: {output_file}) ...", flush=True)
    started = time.time()
    with output_file.open("w") as output:
        code = subprocess.run(command, cwd=copy, env=env, stdout=output, stderr=subprocess.STDOUT).returncode
    ended = time.time()
    if code != 0:
        tail = output_file.read_text(errors="replace")[-4000:]
        raise SystemExit(f"`{shown}` failed in {copy} (exit {code}):\n{tail}")
    return started, ended


def main() -> None:
    """Run the demo, print the stage times, write the headline figures."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--keep", type=Path, help="work in this directory and keep it, instead of a temporary one")
    parser.add_argument("--pipelines", default="unlearn", help="what `kedro run --pipelines` runs (default unlearn)")
    parser.add_argument("--json", help="also write the headline figures here, for run_all.py")
    args = parser.parse_args()
    if args.keep:
        args.keep.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="demo-bench-", dir=args.keep))
    log_file, output_file = work / "timings.log", work / "kedro_output.log"
    try:
        started, ended = run_demo(project_copy(work), args.pipelines, log_file, output_file)
    except BaseException:
        print(f"kept {work} for inspection", file=sys.stderr)
        raise
    times = stage_times(log_file.read_text(encoding="utf-8").splitlines(), started, ended, stage_of_nodes())
    if not args.keep:
        shutil.rmtree(work, ignore_errors=True)

    wall = ended - started
    run = f"`kedro run --pipelines {args.pipelines}`"
    print(f"\n{run} on the demo, fresh copy: {wall / 60:.1f} min ({wall:.0f} s)")
    print(f"{'part':<10} {'seconds':>9} {'share':>7}")
    for part, seconds in times.items():
        print(f"{part:<10} {seconds:>9.0f} {seconds / wall:>7.1%}")
    headline = [row(f"demo {run} end to end, fresh project copy", ("wall time", wall), None, "s")]
    headline += [
        row(f"  of which {part}: its time vs the whole run", (part, seconds), ("whole run", wall), "s", ratio="%")
        for part, seconds in times.items()
    ]
    settings = f"the embedded demo data, default parameters, every stage of `{args.pipelines}` from scratch"
    write_headline(args.json, "demo", settings, headline)


if __name__ == "__main__":
    main()
