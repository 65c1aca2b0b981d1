"""How many tokens a model takes at once, and the settings that must stay within it.

A record or a ``max_length`` longer than the model's positions cannot be trained or scored as it
is: learned position embeddings fail on the first position past the end, rotary ones silently
produce positions the model never saw. So the stages that tokenize (target, finetune, evaluate)
check their ``max_length`` against the model, and training stops on a record that does not fit.
"""

from __future__ import annotations

from relearn_pipeline.models.loading import ModelBundle

# Config fields that hold the longest sequence, by model family (Llama/Mistral/Qwen, GPT-2, others).
_POSITION_FIELDS = ("max_position_embeddings", "n_positions", "max_sequence_length", "seq_length")


def context_length(model) -> int | None:
    """The longest token sequence ``model`` takes (from its config), or None if the config does not say."""
    config = getattr(model, "config", None)
    for name in _POSITION_FIELDS:
        value = getattr(config, name, None)
        if isinstance(value, int) and value > 0:
            return value
    return None


def check_max_length(max_length: int, bundle: ModelBundle, setting: str) -> int | None:
    """Stop when the ``setting`` (e.g. ``finetune.max_length``) exceeds the model's context; return the context."""
    context = context_length(bundle.model)
    if context is not None and max_length > context:
        raise ValueError(
            f"params:{setting} = {max_length} is longer than the context of {bundle.spec} "
            f"({context} tokens, its config's position limit); set {setting} to at most {context}"
        )
    return context
