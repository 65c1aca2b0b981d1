"""Resume takes only complete checkpoints: every one the Trainer writes is marked, others are skipped."""

from __future__ import annotations

import json

from relearn_pipeline.models import build_tiny_model
from relearn_pipeline.unlearning.checkpoints import COMPLETE_MARKER, is_complete, last_complete_checkpoint, mark_complete
from relearn_pipeline.unlearning.config import finetune_config
from relearn_pipeline.unlearning.training import train_unlearning


def plant(directory, marked: bool):
    """A checkpoint folder with two files, marked complete or not."""
    directory.mkdir(parents=True)
    (directory / "adapter_model.safetensors").write_bytes(b"w" * 100)
    (directory / "optimizer.pt").write_bytes(b"o" * 200)
    if marked:
        mark_complete(directory)
    return directory


def test_the_newest_complete_checkpoint_is_taken_and_incomplete_ones_are_removed(tmp_path):
    plant(tmp_path / "checkpoint-3", marked=True)
    plant(tmp_path / "checkpoint-10", marked=True)  # newer than 3 by number, older by name
    plant(tmp_path / "checkpoint-12", marked=False)  # killed before the marker
    truncated = plant(tmp_path / "checkpoint-14", marked=True)
    (truncated / "optimizer.pt").write_bytes(b"o" * 50)  # a file shorter than the marker says
    garbage = plant(tmp_path / "checkpoint-16", marked=False)
    (garbage / COMPLETE_MARKER).write_text('{"files": {"optimizer.pt": 2')  # a cut-off marker
    (tmp_path / "checkpoint-20").write_text("not a folder")

    assert last_complete_checkpoint(tmp_path) == str(tmp_path / "checkpoint-10")
    assert {p.name for p in tmp_path.iterdir()} >= {"checkpoint-12", "checkpoint-14", "checkpoint-16"}

    assert last_complete_checkpoint(tmp_path, remove_incomplete=True) == str(tmp_path / "checkpoint-10")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint-10", "checkpoint-20", "checkpoint-3"]
    assert last_complete_checkpoint(tmp_path / "absent") is None


def test_a_marker_lists_every_file_with_its_size(tmp_path):
    directory = plant(tmp_path / "checkpoint-1", marked=False)
    (directory / "sub").mkdir()
    (directory / "sub" / "adapter_config.json").write_text("{}")
    mark_complete(directory)
    files = json.loads((directory / COMPLETE_MARKER).read_text())["files"]
    assert files == {"adapter_model.safetensors": 100, "optimizer.pt": 200, "sub/adapter_config.json": 2}
    assert is_complete(directory)
    (directory / "sub" / "adapter_config.json").unlink()
    assert not is_complete(directory)


def test_training_marks_its_checkpoints_and_resume_skips_an_unmarked_one(qa_sets, tmp_path):
    augmented, forget, retain = qa_sets
    config = finetune_config(
        {"method": "relearn", "max_steps": 4, "batch_size": 2, "save_steps": 2, "learning_rate": 1e-2,
         "checkpoint_dir": str(tmp_path), "keep_checkpoints": True, "progress_bar": False},
        seed=0,
    )
    first = train_unlearning(build_tiny_model(0), augmented, forget, retain, config)
    assert first.summary["resumed_from"] is None
    (run_dir,) = tmp_path.iterdir()
    assert sorted(p.name for p in run_dir.iterdir()) == ["checkpoint-2", "checkpoint-4"]
    assert all(is_complete(p) for p in run_dir.iterdir())

    (run_dir / "checkpoint-4" / COMPLETE_MARKER).unlink()  # as if killed while saving checkpoint-4
    resumed = train_unlearning(build_tiny_model(0), augmented, forget, retain, config)
    assert resumed.summary["resumed_from"] == str(run_dir / "checkpoint-2")
    assert resumed.summary["steps"] == 4
    assert list(resumed.history["step"]) == [1, 2, 3, 4]
