"""File outputs are written whole or not at all: a save that fails or is SIGKILLed half-way leaves
the previous file intact under its name. The plain kedro-datasets classes are the control: the same
faults leave them with a truncated file, so each fault really strikes mid-write."""

from __future__ import annotations

import importlib.util
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pandas as pd
import pytest
import yaml
from kedro.io import DatasetError

from relearn_pipeline.datasets import atomic_files
from relearn_pipeline.pipelines import augment, compare, evaluate, finetune, ingest, target, verify

STAGE_PIPELINES = [module.create_pipeline for module in (ingest, target, augment, verify, finetune, evaluate, compare)]

HERE = Path(__file__).resolve().parent
WORKER = HERE / "atomic_write_worker.py"
_spec = importlib.util.spec_from_file_location("atomic_write_worker", WORKER)
worker = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(worker)
CONF = HERE.parents[1] / "conf" / "base"


class Unprintable:
    """A value that fails once the writer reaches it, after part of the file is written."""

    def __str__(self) -> str:
        raise RuntimeError("cannot serialise this value")

    __repr__ = __str__


# kind -> data that fails part-way through the parent's save, after it has opened the output file
FAILING = {
    "parquet": lambda: pd.DataFrame({"answer": ["text", 42]}),  # a mixed column pyarrow refuses
    "csv": lambda: pd.DataFrame({"answer": ["text"] * 500 + [Unprintable()]}),
    "json": lambda: {"answers": ["text"] * 500, "bad": object()},
    "text": lambda: b"bytes, not text",
}


def previous_version(kind: str, tmp_path: Path, variant: str):
    """An output of this kind saved once (version 1), and its bytes."""
    suffix = worker.KINDS[kind][0]
    path = tmp_path / f"output{suffix}"
    worker.dataset(kind, str(path), variant).save(worker.payload(kind, 1))
    return path, path.read_bytes()


@pytest.mark.parametrize("kind", sorted(FAILING))
def test_a_save_that_fails_half_way_keeps_the_previous_file(kind, tmp_path):
    path, before = previous_version(kind, tmp_path / "atomic", "atomic")
    with pytest.raises(DatasetError):
        worker.dataset(kind, str(path), "atomic").save(FAILING[kind]())
    assert path.read_bytes() == before
    assert sorted(p.name for p in path.parent.iterdir()) == [path.name]  # no temporary file left

    plain, plain_before = previous_version(kind, tmp_path / "plain", "plain")
    with pytest.raises(DatasetError):
        worker.dataset(kind, str(plain), "plain").save(FAILING[kind]())
    assert plain.read_bytes() != plain_before  # the control: the fault did strike mid-write


@pytest.mark.parametrize("kind", sorted(worker.KINDS))
@pytest.mark.parametrize("variant", ["atomic", "plain"])
def test_a_save_sigkilled_half_way_keeps_the_previous_file(kind, variant, tmp_path):
    path, before = previous_version(kind, tmp_path, variant)
    victim = subprocess.Popen([sys.executable, str(WORKER), kind, str(path), variant],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    watchdog = threading.Timer(120, victim.kill)
    watchdog.start()
    try:
        lines = iter(victim.stdout.readline, "")
        assert any(line.strip() == "stalled" for line in lines), victim.stderr.read()[-3000:]
        os.kill(victim.pid, signal.SIGKILL)
        victim.wait(10)
    finally:
        watchdog.cancel()
        if victim.poll() is None:
            victim.kill()
            victim.wait(10)
    assert victim.returncode == -signal.SIGKILL
    if variant == "plain":  # the control: killed mid-write, the output itself is cut short
        assert path.read_bytes() != before
        return
    assert path.read_bytes() == before
    (leftover,) = [p for p in path.parent.iterdir() if p != path]  # the half-written temporary file
    assert leftover.name.startswith(f".{path.stem}.tmp-")
    half = leftover.stat().st_size
    worker.dataset(kind, str(path), "atomic").save(worker.payload(kind, 2))  # the rerun replaces it whole
    assert path.read_bytes() != before and 0 < half < path.stat().st_size


def test_a_save_goes_through_an_atomic_rename_and_loads_back(tmp_path):
    frame = worker.payload("parquet", 1)
    dataset = atomic_files.AtomicParquetDataset(filepath=str(tmp_path / "deep" / "out.parquet"))
    assert not dataset.exists()
    dataset.save(frame)
    assert dataset.exists()
    pd.testing.assert_frame_equal(dataset.load(), frame)
    assert [p.name for p in (tmp_path / "deep").iterdir()] == ["out.parquet"]


def test_every_catalog_entry_a_pipeline_writes_to_a_local_file_saves_atomically():
    outputs = set().union(*(create_pipeline().all_outputs() for create_pipeline in STAGE_PIPELINES))
    types = {}
    for path in sorted(CONF.glob("catalog_*.yml")):
        for name, entry in yaml.safe_load(path.read_text()).items():
            if name in outputs:
                inner = entry.get("dataset", entry)  # MlflowArtifactDataset wraps the one that writes
                types[name] = inner["type"] if isinstance(inner, dict) else inner
    kedro_file_datasets = ("pandas.", "json.", "text.", "matplotlib.", "yaml.", "pickle.", "kedro_datasets.")
    plain = sorted(f"{name} ({kind})" for name, kind in types.items() if kind.startswith(kedro_file_datasets))
    assert plain == [], "use the Atomic* classes of relearn_pipeline.datasets.atomic_files"
    assert sum("atomic_files" in kind for kind in types.values()) >= 25
