"""Augmentation throughput of the transformers backend, batched vs one prompt at a time, and the
verified yield per variant type from the last verify run.

    python benchmarks/augment_bench.py [--batch-size 16 48] [--prompts 96] [--max-new-tokens 32] [--json PATH]

Three ways on the same prompts: one prompt at a time; continuous batching (the backend's default:
each prompt prefilled once for its candidates, ended rows leave, waiting prompts join); and fixed
batches through `model.generate` (`continuous_batching: false`), the way before it.

Same prompts every way (the question-variant and vague-answer prompts of the demo forget records,
in order), no cache. By default the requests are what `augment` really sends: the answer sampling
settings and candidate count of conf/base/parameters_augment.yml, seeded, in batches of the
configured `augment.llm.transformers.batch_size`; `--batch-size 16 48` measures each size against
the same one-at-a-time baseline, `--greedy` one greedy candidate per prompt instead. The default
prompt count fills the largest batch twice.
"""

from __future__ import annotations

import argparse
import json
import os
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import yaml  # noqa: E402
from bench_common import ROOT, row, write_headline  # noqa: E402

from relearn_pipeline.llm import GenerationRequest, SamplingParams, load_prompt_templates  # noqa: E402
from relearn_pipeline.llm.transformers_backend import TransformersBackend  # noqa: E402
from relearn_pipeline.models import load_model  # noqa: E402

AUGMENT = yaml.safe_load((ROOT / "conf/base/parameters_augment.yml").read_text())["augment"]
PROMPTS_PER_RECORD = 5  # four question variants and one vague answer
# Where the demo's and the KnowUnDo benchmark's verify runs write their reports.
REPORTS = ["data/08_reporting/verification_report.json", "data/bench_privacy/08_reporting/verification_report.json"]


def prompts(count: int, max_new_tokens: int, greedy: bool) -> list[GenerationRequest]:
    """The first ``count`` augment prompts of the demo forget records."""
    files = {p.stem: yaml.safe_load(p.read_text()) for p in (ROOT / "conf/base/prompts").glob("*.yml")}
    templates = load_prompt_templates(files)
    forget = json.loads((ROOT / "data/01_raw/demo/forget.json").read_text())
    if count > PROMPTS_PER_RECORD * len(forget):
        raise SystemExit(f"--prompts {count}: the demo forget set gives at most {PROMPTS_PER_RECORD * len(forget)}")
    forget = forget[: -(-count // PROMPTS_PER_RECORD)]
    answer = AUGMENT["answer"]
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
    return requests[:count]


def measure(backend: TransformersBackend, requests: list[GenerationRequest]) -> tuple[float, int]:
    backend.generated_tokens = 0
    started = time.perf_counter()
    backend.generate(requests)
    return time.perf_counter() - started, backend.generated_tokens


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    configured = AUGMENT["llm"]["transformers"]["batch_size"]
    parser.add_argument("--batch-size", type=int, nargs="+", default=[configured],
                        help=f"prompts per batch, one or more sizes (default: the configured {configured})")
    parser.add_argument("--prompts", type=int, help="prompts measured (default: twice the largest batch)")
    parser.add_argument("--max-new-tokens", type=int, default=32)
    parser.add_argument("--model", default="embedded:smollm2-135m-instruct")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--greedy", action="store_true", help="one greedy candidate per prompt")
    parser.add_argument("--json", help="also write the headline figures here, for run_all.py")
    parser.add_argument("--report", nargs="+", default=REPORTS,
                        help="verification_report.json of a verify run, for the yield per variant (first found)")
    args = parser.parse_args()
    bundle = load_model(args.model, device=args.device)
    requests = prompts(args.prompts or 2 * max(args.batch_size), args.max_new_tokens, args.greedy)
    modes = [("one at a time", 1, True)]
    for b in args.batch_size:
        modes += [(f"batched ({b})", b, True), (f"fixed batches ({b})", b, False)]
    rows = []
    for label, batch_size, continuous in modes:
        seconds, tokens = measure(TransformersBackend(bundle, batch_size=batch_size, continuous=continuous), requests)
        rows.append((label, len(requests), seconds, len(requests) / seconds, tokens / seconds))
    decoding = "greedy, 1 candidate" if args.greedy else f"sampled, {requests[0].n} candidates per prompt"
    settings = f"{len(requests)} demo augment prompts, {decoding}, {args.max_new_tokens} new tokens max, {args.model} on {args.device}"
    print(f"\n{settings}")
    print(f"{'mode':<20} {'prompts':>8} {'seconds':>9} {'prompts/s':>10} {'tokens/s':>9}")
    for label, count, seconds, pps, tps in rows:
        print(f"{label:<20} {count:>8} {seconds:>9.1f} {pps:>10.2f} {tps:>9.1f}")
    (_, _, _, one_pps, one_tps), headline = rows[0], []
    for index, batch_size in enumerate(args.batch_size):
        (label, _, _, pps, tps), (fixed, _, _, fixed_pps, _) = rows[1 + 2 * index], rows[2 + 2 * index]
        print(f"batch {batch_size}: {pps / one_pps:.1f}x one at a time (goal >= 4x), "
              f"{pps / fixed_pps:.1f}x fixed batches (prompts/s)")
        headline += [
            row(f"augmentation prompts/s: batched ({batch_size} prompts) vs one prompt at a time",
                (label, pps), ("one at a time", one_pps), "prompts/s"),
            row(f"augmentation tokens/s: batched ({batch_size} prompts) vs one prompt at a time",
                (label, tps), ("one at a time", one_tps), "tokens/s"),
            row(f"augmentation prompts/s: continuous batching vs fixed batches through model.generate ({batch_size} prompts)",
                (label, pps), (fixed, fixed_pps), "prompts/s"),
        ]
    write_headline(args.json, "augment", settings, headline)
    report_path = next((ROOT / p for p in args.report if (ROOT / p).exists()), None)
    if report_path:
        report = json.loads(report_path.read_text())
        print(f"\nverified yield per variant type (from {report_path})")
        print(f"{'variant':<10} {'items':>6} {'verified':>9} {'fallback':>9} {'yield':>7}")
        for variant, d in report["per_variant"].items():
            print(f"{variant:<10} {d['items']:>6} {d['verified']:>9} {d['fallback']:>9} {d['verified_yield'] or 0:>7.2f}")
        print(f"LLM calls per verified pair: {report['llm_calls']['per_verified_pair']}")
    else:
        print(f"\nno verification report in {', '.join(args.report)}: run `kedro run --pipelines augment,verify` first")


if __name__ == "__main__":
    main()
