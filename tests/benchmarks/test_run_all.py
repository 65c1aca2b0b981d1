"""`make bench`'s summary: run_all collects each script's --json headline figures into one table.

No model is loaded: the scripts run here are stand-ins that write canned figures (or fail), and
the demo's stage times are read from a canned Kedro log.
"""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from relearn_pipeline.pipeline_registry import STAGES, register_pipelines

BENCHMARKS_DIR = Path(__file__).resolve().parents[2] / "benchmarks"


@pytest.fixture
def bench(monkeypatch):
    """The benchmarks/ modules, importable as the scripts import each other."""
    monkeypatch.syspath_prepend(str(BENCHMARKS_DIR))
    import bench_common
    import demo_bench
    import run_all

    return bench_common, run_all, demo_bench


def canned_results(bench_common) -> list[dict]:
    row = bench_common.row
    return [
        {"benchmark": "augment", "settings": "20 prompts", "seconds": 61.0, "rows": [
            row("augmentation prompts/s: batched (16 prompts) vs one prompt at a time",
                ("batched (16)", 2.0), ("one at a time", 0.5), "prompts/s"),
        ]},
        {"benchmark": "finetune", "settings": "4 steps", "seconds": 30.0, "rows": [
            row("fine-tune peak memory (CPU peak RSS): this project vs the official code's approach",
                ("relearn-pipeline", 900.0), ("official-style", 1800.0), "MiB"),
            row("fine-tune share of matmul peak", ("relearn-pipeline", 0.125), ("official-style", 0.05), "%"),
        ]},
        {"benchmark": "evaluate", "settings": "", "rows": [], "failed": "exit code 1", "seconds": 3.0},
        {"benchmark": "demo", "settings": "demo data", "seconds": 3700.0, "rows": [
            row("demo end to end", ("wall time", 3600.0), None, "s"),
            row("  of which target: its time vs the whole run", ("target", 360.0), ("whole run", 3600.0), "s", ratio="%"),
        ]},
    ]


def test_summary_table_states_both_sides_and_the_ratio_of_every_figure(bench):
    bench_common, run_all, _ = bench
    lines = run_all.summary_table(canned_results(bench_common)).splitlines()
    assert lines[0] == "| benchmark | what is compared | left | right | ratio (left / right) |"
    assert lines[2] == ("| augment | augmentation prompts/s: batched (16 prompts) vs one prompt at a time "
                        "| batched (16): 2.0 prompts/s | one at a time: 0.5 prompts/s | 4.00x |")
    assert lines[3].endswith("| relearn-pipeline: 900 MiB | official-style: 1800 MiB | 0.50x |")
    assert lines[4].endswith("| relearn-pipeline: 12.5% | official-style: 5.0% | 2.50x |")
    assert lines[5] == "| evaluate | failed (exit code 1): no figures | | | |"
    assert lines[6] == "| demo | demo end to end | wall time: 60.0 min (3600 s) |  | - |"
    assert lines[7] == ("| demo |   of which target: its time vs the whole run | target: 6.0 min (360 s) "
                        "| whole run: 60.0 min (3600 s) | 10.0% |")
    assert len(lines) == 8


def test_report_names_the_command_the_machine_and_each_benchmarks_settings(bench):
    bench_common, run_all, _ = bench
    text = run_all.report(canned_results(bench_common), "python benchmarks/run_all.py --skip demo", "a CPU", "today")
    assert text.startswith("Measured today with `python benchmarks/run_all.py --skip demo` on a CPU.\n")
    assert "- **augment** (61 s): 20 prompts\n" in text
    assert "- **evaluate** (3 s): exit code 1\n" in text


FAKE_SCRIPT = """\
import json, sys
from pathlib import Path
Path({record!r}).write_text(json.dumps(sys.argv[1:]))
Path(sys.argv[sys.argv.index("--json") + 1]).write_text({payload!r})
"""


def test_main_runs_each_script_with_its_options_and_writes_one_table(bench, tmp_path, monkeypatch):
    bench_common, run_all, _ = bench
    payload = json.dumps({"benchmark": "good", "settings": "canned", "rows": [
        bench_common.row("good thing: new vs old", ("new", 3.0), ("old", 1.0), "items/s")]})
    (tmp_path / "good_bench.py").write_text(FAKE_SCRIPT.format(record=str(tmp_path / "argv.json"), payload=payload))
    (tmp_path / "bad_bench.py").write_text("import sys\nsys.exit(3)\n")
    monkeypatch.setattr(run_all, "HERE", tmp_path)
    monkeypatch.setattr(run_all, "BENCHMARKS", {"good": ("good_bench.py", "a stand-in"), "bad": ("bad_bench.py", "fails")})
    out = tmp_path / "reports" / "benchmarks.md"

    assert run_all.main(["--out", str(out), "--args", 'good=--batch-size 16 48 --note "a b"']) == 1
    argv = json.loads((tmp_path / "argv.json").read_text())
    assert argv[:5] == ["--batch-size", "16", "48", "--note", "a b"] and argv[5] == "--json"
    table = out.read_text()
    assert "| good | good thing: new vs old | new: 3.0 items/s | old: 1.0 items/s | 3.00x |" in table
    assert "| bad | failed (exit code 3): no figures | | | |" in table

    assert run_all.main(["--skip", "bad", "--out", str(out)]) == 0
    assert "| bad |" not in out.read_text() and "**bad**" not in out.read_text()


def test_unknown_benchmark_names_are_refused_with_the_known_ones(bench, capsys):
    _, run_all, _ = bench
    for argv in (["nope"], ["--skip", "nope"], ["--args", "nope=--x"]):
        with pytest.raises(SystemExit) as exit_info:
            run_all.parse_args(argv)
        assert exit_info.value.code == 2
        assert "unknown benchmark(s) ['nope']; choose from ['target', 'augment'" in capsys.readouterr().err


def test_every_script_run_all_names_exists_and_accepts_json(bench):
    _, run_all, _ = bench
    for script, _ in run_all.BENCHMARKS.values():
        source = (BENCHMARKS_DIR / script).read_text()
        assert '"--json"' in source and "write_headline(" in source, script


CANNED_LOG = textwrap.dedent("""\
    1000.000 kedro.framework.session.session INFO Kedro project project
    1002.000 kedro.io.data_catalog INFO Loading data from params:base_model (MemoryDataset)...
    1010.000 kedro.runner.sequential_runner INFO Using synchronous mode for loading and saving data. Use the --async flag
    1015.500 kedro.runner.sequential_runner INFO Completed node: check_splits
    1015.500 kedro.runner.sequential_runner INFO Completed 1 out of 4 tasks
    1100.000 kedro.runner.sequential_runner INFO Completed node: make_target_model
    1110.000 kedro.runner.sequential_runner INFO Completed node: load_reference_model
    1160.000 kedro.runner.sequential_runner INFO Completed node: after.generate_answers
    Traceback-free multi-line message continuation
""")
STAGE_OF = {"check_splits": "ingest", "make_target_model": "target", "load_reference_model": "evaluate",
            "after.generate_answers": "evaluate"}


def test_demo_stage_times_sum_node_times_per_stage_from_the_kedro_log(bench):
    _, _, demo_bench = bench
    times = demo_bench.stage_times(CANNED_LOG.splitlines(), started=999.0, ended=1165.0, stages=STAGE_OF)
    assert times == {"startup": 11.0, "ingest": 5.5, "target": 84.5, "evaluate": 60.0, "teardown": 5.0}
    assert sum(times.values()) == pytest.approx(1165.0 - 999.0)


def test_demo_stage_times_refuse_a_log_they_cannot_read(bench):
    _, _, demo_bench = bench
    with pytest.raises(ValueError, match="names no finished node"):
        demo_bench.stage_times(["1000.0 kedro INFO hello"], 999.0, 1001.0, STAGE_OF)
    with pytest.raises(ValueError, match="'mystery' of the log belongs to no stage"):
        demo_bench.stage_times(CANNED_LOG.splitlines()[:3] + ["1011.0 kedro.runner INFO Completed node: mystery"],
                               999.0, 1012.0, STAGE_OF)


def test_every_node_of_unlearn_has_a_stage_for_the_demo_timings(bench):
    _, _, demo_bench = bench
    stages = demo_bench.stage_of_nodes()
    unlearn = register_pipelines()["unlearn"]
    assert {node.name for node in unlearn.nodes} == set(stages)
    assert set(stages.values()) == set(STAGES)

