"""A ``transformers.Trainer`` whose loss is an unlearning method from the registry.

Batches come from ``pairing.PairedCollator``: ``forget_*`` tensors, plus ``retain_*`` tensors for
methods that use the retain set. Forget and retain rows go through the model in one forward pass.
The reference model is the same network with its LoRA adapter disabled, run under ``no_grad`` and
only on the parts the method asks for, so there is one copy of the weights and no reference pass
at all for ``relearn``, ``relearn_gdr``, ``ga`` and ``ga_gdr``.
"""

from __future__ import annotations

from contextlib import contextmanager

import torch
import torch.nn.functional as F
from transformers import Trainer

from relearn_pipeline.unlearning.losses import LossInputs, LossWeights, Method

PARTS = ("forget", "retain")


class UnlearningTrainer(Trainer):
    """Trainer with ``compute_loss`` from an unlearning method; logs each loss term."""

    # compute_loss returns a per-micro-batch mean; the Trainer divides it by the accumulation steps.
    loss_is_scaled_for_ga = False

    def __init__(self, *args, method: Method, weights: LossWeights, pad_token_id: int, **kwargs):
        super().__init__(*args, **kwargs)
        self.method = method
        self.weights = weights
        self.pad_token_id = pad_token_id
        # Work done by this process: real (non-padding) tokens and all positions (padding included)
        # through the trained forward, and positions through the reference forward.
        self.trained_tokens = 0
        self.trained_positions = 0
        self.reference_positions = 0
        self._term_sums: dict[str, torch.Tensor] = {}
        self._term_batches = 0

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        parts = {part: _part(inputs, part) for part in PARTS if f"{part}_input_ids" in inputs}
        if self.method.uses_retain and "retain" not in parts:
            raise ValueError(f"method {self.method.name!r} needs retain_* tensors in each batch; use PairedCollator")
        names = [part for part in PARTS if part == "forget" or self.method.uses_retain]
        input_ids, attention_mask, sizes = stack_parts([parts[name] for name in names], self.pad_token_id)
        outputs = model(input_ids=input_ids, attention_mask=attention_mask, use_cache=False)
        logits = split_parts(outputs.logits, names, sizes, parts)
        reference = self.reference_logits(model, parts)
        batch = LossInputs(
            forget_logits=logits["forget"],
            forget_labels=parts["forget"]["labels"],
            retain_logits=logits.get("retain"),
            retain_labels=parts["retain"]["labels"] if "retain" in logits else None,
            reference_forget_logits=reference.get("forget"),
            reference_retain_logits=reference.get("retain"),
        )
        result = self.method.loss(batch, self.weights)
        self.trained_tokens += attention_mask.sum().detach()  # a tensor: no device sync per step
        self.trained_positions += input_ids.numel()
        self._record(result.terms)
        return (result.total, outputs) if return_outputs else result.total

    def get_resumed_dataloader(self, dataloader, num_batches):
        """Skip the trained batches of the resumed epoch, keeping that epoch's retain pairing."""
        # The skipping loader never forwards set_epoch to the dataset, so a resume inside epoch
        # e > 0 would otherwise pair the rest of the epoch as if it were epoch 0.
        if hasattr(self.train_dataset, "set_epoch"):
            self.train_dataset.set_epoch(int(self.state.epoch + 1e-6))
        return super().get_resumed_dataloader(dataloader, num_batches)

    def reference_logits(self, model, parts: dict[str, dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
        """Logits of the target (adapter disabled) on the parts the method needs; none if it needs none."""
        names = [part for part in PARTS if part in self.method.reference_on]
        if not names:
            return {}
        network = self.accelerator.unwrap_model(model)
        input_ids, attention_mask, sizes = stack_parts([parts[name] for name in names], self.pad_token_id)
        self.reference_positions += input_ids.numel()
        with torch.no_grad(), network.disable_adapter(), _eval_mode(network), self.accelerator.autocast():
            logits = network(input_ids=input_ids, attention_mask=attention_mask, use_cache=False).logits
        return split_parts(logits, names, sizes, parts)

    def log(self, logs: dict[str, float], start_time: float | None = None) -> None:
        """Add the mean of each loss term since the last log (averaged over processes)."""
        if "loss" in logs and self._term_batches:
            for name, total in self._term_sums.items():
                mean = self.accelerator.reduce(total / self._term_batches, reduction="mean")
                logs[name] = round(float(mean), 6)
            self._term_sums, self._term_batches = {}, 0
        super().log(logs, start_time)

    def _record(self, terms: dict[str, torch.Tensor]) -> None:
        for name, value in terms.items():
            self._term_sums[name] = self._term_sums.get(name, 0.0) + value.detach().float()
        self._term_batches += 1


def stack_parts(
    parts: list[dict[str, torch.Tensor]], pad_token_id: int
) -> tuple[torch.Tensor, torch.Tensor, list[int]]:
    """Concatenate batches along rows, right-padding to the longest; return ids, mask, row counts."""
    longest = max(part["input_ids"].shape[1] for part in parts)

    def right_pad(tensor: torch.Tensor, value: int) -> torch.Tensor:
        return F.pad(tensor, (0, longest - tensor.shape[1]), value=value)

    input_ids = torch.cat([right_pad(part["input_ids"], pad_token_id) for part in parts])
    attention_mask = torch.cat([right_pad(part["attention_mask"], 0) for part in parts])
    return input_ids, attention_mask, [part["input_ids"].shape[0] for part in parts]


def split_parts(
    logits: torch.Tensor, names: list[str], sizes: list[int], parts: dict[str, dict[str, torch.Tensor]]
) -> dict[str, torch.Tensor]:
    """Undo ``stack_parts``: each part's rows, cut back to its own length (right padding is causal-safe)."""
    rows = logits.split(sizes)
    return {name: part_rows[:, : parts[name]["input_ids"].shape[1]] for name, part_rows in zip(names, rows)}


def _part(inputs: dict[str, torch.Tensor], part: str) -> dict[str, torch.Tensor]:
    prefix = f"{part}_"
    return {key[len(prefix):]: value for key, value in inputs.items() if key.startswith(prefix)}


@contextmanager
def _eval_mode(model: torch.nn.Module):
    """The reference is the target at inference: no dropout anywhere while it runs."""
    was_training = model.training
    model.eval()
    try:
        yield
    finally:
        model.train(was_training)
