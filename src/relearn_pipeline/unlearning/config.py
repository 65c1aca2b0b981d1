"""The finetune stage's settings as training reads them, built from the validated ``params:finetune``.

``params.FinetuneParams`` is the one place where the finetune block's keys, defaults and bounds are
written. ``FinetuneConfig`` is that block with what training needs resolved: the chosen method's
loss weights (its ``weights`` entry, else ``default``, with ``npo_beta``) and the run's seed.
"""

from __future__ import annotations

from typing import Any

from relearn_pipeline.params import FinetuneParams, TermWeights, validate_parameters
from relearn_pipeline.unlearning.losses import LossWeights, Method, get_method


class FinetuneConfig(FinetuneParams):
    """Everything one unlearning fine-tune needs besides the model and the data."""

    weights: LossWeights  # the chosen method's (FinetuneParams.weights holds every method's)
    seed: int

    @property
    def spec(self) -> Method:
        return get_method(self.method)

    def to_dict(self) -> dict[str, Any]:
        """The settings as plain values (npo_beta once: inside ``weights``)."""
        return self.model_dump(exclude={"npo_beta"})


def finetune_config(params: dict[str, Any], seed: int = 42) -> FinetuneConfig:
    """Check ``params:finetune`` and resolve it for training. An unknown method fails with the
    registry's list of names; any other bad key or value with a ``ParameterError`` naming each.
    ``seed`` is the run's seed (parameters.yml), used unless the block sets ``seed`` itself."""
    values = dict(params or {})
    get_method(values.get("method", FinetuneParams.model_fields["method"].default))
    checked = validate_parameters({"finetune": values})["finetune"]
    chosen = checked.weights.get(checked.method, checked.weights.get("default", TermWeights()))
    return FinetuneConfig(**{
        **dict(checked),
        "weights": LossWeights(**chosen.model_dump(), npo_beta=checked.npo_beta),
        "seed": seed if checked.seed is None else checked.seed,
    })
