"""Fine-tuning killed with SIGKILL resumes from the last complete checkpoint, to the same weights.

A real child process trains the tiny model (tests/reliability/train_worker.py); the test SIGKILLs
it while it trains on after a complete checkpoint, or while it is saving one, and runs the worker
again.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import torch

from relearn_pipeline.unlearning.checkpoints import COMPLETE_MARKER, is_complete

HERE = Path(__file__).resolve().parent
WORKER = str(HERE / "train_worker.py")
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false"}


def _train(out: Path, checkpoints: Path) -> dict:
    done = subprocess.run([sys.executable, WORKER, str(out), "--checkpoints", str(checkpoints)],
                          env=ENV, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    return torch.load(out)


@pytest.fixture(scope="module")
def straight(tmp_path_factory):
    """The uninterrupted run (8 steps, 3 per epoch), in its own process."""
    tmp = tmp_path_factory.mktemp("straight")
    result = _train(tmp / "straight.pt", tmp / "checkpoints")
    assert result["summary"]["resumed_from"] is None
    return result


@pytest.mark.parametrize(
    "checkpoint",
    [2, 4],
    ids=["killed-in-epoch-1", "killed-in-epoch-2"],
)
def test_sigkill_mid_training_resumes_from_the_last_checkpoint_with_the_same_final_weights(
    tmp_path, straight, checkpoint
):

    checkpoints = tmp_path / "checkpoints"
    victim = subprocess.Popen(
        [sys.executable, WORKER, str(tmp_path / "never.pt"), "--checkpoints", str(checkpoints), "--throttle-s", "0.4"],
        env=ENV, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
    )
    try:
        deadline = time.monotonic() + 90
        # the checkpoint is complete once its marker (written last) is there
        while not list(checkpoints.glob(f"*/checkpoint-{checkpoint}/{COMPLETE_MARKER}")):
            assert victim.poll() is None, "the worker ended before it could be killed"
            assert time.monotonic() < deadline, f"no checkpoint-{checkpoint} within 90 s"
            time.sleep(0.02)
        os.kill(victim.pid, signal.SIGKILL)  # during the next step (mid-epoch), before the next checkpoint
        victim.wait(10)
    finally:
        if victim.poll() is None:
            os.kill(victim.pid, signal.SIGKILL)
            victim.wait(10)
    assert victim.returncode == -signal.SIGKILL
    assert not (tmp_path / "never.pt").exists()
    assert sorted(p.name for p in checkpoints.glob("*/checkpoint-*")) == [f"checkpoint-{s}" for s in range(2, checkpoint + 1, 2)]

    resumed = _train(tmp_path / "resumed.pt", checkpoints)
    assert resumed["summary"]["resumed_from"].endswith(f"checkpoint-{checkpoint}")
    assert resumed["summary"]["steps"] == straight["summary"]["steps"] == 8
    assert resumed["history"]["step"] == straight["history"]["step"]
    assert straight["lora"].keys() == resumed["lora"].keys() and straight["lora"]
    for name, weight in straight["lora"].items():
        torch.testing.assert_close(resumed["lora"][name], weight, rtol=0, atol=1e-6)


def test_sigkill_while_saving_a_checkpoint_resumes_from_the_previous_complete_one(tmp_path, straight):
    checkpoints = tmp_path / "checkpoints"
    victim = subprocess.Popen(
        [sys.executable, WORKER, str(tmp_path / "never.pt"), "--checkpoints", str(checkpoints), "--stall-saving", "4"],
        env=ENV, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
    )
    watchdog = threading.Timer(120, victim.kill)  # a worker that never stalls ends the wait below
    watchdog.start()
    try:
        # the worker prints "stalled" once half of checkpoint-4/optimizer.pt is on disk
        stalled = any(line.strip() == "stalled" for line in iter(victim.stdout.readline, ""))
        assert stalled, "the worker ended (or ran 120 s) without reaching checkpoint-4"
        os.kill(victim.pid, signal.SIGKILL)
        victim.wait(10)
    finally:
        watchdog.cancel()
        if victim.poll() is None:
            os.kill(victim.pid, signal.SIGKILL)
            victim.wait(10)
    assert victim.returncode == -signal.SIGKILL
    (run_dir,) = checkpoints.iterdir()
    assert sorted(p.name for p in run_dir.iterdir()) == ["checkpoint-2", "checkpoint-4"]
    half_saved = run_dir / "checkpoint-4"
    assert (half_saved / "adapter_model.safetensors").is_file() and (half_saved / "optimizer.pt").is_file()
    assert not (half_saved / COMPLETE_MARKER).exists() and not is_complete(half_saved)
    assert is_complete(run_dir / "checkpoint-2")

    resumed = _train(tmp_path / "resumed.pt", checkpoints)
    assert resumed["summary"]["resumed_from"].endswith("checkpoint-2")
    assert resumed["summary"]["steps"] == 8
    assert resumed["history"]["step"] == straight["history"]["step"]
    for name, weight in straight["lora"].items():
        torch.testing.assert_close(resumed["lora"][name], weight, rtol=0, atol=1e-6)
    # the half-saved folder was removed and written again, whole, by the resumed run
    assert all(is_complete(path) for path in run_dir.iterdir())
