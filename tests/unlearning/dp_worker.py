"""Train the tiny model a few steps and save the LoRA weights; run alone or under torchrun.

    python dp_worker.py OUT.pt --batch-size 4
    torchrun --nproc_per_node 2 dp_worker.py OUT.pt --batch-size 2     # same global batch
"""

import argparse
import os
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
from conftest import qa_frame  # noqa: E402

from relearn_pipeline.models import build_tiny_model  # noqa: E402
from relearn_pipeline.unlearning.config import finetune_config  # noqa: E402
from relearn_pipeline.unlearning.training import train_unlearning  # noqa: E402

torch.set_num_threads(1)
parser = argparse.ArgumentParser()
parser.add_argument("out")
parser.add_argument("--batch-size", type=int, required=True)
parser.add_argument("--checkpoints", required=True)
options = parser.parse_args()

config = finetune_config(
    {
        "method": "relearn_klr_gdr",
        "max_steps": 3,
        "batch_size": options.batch_size,
        # Plain SGD: weight differences then track gradient differences (Adam's normalised first
        # steps would blow up float-level differences in near-zero gradients).
        "optimizer": "sgd",
        "learning_rate": 0.5,
        "lora": {"r": 8, "alpha": 16, "dropout": 0.0},  # no dropout: its noise differs per process
        "checkpoint_dir": options.checkpoints,
        "save_steps": 100,
        "progress_bar": False,
    },
    seed=3,
)
result = train_unlearning(build_tiny_model(0), qa_frame("aug", 8), qa_frame("forget", 8), qa_frame("retain", 8), config)
if result.is_main_process:
    lora = {k: v.detach().clone() for k, v in result.model.state_dict().items() if "lora_" in k}
    torch.save({"lora": lora, "summary": result.summary, "history": result.history.to_dict("list")}, options.out)
print(f"rank {os.environ.get('RANK', 0)} done", flush=True)
