"""Run ReLearn and the baselines on the same data, then compare them.

The first run executes the whole `unlearn` pipeline with the default method (the target model is
reused when its fingerprint matches; augmentation reuses its response cache). Every other method
runs only `finetune` + `evaluate` on the stored target and augmented data, and `compare` writes the
table and plot. Each `kedro run` is its own MLflow run.

    python -m relearn_pipeline.sweep                       # default method list
    python -m relearn_pipeline.sweep --env bench_privacy        # the KnowUnDo benchmark (docs/benchmarks.md)
    python -m relearn_pipeline.sweep --methods ga_gdr npo_klr --env local
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time

DEFAULT_METHODS = ("relearn_klr_gdr", "ga_gdr", "ga_klr", "npo_gdr", "npo_klr")


def kedro_run(args: list[str], env: str | None) -> None:
    """One `kedro run` in a child process; stops the sweep on failure."""
    command = [sys.executable, "-m", "kedro", "run", *args] + (["--env", env] if env else [])
    print(f"\n=== {' '.join(command[2:])}", flush=True)
    started = time.perf_counter()
    subprocess.run(command, check=True, env={**os.environ, "KEDRO_DISABLE_TELEMETRY": "1"})
    print(f"=== done in {time.perf_counter() - started:.0f}s", flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--methods", nargs="+", default=list(DEFAULT_METHODS), help="methods, first runs `unlearn`")
    parser.add_argument("--env", default=None, help="Kedro config environment (e.g. bench_privacy)")
    parser.add_argument("--params", default="", help="extra --params for every run, e.g. 'dataset_name=x'")
    options = parser.parse_args(argv)
    extra = [options.params] if options.params else []
    first, *rest = options.methods
    try:
        kedro_run(["--pipelines", "unlearn", "--params", ",".join([f"finetune.method={first}", *extra])], options.env)
        for method in rest:
            params = ",".join([f"finetune.method={method}", *extra])
            kedro_run(["--pipelines", "finetune,evaluate", "--params", params], options.env)
        kedro_run(["--pipelines", "compare", *(["--params", options.params] if extra else [])], options.env)
    except subprocess.CalledProcessError as error:
        print(f"sweep stopped: {' '.join(error.cmd[2:])} exited with {error.returncode}", file=sys.stderr)
        return error.returncode
    return 0


if __name__ == "__main__":
    sys.exit(main())
