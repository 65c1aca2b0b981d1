"""Checkpoints that a resume can trust.

The Trainer writes ``checkpoint-N/`` file by file (adapter, optimizer, scheduler, RNG states,
trainer state), so a process killed while saving leaves a folder that looks like a checkpoint but
is not one; resuming from it crashes on a truncated file or, worse, restarts from step 0 with half
the state. So a checkpoint counts only once ``COMPLETE_MARKER`` is in it: written last, atomically,
after every process has finished its part, listing each file with its size. Resume takes the
newest marked checkpoint and removes the unmarked ones.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
from pathlib import Path

import torch.distributed as dist
from transformers import TrainerCallback

from relearn_pipeline.atomic import atomic_write_text

logger = logging.getLogger(__name__)

COMPLETE_MARKER = "relearn_checkpoint_complete.json"
_CHECKPOINT = re.compile(r"^checkpoint-(\d+)$")


class MarkCheckpointComplete(TrainerCallback):
    """After the Trainer has saved ``checkpoint-<step>`` in every process, mark it complete."""

    def on_save(self, args, state, control, **kwargs):
        if dist.is_available() and dist.is_initialized():
            dist.barrier()  # every rank has written its own files (RNG state) before the marker
        if state.is_world_process_zero:
            mark_complete(Path(args.output_dir) / f"checkpoint-{state.global_step}")


def mark_complete(directory: Path) -> None:
    """Flush every file of ``directory`` to disk, then write the marker that lists them."""
    files = {}
    for path in sorted(p for p in directory.rglob("*") if p.is_file() and p.name != COMPLETE_MARKER):
        with open(path, "rb") as stream:
            os.fsync(stream.fileno())
        files[path.relative_to(directory).as_posix()] = path.stat().st_size
    atomic_write_text(directory / COMPLETE_MARKER, json.dumps({"files": files}, indent=1, sort_keys=True))


def is_complete(directory: Path) -> bool:
    """True when ``directory`` has a readable marker and every file it lists, at the listed size."""
    try:
        files = json.loads((directory / COMPLETE_MARKER).read_text(encoding="utf-8"))["files"]
        return bool(files) and all((directory / name).stat().st_size == size for name, size in files.items())
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return False


def last_complete_checkpoint(output_dir: Path, remove_incomplete: bool = False) -> str | None:
    """The newest complete ``checkpoint-N`` under ``output_dir`` (None if none); incomplete ones are
    skipped with a warning and, with ``remove_incomplete`` (the main process only), deleted."""
    if not output_dir.is_dir():
        return None
    found = sorted(
        (int(match.group(1)), path)
        for path in output_dir.iterdir()
        if path.is_dir() and (match := _CHECKPOINT.match(path.name))
    )
    complete = None
    for _, path in found:
        if is_complete(path):
            complete = path
            continue
        logger.warning(
            "Ignoring %s: it has no complete %s (the run was stopped while saving it)%s",
            path, COMPLETE_MARKER, "; removing it" if remove_incomplete else "",
        )
        if remove_incomplete:
            shutil.rmtree(path, ignore_errors=True)
    return str(complete) if complete is not None else None
