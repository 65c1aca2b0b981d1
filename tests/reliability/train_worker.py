"""Fine-tune the tiny model (relearn_klr_gdr, checkpoint every 2 steps) and save the LoRA weights.

    python train_worker.py OUT.pt --checkpoints DIR [--throttle-s S] [--stall-saving STEP]

``--throttle-s`` sleeps after every optimizer step, so a test can SIGKILL the process between
two checkpoints; without it the run goes at full speed (and resumes from DIR when it holds a
checkpoint of the same settings and data). ``--stall-saving STEP`` writes the first half of
``checkpoint-STEP/optimizer.pt``, prints ``stalled`` and waits, so a test can SIGKILL the process
in the middle of saving a checkpoint (the fault is in ``torch.save``; our code runs unchanged).
"""

import argparse
import io
import os
import sys
import time
from pathlib import Path

import torch
from transformers import TrainerCallback

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "unlearning"))
from conftest import qa_frame  # noqa: E402

from relearn_pipeline.models import build_tiny_model  # noqa: E402
from relearn_pipeline.unlearning.config import finetune_config  # noqa: E402
from relearn_pipeline.unlearning.training import train_unlearning  # noqa: E402

MAX_STEPS = 8
SAVE_STEPS = 2


class Throttle(TrainerCallback):
    def __init__(self, seconds: float):
        self.seconds = seconds

    def on_step_end(self, args, state, control, **kwargs):
        print(f"step {state.global_step}", flush=True)
        time.sleep(self.seconds)


def stall_while_saving(step: int) -> None:
    """Make ``torch.save`` of checkpoint-``step``'s optimizer state write half its bytes, then hang."""
    real_save = torch.save

    def save(obj, f, *args, **kwargs):
        path = Path(os.fspath(f)) if isinstance(f, (str, os.PathLike)) else None
        if path is None or path.parent.name != f"checkpoint-{step}" or path.name != "optimizer.pt":
            return real_save(obj, f, *args, **kwargs)
        buffer = io.BytesIO()
        real_save(obj, buffer, *args, **kwargs)
        data = buffer.getvalue()
        with open(path, "wb") as stream:
            stream.write(data[: len(data) // 2])
        print("stalled", flush=True)
        time.sleep(600)

    torch.save = save


def main() -> None:
    torch.set_num_threads(1)
    parser = argparse.ArgumentParser()
    parser.add_argument("out")
    parser.add_argument("--checkpoints", required=True)
    parser.add_argument("--throttle-s", type=float, default=0.0)
    parser.add_argument("--stall-saving", type=int, default=None)
    options = parser.parse_args()
    if options.stall_saving is not None:
        stall_while_saving(options.stall_saving)
    config = finetune_config(
        {
            "method": "relearn_klr_gdr",
            "max_steps": MAX_STEPS,
            "batch_size": 2,
            "learning_rate": 1e-2,
            "save_steps": SAVE_STEPS,
            "save_total_limit": 2,
            "checkpoint_dir": options.checkpoints,
            "keep_checkpoints": True,
            "progress_bar": False,
        },
        seed=0,
    )
    callbacks = [Throttle(options.throttle_s)] if options.throttle_s else None
    result = train_unlearning(
        build_tiny_model(0), qa_frame("aug", 6), qa_frame("forget", 6), qa_frame("retain", 8), config, callbacks=callbacks
    )
    lora = {k: v.detach().clone() for k, v in result.model.state_dict().items() if "lora_" in k}
    torch.save({"lora": lora, "summary": result.summary, "history": result.history.to_dict("list")}, options.out)
    print("done", flush=True)


if __name__ == "__main__":
    main()
