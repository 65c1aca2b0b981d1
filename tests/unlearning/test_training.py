"""Training behaviour on the tiny model: direction of each method, reference, resume, data parallel."""

import copy
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from transformers import TrainerCallback

from relearn_pipeline.models import build_tiny_model
from relearn_pipeline.unlearning.config import finetune_config
from relearn_pipeline.unlearning.losses import METHODS, answer_cross_entropy
from relearn_pipeline.unlearning.pairing import PairedCollator, PairedDataset, encode_records
from relearn_pipeline.unlearning.trainer import UnlearningTrainer, stack_parts
from relearn_pipeline.unlearning.training import attach_lora, train_unlearning, training_arguments

HERE = Path(__file__).parent


def config_for(tmp_path, **overrides):
    settings = {
        "max_steps": 4,
        "batch_size": 6,
        "learning_rate": 5e-3,
        "checkpoint_dir": str(tmp_path / "checkpoints"),
        "progress_bar": False,
        "save_steps": 100,
        **overrides,
    }
    return finetune_config(settings, seed=0)


def forget_ce(model, tokenizer, frame):
    """Mean answer cross-entropy of ``model`` on every row of ``frame``, in one batch."""
    batch = PairedCollator(tokenizer.pad_token_id)(
        [{"forget": f} for f in encode_records(frame, tokenizer, 512, "frame")]
    )
    with torch.no_grad():
        logits = model(input_ids=batch["forget_input_ids"], attention_mask=batch["forget_attention_mask"]).logits
    return answer_cross_entropy(logits, batch["forget_labels"]).item()


@pytest.mark.parametrize("method", sorted(METHODS))
def test_each_method_moves_its_forget_loss_the_right_way(method, qa_sets, tmp_path):
    augmented, forget, retain = qa_sets
    trained_on = augmented if method.startswith("relearn") else forget
    bundle = build_tiny_model(0)
    before = forget_ce(bundle.model, bundle.tokenizer, trained_on)
    result = train_unlearning(bundle, augmented, forget, retain, config_for(tmp_path, method=method))
    after = forget_ce(result.model, bundle.tokenizer, trained_on)
    if method.startswith("relearn"):
        assert after < before - 0.05, (method, before, after)
    else:
        assert after > before + 0.05, (method, before, after)
    history = result.history
    assert list(history["step"]) == [1, 2, 3, 4]
    expected_terms = {"forget", "forget_ce"} | ({"retain"} if "gdr" in method else set()) | (
        {"kl"} if "klr" in method else set()
    )
    assert expected_terms <= set(history.columns)
    assert not ({"retain", "kl"} - expected_terms) & set(history.columns)
    assert result.summary["method"] == method and result.summary["steps"] == 4
    assert result.summary["tokens_per_s"] > 0
    # Checkpoints are cleaned up once training has finished.
    assert not any((tmp_path / "checkpoints").glob("*/checkpoint-*"))


def test_reference_is_the_target_before_and_after_training(qa_sets, tmp_path):
    augmented, forget, retain = qa_sets
    bundle = build_tiny_model(0)
    target = copy.deepcopy(bundle.model)
    tokenizer = bundle.tokenizer
    features = encode_records(retain, tokenizer, 512, "retain_set")
    batch = PairedCollator(tokenizer.pad_token_id)([{"forget": f} for f in features[:3]])
    part = {"input_ids": batch["forget_input_ids"], "attention_mask": batch["forget_attention_mask"]}
    with torch.no_grad():
        expected = target(**part).logits

    config = config_for(tmp_path, method="relearn_klr", lora={"dropout": 0.0})
    result = train_unlearning(bundle, augmented, forget, retain, config)
    trainer = UnlearningTrainer(
        model=result.model,
        args=training_arguments(config, tmp_path / "unused"),
        train_dataset=PairedDataset(features, None, seed=0),
        data_collator=PairedCollator(tokenizer.pad_token_id),
        method=METHODS["npo_klr"],
        weights=config.weights,
        pad_token_id=tokenizer.pad_token_id,
    )
    reference = trainer.reference_logits(result.model, {"forget": part, "retain": part})
    torch.testing.assert_close(reference["forget"], expected, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(reference["retain"], expected, rtol=1e-5, atol=1e-5)
    # The adapter did train: with it enabled the outputs differ, and disabling it is not permanent.
    with torch.no_grad():
        tuned = result.model(**part).logits
    assert (tuned - expected).abs().max() > 1e-3

    # Before training (fresh adapter): reference == target == adapted model.
    fresh = build_tiny_model(0)
    peft_model = attach_lora(fresh.model, config.lora)
    trainer.model = peft_model
    before = trainer.reference_logits(peft_model, {"forget": part, "retain": part})["forget"]
    torch.testing.assert_close(before, expected, rtol=1e-5, atol=1e-5)


def test_stack_parts_pads_each_part_to_the_longest():
    short = {"input_ids": torch.tensor([[5, 6]]), "attention_mask": torch.tensor([[1, 1]])}
    long = {"input_ids": torch.tensor([[1, 2, 3], [4, 5, 6]]), "attention_mask": torch.ones(2, 3, dtype=torch.long)}
    ids, mask, sizes = stack_parts([short, long], pad_token_id=0)
    assert ids.tolist() == [[5, 6, 0], [1, 2, 3], [4, 5, 6]]
    assert mask.tolist() == [[1, 1, 0], [1, 1, 1], [1, 1, 1]]
    assert sizes == [1, 2]


def test_retain_pairing_is_seeded_and_cycles_per_epoch():
    forget = [{"input_ids": [i], "labels": [i], "attention_mask": [1]} for i in range(3)]
    retain = [{"input_ids": [100 + i], "labels": [100 + i], "attention_mask": [1]} for i in range(5)]
    dataset = PairedDataset(forget, retain, seed=7)
    epoch0 = [dataset[i]["retain"]["input_ids"][0] for i in range(3)]
    dataset.set_epoch(1)
    epoch1 = [dataset[i]["retain"]["input_ids"][0] for i in range(3)]
    assert epoch0 != epoch1
    assert len(set(epoch0 + epoch1)) == 5  # every retain example used within two epochs
    again = PairedDataset(forget, retain, seed=7)
    assert [again[i]["retain"]["input_ids"][0] for i in range(3)] == epoch0


class Interrupt(TrainerCallback):
    """Simulates a crash after a given optimizer step."""

    def __init__(self, at_step):
        self.at_step = at_step

    def on_step_end(self, args, state, control, **kwargs):
        if state.global_step == self.at_step:
            raise KeyboardInterrupt(f"simulated interruption at step {self.at_step}")


def lora_weights(model):
    return {k: v.detach().clone() for k, v in model.state_dict().items() if "lora_" in k}


def test_resume_after_interruption_gives_the_same_weights(qa_sets, tmp_path):
    augmented, forget, retain = qa_sets
    settings = dict(method="relearn_klr_gdr", max_steps=6, batch_size=2, save_steps=2, learning_rate=1e-2)
    straight = train_unlearning(
        build_tiny_model(0), augmented, forget, retain, config_for(tmp_path / "a", **settings)
    )
    interrupted = config_for(tmp_path / "b", keep_checkpoints=True, **settings)
    with pytest.raises(KeyboardInterrupt):
        train_unlearning(build_tiny_model(0), augmented, forget, retain, interrupted, callbacks=[Interrupt(3)])
    assert [p.name for p in (tmp_path / "b" / "checkpoints").glob("*/checkpoint-*")] == ["checkpoint-2"]
    resumed = train_unlearning(build_tiny_model(0), augmented, forget, retain, interrupted)
    assert resumed.summary["resumed_from"].endswith("checkpoint-2")
    assert resumed.summary["steps"] == 6
    expected, actual = lora_weights(straight.model), lora_weights(resumed.model)
    assert expected.keys() == actual.keys()
    for name in expected:
        torch.testing.assert_close(actual[name], expected[name], rtol=0, atol=1e-6, msg=name)
    assert list(resumed.history["step"]) == list(range(1, 7))


def test_checkpoints_of_other_settings_are_not_resumed(qa_sets, tmp_path):
    augmented, forget, retain = qa_sets
    first = config_for(tmp_path, method="relearn", max_steps=2, save_steps=1, keep_checkpoints=True)
    train_unlearning(build_tiny_model(0), augmented, forget, retain, first)
    other = config_for(tmp_path, method="relearn", max_steps=2, learning_rate=1e-3)
    assert train_unlearning(build_tiny_model(0), augmented, forget, retain, other).summary["resumed_from"] is None


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_process_data_parallel_matches_one_process_with_the_same_global_batch(tmp_path):
    env = {**os.environ, "OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false"}
    worker = str(HERE / "dp_worker.py")
    single, parallel = tmp_path / "single.pt", tmp_path / "parallel.pt"
    common = dict(env=env, cwd=tmp_path, capture_output=True, text=True, timeout=240)
    done = subprocess.run(
        [sys.executable, worker, str(single), "--batch-size", "4", "--checkpoints", str(tmp_path / "c1")], **common
    )
    assert done.returncode == 0, done.stderr[-3000:]
    done = subprocess.run(
        [
            sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2",
            "--master_addr", "127.0.0.1", "--master_port", str(free_port()),
            worker, str(parallel), "--batch-size", "2", "--checkpoints", str(tmp_path / "c2"),
        ],
        **common,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "rank 1 done" in done.stdout and "rank 0 done" in done.stdout
    one, two = torch.load(single), torch.load(parallel)
    assert two["summary"]["world_size"] == 2 and one["summary"]["world_size"] == 1
    assert two["summary"]["steps"] == one["summary"]["steps"] == 3
    # Per-process token means vs one global token mean: close, not bit-equal.
    assert two["history"]["loss"] == pytest.approx(one["history"]["loss"], rel=1e-4)
    for name, weight in one["lora"].items():
        torch.testing.assert_close(two["lora"][name], weight, rtol=0, atol=1e-4, msg=name)


def test_gradient_checkpointing_changes_memory_not_results(qa_sets, tmp_path):
    augmented, forget, retain = qa_sets
    settings = dict(method="npo_klr", max_steps=2, batch_size=3)
    plain = train_unlearning(build_tiny_model(0), augmented, forget, retain, config_for(tmp_path / "a", **settings))
    checkpointed = train_unlearning(
        build_tiny_model(0), augmented, forget, retain,
        config_for(tmp_path / "b", gradient_checkpointing=True, **settings),
    )
    assert checkpointed.model.base_model.model.is_activation_checkpointing
    assert list(checkpointed.history["loss"]) == pytest.approx(list(plain.history["loss"]), rel=1e-5)
    for name, weight in lora_weights(plain.model).items():
        torch.testing.assert_close(lora_weights(checkpointed.model)[name], weight, rtol=1e-5, atol=1e-6)
