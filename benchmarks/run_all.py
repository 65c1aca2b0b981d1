"""`make bench`: run every speed/memory benchmark of the project and print one summary table.

Each script prints its own detailed table as it runs and writes its headline figures (`--json`);
at the end this runner prints one Markdown table of them all -- per row what is compared, both
sides, and the ratio, all measured in this run -- and writes it, with the machine and the settings
of each benchmark, to `--out` (ready to paste into docs/benchmarks.md). Figures are never test
assertions: they belong here.

    python benchmarks/run_all.py                          # all (~1 h; the demo alone ~35 min)
    python benchmarks/run_all.py --skip demo              # all but the end-to-end demo
    python benchmarks/run_all.py evaluate augment         # a subset, by name
    python benchmarks/run_all.py augment --args augment="--batch-size 16 48"   # extra script options
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
# name -> (script, what it compares), in the order they run
BENCHMARKS = {
    "target": ("target_bench.py", "embedded model load cold vs cached; demo target memorize time vs a rerun"),
    "augment": ("augment_bench.py", "augmentation batched vs one prompt at a time"),
    "finetune": ("finetune_bench.py", "fine-tune tokens/s, peak memory, share of matmul peak vs the official code's approach"),
    "evaluate": ("evaluate_bench.py", "evaluation generation batched vs one question at a time"),
    "demo": ("demo_bench.py", "demo `kedro run --pipelines unlearn` end to end, per stage"),
}
DEFAULT_OUT = ROOT / "data" / "08_reporting" / "benchmarks.md"


def run_benchmark(name: str, extra: list[str], env: dict[str, str]) -> dict:
    """Run one script with ``--json``; its headline figures, or a record of its failure."""
    script, compares = BENCHMARKS[name]
    print(f"\n### {name}: {compares}\n", flush=True)
    with tempfile.TemporaryDirectory(prefix=f"bench-{name}-") as work:
        out = Path(work) / "headline.json"
        started = time.perf_counter()
        code = subprocess.run([sys.executable, str(HERE / script), *extra, "--json", str(out)], env=env).returncode
        seconds = time.perf_counter() - started
        if code != 0 or not out.is_file():
            return {"benchmark": name, "settings": "", "rows": [], "failed": f"exit code {code}", "seconds": seconds}
        return {**json.loads(out.read_text(encoding="utf-8")), "seconds": seconds}


def format_value(value: float, unit: str) -> str:
    """A figure with its unit: percentages from fractions, long times also in minutes."""
    if unit == "%":
        return f"{value:.1%}"
    if unit == "s" and value >= 120:
        return f"{value / 60:.1f} min ({value:.0f} s)"
    if unit == "s" and value < 10:
        return f"{value:.2f} s"
    return f"{value:.0f} {unit}" if value >= 100 else f"{value:.1f} {unit}"


def format_ratio(figure: dict) -> str:
    """left / right as a factor ("3.1x") or a share ("12.0%"); "-" for a figure with no right side."""
    right = figure["right"]
    if right is None:
        return "-"
    if right["value"] == 0:
        return "n/a (right side is 0)"
    ratio = figure["left"]["value"] / right["value"]
    return f"{ratio:.1%}" if figure["ratio"] == "%" else f"{ratio:.2f}x"


def summary_table(results: list[dict]) -> str:
    """One Markdown table: a row per headline figure, a row per failed benchmark."""
    lines = [
        "| benchmark | what is compared | left | right | ratio (left / right) |",
        "| --- | --- | --- | --- | --- |",
    ]
    for result in results:
        if "failed" in result:
            lines.append(f"| {result['benchmark']} | failed ({result['failed']}): no figures | | | |")
            continue
        for figure in result["rows"]:
            left, right = figure["left"], figure["right"]
            cells = [
                result["benchmark"],
                figure["measure"],
                f"{left['label']}: {format_value(left['value'], figure['unit'])}",
                "" if right is None else f"{right['label']}: {format_value(right['value'], figure['unit'])}",
                format_ratio(figure),
            ]
            lines.append("| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |")
    return "\n".join(lines) + "\n"


def settings_notes(results: list[dict]) -> str:
    """What each benchmark ran on, and how long it took."""
    return "".join(
        f"- **{r['benchmark']}** ({r['seconds']:.0f} s): {r['settings'] or r.get('failed', '')}\n" for r in results
    )


def machine() -> str:
    """The machine and code the figures come from."""
    import torch

    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as info:
            cpu = next(line.split(":", 1)[1].strip() for line in info if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no GPU"
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout.strip()
    return f"{cpu}, {os.cpu_count()} cores, {gpu}; Python {platform.python_version()}, torch {torch.__version__}; commit {commit or '?'}"


def report(results: list[dict], command: str, measured_on: str, when: str) -> str:
    """The Markdown written to --out: the command, the machine, the table, the settings."""
    return (
        f"Measured {when} with `{command}` on {measured_on}.\n\n"
        + summary_table(results)
        + "\nSettings per benchmark:\n\n"
        + settings_notes(results)
    )


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("names", nargs="*", metavar="NAME", help=f"benchmarks to run (default: all of {list(BENCHMARKS)})")
    parser.add_argument("--skip", nargs="+", default=[], metavar="NAME", help="benchmarks not to run")
    parser.add_argument("--args", action="append", default=[], metavar='NAME="OPTIONS"',
                        help="extra options for one script, e.g. augment=\"--batch-size 16 48\" (repeatable)")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help=f"where to write the Markdown (default {DEFAULT_OUT.relative_to(ROOT)})")
    options = parser.parse_args(argv)
    unknown = [n for n in options.names + options.skip if n not in BENCHMARKS]
    unknown += [a.partition("=")[0] for a in options.args if a.partition("=")[0] not in BENCHMARKS]
    if unknown:
        parser.error(f"unknown benchmark(s) {unknown}; choose from {list(BENCHMARKS)}")
    return options


def main(argv: list[str]) -> int:
    options = parse_args(argv)
    chosen = [n for n in (options.names or list(BENCHMARKS)) if n not in options.skip]
    extra = {name: shlex.split(value) for name, _, value in (a.partition("=") for a in options.args)}
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "KEDRO_DISABLE_TELEMETRY": "1",
           "DO_NOT_TRACK": "1", "OMP_WAIT_POLICY": os.environ.get("OMP_WAIT_POLICY", "PASSIVE")}
    when = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    results = [run_benchmark(name, extra.get(name, []), env) for name in chosen]
    command = "python benchmarks/run_all.py " + " ".join(shlex.quote(a) for a in argv)
    text = report(results, command.strip(), machine(), when)
    print("\n## Summary\n\n" + text)
    options.out.parent.mkdir(parents=True, exist_ok=True)
    options.out.write_text(text, encoding="utf-8")
    print(f"written to {options.out}")
    return 1 if any("failed" in r for r in results) else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
