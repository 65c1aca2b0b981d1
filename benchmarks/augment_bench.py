"""Augmentation throughput of the transformers backend, batched vs one prompt at a time, and the
verified yield per variant type from the last verify run.

    python benchmarks/augment_bench.py [--records 4] [--batch-size 16] [--max-new-tokens 32]

Same prompts both ways (the question-variant and vague-answer prompts of the first demo forget
records), no cache. By default the requests are what `augment` really sends: the answer sampling
settings and candidate count of conf/base/parameters_augment.yml, seeded; `--greedy` measures one
greedy candidate per prompt instead.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import yaml  # noqa: E402

from relearn_pipeline.llm import GenerationRequest, SamplingParams, load_prompt_templates  # noqa: E402
from relearn_pipeline.llm.transformers_backend import TransformersBackend  # noqa: E402
from relearn_pipeline.models import load_model  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def prompts(records: int, max_new_tokens: int, greedy: bool) -> list[GenerationRequest]:
    files = {p.stem: yaml.safe_load(p.read_text()) for p in (ROOT / "conf/base/prompts").glob("*.yml")}
    templates = load_prompt_templates(files)
    forget = json.loads((ROOT / "data/01_raw/demo/forget.json").read_text())[:records]
    answer = yaml.safe_load((ROOT / "conf/base/parameters_augment.yml").read_text())["augment"]["answer"]
    if greedy:
        sampling, n = SamplingParams(temperature=0.0, max_new_tokens=max_new_tokens), 1
    else:
        settings = {**answer["sampling"], "max_new_tokens": max_new_tokens}
        sampling, n = SamplingParams(**settings, seed=42), answer["candidates"]
    requests = []
    for r in forget:
        for name in ("question_rephrase", "question_specific", "question_noisy", "question_reverse"):
            requests.append(GenerationRequest.chat(templates[name].render(subject=r["subject"], question=r["question"]), sampling, n=n))
        requests.append(GenerationRequest.chat(templates["answer_vague"].render(
            subject=r["subject"], question=r["question"], original_question=r["question"],
            original_answer=r["answer"], sensitive_details=""), sampling, n=n))
    return requests


def measure(backend: TransformersBackend, requests: list[GenerationRequest]) -> tuple[float, int]:
    backend.generated_tokens = 0
    started = time.perf_counter()
    backend.generate(requests)
    return time.perf_counter() - started, backend.generated_tokens


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=4)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--max-new-tokens", type=int, default=32)
    parser.add_argument("--model", default="embedded:smollm2-135m-instruct")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--greedy", action="store_true", help="one greedy candidate per prompt")
    args = parser.parse_args()
    bundle = load_model(args.model, device=args.device)
    requests = prompts(args.records, args.max_new_tokens, args.greedy)
    rows = []
    for label, batch_size in (("one at a time", 1), (f"batched ({args.batch_size})", args.batch_size)):
        seconds, tokens = measure(TransformersBackend(bundle, batch_size=batch_size), requests)
        rows.append((label, len(requests), seconds, len(requests) / seconds, tokens / seconds))
    decoding = "greedy, 1 candidate" if args.greedy else f"sampled, {requests[0].n} candidates per prompt"
    print(f"\nmodel {args.model} on {args.device}, {len(requests)} prompts, {args.max_new_tokens} new tokens max, {decoding}")
    print(f"{'mode':<16} {'prompts':>8} {'seconds':>9} {'prompts/s':>10} {'tokens/s':>9}")
    for label, count, seconds, pps, tps in rows:
        print(f"{label:<16} {count:>8} {seconds:>9.1f} {pps:>10.2f} {tps:>9.1f}")
    print(f"speed-up (prompts/s): {rows[1][3] / rows[0][3]:.1f}x  (goal >= 4x)")
    report_path = ROOT / "data/08_reporting/verification_report.json"
    if report_path.exists():
        report = json.loads(report_path.read_text())
        print(f"\nverified yield per variant type (from {report_path.relative_to(ROOT)})")
        print(f"{'variant':<10} {'items':>6} {'verified':>9} {'fallback':>9} {'yield':>7}")
        for variant, d in report["per_variant"].items():
            print(f"{variant:<10} {d['items']:>6} {d['verified']:>9} {d['fallback']:>9} {d['verified_yield'] or 0:>7.2f}")
        print(f"LLM calls per verified pair: {report['llm_calls']['per_verified_pair']}")
    else:
        print("\nno verification report yet: run `kedro run --pipeline augment` then `--pipeline verify`")


if __name__ == "__main__":
    main()
