"""Evaluation generation throughput: batched vs one question at a time.

Every mode answers the same demo questions (forget-eval + retain-eval) with the embedded
SmolLM2-135M-Instruct, greedily, through `generation.generate_texts` -- the call the `evaluate`
pipeline makes: one question at a time, batched (continuous batching, the default), and fixed
left-padded batches through `model.generate` (`continuous=False`). Prints a table; the goal is a
batched speed-up of at least 4x.

    python benchmarks/evaluate_bench.py [--questions 48] [--max-new-tokens 64] [--batch-size 16] [--json PATH]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

for _var in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "KEDRO_DISABLE_TELEMETRY", "DO_NOT_TRACK"):
    os.environ.setdefault(_var, "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import torch  # noqa: E402
from bench_common import row, write_headline  # noqa: E402

from relearn_pipeline.generation import generate_texts  # noqa: E402
from relearn_pipeline.models import load_model  # noqa: E402
from relearn_pipeline.prompting import question_prompt  # noqa: E402

DEMO = Path(__file__).resolve().parents[1] / "data" / "01_raw" / "demo"


def demo_questions(limit: int) -> list[str]:
    """The demo's held-out evaluation questions, forget first."""
    questions = []
    for name in ("forget_eval.json", "retain_eval.json"):
        questions += [record["question"] for record in json.loads((DEMO / name).read_text(encoding="utf-8"))]
    return questions[:limit]


def timed(
    bundle, prompts: list[str], batch_size: int, max_new_tokens: int, continuous: bool = True
) -> tuple[float, int, list[str]]:
    """Seconds, generated tokens and answers for one mode."""
    started = time.perf_counter()
    answers = generate_texts(
        bundle, prompts, max_new_tokens=max_new_tokens, batch_size=batch_size, progress=False, continuous=continuous
    )
    seconds = time.perf_counter() - started
    texts = [a[0] for a in answers]
    tokens = sum(len(bundle.tokenizer(t, add_special_tokens=False)["input_ids"]) for t in texts)
    return seconds, tokens, texts


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="embedded:smollm2-135m-instruct")
    parser.add_argument("--questions", type=int, default=48)
    parser.add_argument("--max-new-tokens", type=int, default=64)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--threads", type=int, default=min(2, os.cpu_count() or 1))
    parser.add_argument("--json", help="also write the headline figures here, for run_all.py")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)

    bundle = load_model(args.model, dtype="float32", device="auto")
    prompts = [question_prompt(bundle.tokenizer, q) for q in demo_questions(args.questions)]
    timed(bundle, prompts[:2], 2, 4)  # warm-up: first-call allocations are not part of either figure

    one_s, one_tokens, one_texts = timed(bundle, prompts, 1, args.max_new_tokens)
    batch_s, batch_tokens, batch_texts = timed(bundle, prompts, args.batch_size, args.max_new_tokens)
    fixed_s, fixed_tokens, fixed_texts = timed(bundle, prompts, args.batch_size, args.max_new_tokens, continuous=False)
    same = sum(a == b for a, b in zip(one_texts, batch_texts, strict=True))
    same_fixed = sum(a == b for a, b in zip(one_texts, fixed_texts, strict=True))
    speedup = one_s / batch_s

    print(f"\nEvaluation generation, {len(prompts)} demo questions, {args.model} on {bundle.device}, "
          f"greedy, max_new_tokens={args.max_new_tokens}, {args.threads} threads")
    print(f"{'mode':<22}{'seconds':>10}{'questions/s':>14}{'tokens/s':>12}{'tokens':>9}")
    batched, one, fixed = f"batched ({args.batch_size})", "one at a time", f"fixed batches ({args.batch_size})"
    for mode, seconds, tokens in ((one, one_s, one_tokens), (batched, batch_s, batch_tokens), (fixed, fixed_s, fixed_tokens)):
        print(f"{mode:<22}{seconds:>10.1f}{len(prompts) / seconds:>14.2f}{tokens / seconds:>12.1f}{tokens:>9}")
    print(f"speed-up: {speedup:.1f}x (goal >= 4x: {'met' if speedup >= 4 else 'NOT met'}), "
          f"{fixed_s / batch_s:.1f}x fixed batches; answers identical to one at a time: "
          f"batched {same}/{len(prompts)}, fixed batches {same_fixed}/{len(prompts)}")
    write_headline(args.json, "evaluate", (
        f"{len(prompts)} demo evaluation questions, greedy, max_new_tokens={args.max_new_tokens}, {args.model} on "
        f"{bundle.device}, {args.threads} threads; answers identical to one at a time: batched {same}/{len(prompts)}, "
        f"fixed batches {same_fixed}/{len(prompts)}"
    ), [
        row(f"evaluation generation questions/s: batched ({args.batch_size}) vs one question at a time",
            (batched, len(prompts) / batch_s), (one, len(prompts) / one_s), "questions/s"),
        row(f"evaluation generation tokens/s: batched ({args.batch_size}) vs one question at a time",
            (batched, batch_tokens / batch_s), (one, one_tokens / one_s), "tokens/s"),
        row(f"evaluation generation questions/s: continuous batching vs fixed batches through model.generate ({args.batch_size})",
            (batched, len(prompts) / batch_s), (fixed, len(prompts) / fixed_s), "questions/s"),
    ])
    return 0


if __name__ == "__main__":
    sys.exit(main())
