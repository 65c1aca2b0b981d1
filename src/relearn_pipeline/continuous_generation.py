"""Sampling several candidates per prompt with continuous batching, for decoder-only models on CPU or GPU.

`model.generate` on a padded batch with ``num_return_sequences=n`` prefills every prompt n times,
keeps every row stepping until the longest one stops, and pads short prompts to the longest. Here:

- each prompt is prefilled once, then its KV cache is copied for its n candidates, and prompts
  that start alike (one template's system prompt and instructions) run their common prefix once;
- a row leaves the batch the step it ends (EOS or ``max_new_tokens``);
- waiting prompts are prefilled and join the running batch once a quarter of its rows are free
  (their cache is left-padded to the batch's length; columns no row uses any more are cut);
- each candidate draws from its own generator, seeded by (seed, prompt text, candidate index), so a
  prompt's candidates do not depend on which batch it ran in or what ran before it.

Models whose cache is not a plain per-layer key/value cache (sliding windows, state-space layers)
raise ``UnsupportedModel`` on the first prefill, before any result is delivered; ``generate_texts``
and the transformers backend then run fixed ``model.generate`` batches instead.
"""

from __future__ import annotations

import hashlib
import inspect
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from transformers.cache_utils import DynamicCache, DynamicLayer

from relearn_pipeline.llm.requests import SamplingParams
from relearn_pipeline.models.loading import ModelBundle

# Called once per prompt as soon as all of its candidates have ended: (prompt index, texts).
PromptDone = Callable[[int, list[str]], None]


class UnsupportedModel(RuntimeError):
    """The model's cache cannot be cut and joined row by row; use fixed ``model.generate`` batches."""


@dataclass
class _Row:
    prompt: int
    candidate: int
    generator: torch.Generator | None
    tokens: list[int] = field(default_factory=list)
    pending: int = -1  # sampled, not yet fed to the model
    done: bool = False


def candidate_seed(seed: int, prompt: str, candidate: int) -> int:
    """The generator seed of one candidate: a function of what is asked, not of where it ran."""
    digest = hashlib.sha256(f"{seed}\0{candidate}\0{prompt}".encode()).digest()
    return int.from_bytes(digest[:8], "big") >> 1


# Top-p is computed over the most likely tokens first: a nucleus of 0.9 rarely holds more than a
# few dozen of a 49k vocabulary, and sorting all of it for every row was a quarter of a decode step.
NUCLEUS_WINDOW = 64
# Prompts of one template share its system prompt and instructions: when a refill's prompts share
# at least this many leading tokens, those are run once and their cache copied to every row.
MIN_SHARED_PREFIX = 16


def choose_tokens(logits: torch.Tensor, sampling: SamplingParams, generators: Sequence[torch.Generator | None]) -> list[int]:
    """Next token per row: argmax when greedy, else temperature, then top-k, then top-p, then one draw per row.

    Rows whose top-k / top-p set fits in the ``NUCLEUS_WINDOW`` most likely tokens draw from that
    window (the same distribution, renormalised); the others from the whole vocabulary.
    """
    if sampling.temperature <= 0:
        return logits.argmax(dim=-1).tolist()
    scores = logits.float() / sampling.temperature
    vocab = scores.shape[-1]
    top_k = sampling.top_k if 0 < sampling.top_k < vocab else vocab
    window = min(top_k, NUCLEUS_WINDOW)
    values, ids = torch.topk(scores, window, dim=-1)
    if top_k < vocab:
        kth = values[:, -1:] if window == top_k else torch.topk(scores, top_k, dim=-1).values[:, -1:]
        scores = scores.masked_fill(scores < kth, float("-inf"))
    probs = (values - torch.logsumexp(scores, dim=-1, keepdim=True)).exp()
    before = probs.cumsum(dim=-1) - probs
    # The window holds a row's whole sampling set when it is all of top-k, or the nucleus ends inside it.
    inside = torch.full((len(probs),), window == top_k) | ((before[:, -1] + probs[:, -1]) >= sampling.top_p)
    keep = before < sampling.top_p  # the most likely token always stays
    tokens = []
    for row, generator in enumerate(generators):
        if inside[row]:
            choice = torch.multinomial(probs[row] * keep[row], 1, generator=generator)
            tokens.append(int(ids[row, choice]))
        else:
            tokens.append(_draw_from_vocabulary(scores[row], sampling.top_p, generator))
    return tokens


def _draw_from_vocabulary(scores: torch.Tensor, top_p: float, generator: torch.Generator | None) -> int:
    probs = scores.softmax(dim=-1)
    if top_p < 1.0:
        ordered, order = torch.sort(probs, descending=True)
        ordered = ordered.masked_fill((ordered.cumsum(dim=-1) - ordered) >= top_p, 0.0)
        return int(order[torch.multinomial(ordered, 1, generator=generator)])
    return int(torch.multinomial(probs, 1, generator=generator))


def _left_pad(tensor: torch.Tensor, length: int, dim: int) -> torch.Tensor:
    missing = length - tensor.shape[dim]
    if missing <= 0:
        return tensor
    pad = [0, 0] * (tensor.dim() - 1 - dim % tensor.dim()) + [missing, 0]
    return F.pad(tensor, pad)


class _Batch:
    """The running rows with their KV cache, attention mask and pending (sampled, not yet fed) tokens."""

    def __init__(self) -> None:
        self.rows: list[_Row] = []
        self.cache: DynamicCache | None = None
        self.mask: torch.Tensor | None = None

    def join(self, rows: list[_Row], cache: DynamicCache, mask: torch.Tensor) -> None:
        if self.cache is None:
            self.rows, self.cache, self.mask = rows, cache, mask
            return
        length = max(self.mask.shape[1], mask.shape[1])
        for mine, theirs in zip(self.cache.layers, cache.layers, strict=True):
            mine.keys = torch.cat([_left_pad(mine.keys, length, -2), _left_pad(theirs.keys, length, -2)])
            mine.values = torch.cat([_left_pad(mine.values, length, -2), _left_pad(theirs.values, length, -2)])
        self.mask = torch.cat([_left_pad(self.mask, length, 1), _left_pad(mask, length, 1)])
        self.rows += rows

    def drop_done(self) -> None:
        keep = [i for i, row in enumerate(self.rows) if not row.done]
        if len(keep) == len(self.rows):
            return
        if not keep:
            self.rows, self.cache, self.mask = [], None, None
            return
        index = torch.tensor(keep, device=self.mask.device)
        self.cache.batch_select_indices(index)
        self.mask = self.mask[index]
        self.rows = [self.rows[i] for i in keep]
        # Cut the leading columns that are padding in every remaining row.
        unused = int((self.mask.cumsum(dim=1) == 0).sum(dim=1).min())
        if unused:
            for layer in self.cache.layers:
                layer.keys, layer.values = layer.keys[:, :, unused:], layer.values[:, :, unused:]
            self.mask = self.mask[:, unused:]


def _cache_kwarg(model: torch.nn.Module) -> str:
    """transformers 5.x names the forward's cache argument ``cache``; 4.x named it ``past_key_values``."""
    return "cache" if "cache" in inspect.signature(model.forward).parameters else "past_key_values"


def _returned_cache(out) -> DynamicCache | None:
    return out.cache if getattr(out, "cache", None) is not None else getattr(out, "past_key_values", None)


def _filled(cache: DynamicCache | None, model: torch.nn.Module) -> DynamicCache:
    if not isinstance(cache, DynamicCache) or any(type(layer) is not DynamicLayer for layer in cache.layers):
        raise UnsupportedModel(f"{type(model).__name__}: its cache is not a plain key/value cache")
    return cache


def _prefill(
    bundle: ModelBundle, ids: list[list[int]], shared: int, kwarg: str
) -> tuple[DynamicCache, torch.Tensor, torch.Tensor]:
    """KV cache, attention mask and last logits of prompts given as token ids (``kwarg``: the
    forward's name for the cache, ``_cache_kwarg``).

    The first ``shared`` tokens, common to every prompt, are run once and their cache copied to each
    row; the rest of each prompt is left-padded behind them (``[shared | pad | own tokens]``).
    """
    model, device = bundle.model, bundle.device
    cache = DynamicCache(config=model.config)
    if shared:
        prefix = torch.tensor([ids[0][:shared]], device=device)
        out = model(
            input_ids=prefix, attention_mask=torch.ones_like(prefix), position_ids=torch.arange(shared, device=device)[None],
            use_cache=True, logits_to_keep=1, **{kwarg: cache},
        )
        cache = _filled(_returned_cache(out), model)
        cache.batch_repeat_interleave(len(ids))
    own = [sequence[shared:] for sequence in ids]
    width = max(len(tokens) for tokens in own)
    pad = bundle.tokenizer.pad_token_id if bundle.tokenizer.pad_token_id is not None else 0
    input_ids = torch.tensor([[pad] * (width - len(t)) + t for t in own], device=device)
    mask = torch.tensor([[1] * shared + [0] * (width - len(t)) + [1] * len(t) for t in own], device=device)
    positions = (mask.cumsum(dim=1) - 1).clamp(min=0)[:, shared:]
    out = model(
        input_ids=input_ids, attention_mask=mask, position_ids=positions,
        use_cache=True, logits_to_keep=1, **{kwarg: cache},
    )
    return _filled(_returned_cache(out), model), mask, out.logits[:, -1, :]


def _common_prefix(a: Sequence[int], b: Sequence[int]) -> int:
    length = 0
    for x, y in zip(a, b):
        if x != y:
            break
        length += 1
    return length


def shared_runs(ids: Sequence[Sequence[int]], minimum: int) -> list[tuple[int, int, int]]:
    """Split prompts (sorted by token ids) into runs ``(start, stop, shared)`` that prefill the most
    tokens once: a run's first ``shared`` tokens are common to it (``shared >= minimum``, else 0)
    and each prompt keeps at least one own token. A run is split where neighbours share least,
    whenever its parts together save more than the run as a whole."""

    def common(start: int, stop: int) -> int:
        if stop - start < 2:
            return 0
        length = min(_common_prefix(ids[start], ids[stop - 1]), *(len(ids[i]) - 1 for i in range(start, stop)))
        return length if length >= minimum else 0

    def best(start: int, stop: int) -> tuple[int, list[tuple[int, int, int]]]:
        shared = common(start, stop)
        whole = ((stop - start - 1) * shared, [(start, stop, shared)])
        if stop - start < 2:
            return whole
        cut = min(range(start + 1, stop), key=lambda i: _common_prefix(ids[i - 1], ids[i]))
        (left, left_runs), (right, right_runs) = best(start, cut), best(cut, stop)
        return whole if whole[0] >= left + right else (left + right, left_runs + right_runs)

    return best(0, len(ids))[1] if ids else []


def _eos_ids(bundle: ModelBundle) -> set[int]:
    ids = {bundle.tokenizer.eos_token_id}
    configured = getattr(bundle.model.generation_config, "eos_token_id", None)
    ids |= set(configured) if isinstance(configured, (list, tuple)) else {configured}
    return {i for i in ids if i is not None}


def sample_continuous(
    bundle: ModelBundle,
    prompts: Sequence[str],
    sampling: SamplingParams,
    *,
    n: int = 1,
    batch_size: int = 16,
    on_done: PromptDone | None = None,
    on_progress: Callable[[int], None] | None = None,
) -> list[list[str]]:
    """``n`` continuations of each already-formatted prompt, at most ``batch_size`` prompts in flight.

    Only new tokens are decoded (special tokens skipped, whitespace stripped). ``on_done`` fires per
    prompt as soon as its candidates exist; ``on_progress`` gets the number of prompts just finished.
    """
    if n < 1 or batch_size < 1:
        raise ValueError(f"sample_continuous: n and batch_size must be >= 1, got n={n}, batch_size={batch_size}")
    if sampling.temperature <= 0 and n > 1:
        raise ValueError(f"greedy decoding (temperature 0) gives one candidate; set temperature > 0 to sample n={n}")
    tokenizer, model = bundle.tokenizer, bundle.model
    eos, capacity = _eos_ids(bundle), batch_size * n
    ids = tokenizer(list(prompts), add_special_tokens=False)["input_ids"]
    # Sorted by token ids: prompts of one template are neighbours, so a refill shares their prefix.
    waiting = deque(sorted(range(len(prompts)), key=lambda i: ids[i]))
    results: list[list[str]] = [[] for _ in prompts]
    finished: dict[int, list[_Row]] = {}
    batch = _Batch()
    cache_kwarg = _cache_kwarg(model)
    model.eval()

    def record(rows: list[_Row], tokens: list[int]) -> None:
        for row, token in zip(rows, tokens, strict=True):
            if token in eos:
                row.done = True
                continue
            row.tokens.append(token)
            row.done = len(row.tokens) >= sampling.max_new_tokens
        done_prompts = []
        for row in rows:
            if row.done:
                finished.setdefault(row.prompt, []).append(row)
                if len(finished[row.prompt]) == n:
                    done_prompts.append(row.prompt)
        for index in done_prompts:
            rows_of = sorted(finished.pop(index), key=lambda r: r.candidate)
            results[index] = [tokenizer.decode(r.tokens, skip_special_tokens=True).strip() for r in rows_of]
            if on_done:
                on_done(index, results[index])
        if done_prompts and on_progress:
            on_progress(len(done_prompts))

    def join(chosen: list[int], shared: int) -> None:
        cache, mask, logits = _prefill(bundle, [ids[i] for i in chosen], shared, cache_kwarg)
        if n > 1:
            cache.batch_repeat_interleave(n)
            mask, logits = mask.repeat_interleave(n, dim=0), logits.repeat_interleave(n, dim=0)
        rows = []
        for index in chosen:
            for candidate in range(n):
                generator = None
                if sampling.temperature > 0:
                    generator = torch.Generator(device=logits.device)
                    generator.manual_seed(candidate_seed(sampling.seed, prompts[index], candidate))
                rows.append(_Row(index, candidate, generator))
        pending = choose_tokens(logits, sampling, [r.generator for r in rows])
        for row, token in zip(rows, pending, strict=True):
            row.pending = token
        batch.join(rows, cache, mask)
        record(rows, pending)

    with torch.inference_mode():
        while waiting or batch.rows:
            free = capacity - len(batch.rows)
            if waiting and free >= n and (not batch.rows or free >= capacity // 4):
                chosen = [waiting.popleft() for _ in range(min(len(waiting), free // n))]
                for start, stop, shared in shared_runs([ids[i] for i in chosen], MIN_SHARED_PREFIX):
                    join(chosen[start:stop], shared)
            batch.drop_done()
            if not batch.rows:
                continue
            feed = torch.tensor([[row.pending] for row in batch.rows], device=batch.mask.device)
            batch.mask = F.pad(batch.mask, (0, 1), value=1)
            positions = batch.mask.sum(dim=1, keepdim=True) - 1
            out = model(
                input_ids=feed, attention_mask=batch.mask, position_ids=positions,
                use_cache=True, **{cache_kwarg: batch.cache},
            )
            tokens = choose_tokens(out.logits[:, -1, :], sampling, [r.generator for r in batch.rows])
            for row, token in zip(batch.rows, tokens, strict=True):
                row.pending = token
            record(batch.rows, tokens)
    return results
