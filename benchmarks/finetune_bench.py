"""ReLearn fine-tuning cost: this implementation vs the approach of the paper's official code.

Same model (SmolLM2-135M-Instruct by default), same demo data, same method (relearn_klr_gdr: CE on
the augmented forget set + CE on retain + KL to the target on retain), same LoRA, same batch size,
same number of optimizer steps. The two differ only in how the work is done:

  relearn-pipeline  dynamic padding per batch, forget+retain in one forward, the reference is the
                    same network with the adapter disabled, KL on real answer tokens only;
  official-style    every sequence padded to 512 tokens, a second full copy of the model as the
                    reference, KL over every position (prompt and padding included).

Each side runs in its own process so peak memory is its own (CUDA: max allocated; CPU: peak RSS,
shown in full and above the RSS right after loading the model). Achieved FLOP/s (all positions the
hardware computed, padding included) is shown as a share of a dense matmul peak measured here.

    python benchmarks/finetune_bench.py                      # 4 steps, batch 2, 1 thread, SmolLM2-135M
    python benchmarks/finetune_bench.py --steps 8 --batch-size 4 --threads 8   # a dedicated machine
    python benchmarks/finetune_bench.py --json figures.json  # also write the headline figures (run_all.py)

On a shared CPU, timings are noisy: compare the two columns of one run, not runs with each other.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import pandas as pd  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from bench_common import row, write_headline  # noqa: E402

PROJECT = Path(__file__).resolve().parents[1]
DEMO = PROJECT / "data" / "01_raw" / "demo"
AUGMENTED = PROJECT / "data" / "05_model_input" / "augmented_forget_set.parquet"
IMPLEMENTATIONS = ("relearn-pipeline", "official-style")
OFFICIAL_MAX_LENGTH = 512


# ---------------------------------------------------------------- data


def load_data() -> tuple[pd.DataFrame, pd.DataFrame, str]:
    """(augmented forget set, retain set, where the augmented set came from)."""
    retain = pd.read_json(DEMO / "retain.json")
    if AUGMENTED.is_file():
        return pd.read_parquet(AUGMENTED), retain, str(AUGMENTED.relative_to(PROJECT))
    forget = pd.read_json(DEMO / "forget.json")
    return synthesize_augmented(forget), retain, "synthesized from data/01_raw/demo/forget.json"


def synthesize_augmented(forget: pd.DataFrame) -> pd.DataFrame:
    """ReLearn-like variants (rephrased questions, vague answers) of each forget record."""
    rows = []
    templates = [
        ("{q}", "{s} prefers to keep that detail private, and it is not something I can share."),
        ("Could you tell me: {q}", "I do not have reliable information about that aspect of {s}'s life."),
        ("I was wondering, {q}", "That is a personal matter for {s}; details like this are not public."),
        ("Quick question. {q}", "There is no verified public record of this about {s}, so I cannot say."),
        ("Do you know {q}", "{s} has not shared this publicly, and I would rather not guess."),
    ]
    for record in forget.itertuples(index=False):
        for index, (question, answer) in enumerate(templates):
            rows.append(
                {
                    "id": f"{record.id}-v{index}",
                    "source_id": record.id,
                    "subject": record.subject,
                    "question": question.format(q=record.question),
                    "answer": answer.format(s=record.subject),
                }
            )
    return pd.DataFrame(rows)


# ---------------------------------------------------------------- cost model


def flops_per_position(model, sequence_length: float) -> float:
    """Forward FLOPs per position: 2 x every linear weight (lm_head included) + causal attention."""
    linear = sum(m.weight.numel() for m in model.modules() if isinstance(m, torch.nn.Linear))
    config = model.config
    attention = 2 * config.num_hidden_layers * config.hidden_size * sequence_length  # QK^T and AV, causal
    return 2 * linear + attention


def current_rss_mb() -> float:
    with open("/proc/self/statm") as stream:
        return int(stream.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def matmul_peak_flops(device: torch.device, size: int = 2048, repeats: int = 5) -> float:
    """Best observed dense fp32 matmul throughput (FLOP/s) on ``device``."""
    a = torch.randn(size, size, device=device)
    b = torch.randn(size, size, device=device)
    torch.matmul(a, b)
    best = float("inf")
    for _ in range(repeats):
        if device.type == "cuda":
            torch.cuda.synchronize()
        started = time.perf_counter()
        torch.matmul(a, b)
        if device.type == "cuda":
            torch.cuda.synchronize()
        best = min(best, time.perf_counter() - started)
    return 2 * size**3 / best


# ---------------------------------------------------------------- the two implementations


def run_ours(bundle, augmented, retain, options, workdir) -> dict:
    from relearn_pipeline.unlearning.config import finetune_config
    from relearn_pipeline.unlearning.training import train_unlearning

    config = finetune_config(
        {
            "method": "relearn_klr_gdr",
            "max_steps": options.steps,
            "batch_size": options.batch_size,
            "learning_rate": 1e-4,
            "max_length": OFFICIAL_MAX_LENGTH,
            "save_steps": 10**6,
            "checkpoint_dir": str(workdir / "checkpoints"),
            "progress_bar": False,
        },
        seed=0,
    )
    summary = train_unlearning(bundle, augmented, None, retain, config).summary
    mean_length = summary["trained_positions"] / (2 * options.steps * options.batch_size)
    per_position = flops_per_position(bundle.model, mean_length)
    flops = per_position * (2 * summary["trained_positions"] + summary["reference_positions"])
    return {
        "train_time_s": summary["train_time_s"],
        "real_tokens": summary["trained_tokens"],
        "computed_positions": summary["trained_positions"] + summary["reference_positions"],
        "flops": flops,
    }


def run_official_style(bundle, augmented, retain, options, workdir) -> dict:
    """The official code's approach: pad to 512, a second full model as reference, KL everywhere."""
    from relearn_pipeline.prompting import IGNORE_INDEX, encode_qa
    from relearn_pipeline.params import Lora
    from relearn_pipeline.unlearning.training import attach_lora

    torch.manual_seed(0)
    tokenizer, device = bundle.tokenizer, bundle.device
    reference = copy.deepcopy(bundle.model).eval().requires_grad_(False)  # the second copy
    model = attach_lora(bundle.model, Lora())
    model.train()
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4)

    def padded(frame):
        rows = []
        for record in frame.itertuples(index=False):
            feature = encode_qa(tokenizer, record.question, record.answer, max_length=OFFICIAL_MAX_LENGTH)
            missing = OFFICIAL_MAX_LENGTH - len(feature["input_ids"])
            rows.append(
                (
                    feature["input_ids"] + [tokenizer.pad_token_id] * missing,
                    feature["attention_mask"] + [0] * missing,
                    feature["labels"] + [IGNORE_INDEX] * missing,
                )
            )
        return [torch.tensor(column, device=device) for column in zip(*rows)]

    forget_ids, forget_mask, forget_labels = padded(augmented)
    retain_ids, retain_mask, retain_labels = padded(retain)
    generator = torch.Generator().manual_seed(0)
    forget_order = torch.randperm(len(forget_ids), generator=generator)
    retain_order = torch.randperm(len(retain_ids), generator=generator)
    real_tokens = 0
    started = time.perf_counter()
    for step in range(options.steps):
        rows = [step * options.batch_size + i for i in range(options.batch_size)]
        f = forget_order[[row % len(forget_ids) for row in rows]]
        r = retain_order[[row % len(retain_ids) for row in rows]]
        forget_loss = model(input_ids=forget_ids[f], attention_mask=forget_mask[f], labels=forget_labels[f]).loss
        retain_out = model(input_ids=retain_ids[r], attention_mask=retain_mask[r], labels=retain_labels[r])
        with torch.no_grad():
            reference_logits = reference(input_ids=retain_ids[r], attention_mask=retain_mask[r]).logits
        kl = F.kl_div(
            F.log_softmax(retain_out.logits, dim=-1),
            F.softmax(reference_logits, dim=-1),
            reduction="batchmean",
        )
        loss = forget_loss + retain_out.loss + kl
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        real_tokens += int(forget_mask[f].sum() + retain_mask[r].sum())
    if device.type == "cuda":
        torch.cuda.synchronize()
    elapsed = time.perf_counter() - started
    positions = options.steps * options.batch_size * OFFICIAL_MAX_LENGTH
    per_position = flops_per_position(bundle.model, OFFICIAL_MAX_LENGTH)
    return {
        "train_time_s": round(elapsed, 3),
        "real_tokens": real_tokens,
        "computed_positions": 3 * positions,
        "flops": per_position * (2 * 2 * positions + positions),  # fwd+bwd on forget and retain, ref fwd
    }


def worker(options) -> None:
    from relearn_pipeline.models import load_model

    torch.set_num_threads(options.threads)
    bundle = load_model(options.model, dtype="float32", device=options.device)
    augmented, retain, source = load_data()
    loaded_rss = current_rss_mb()
    if bundle.device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    with tempfile.TemporaryDirectory() as workdir:
        run = run_ours if options.impl == "relearn-pipeline" else run_official_style
        result = run(bundle, augmented, retain, options, Path(workdir))
    if bundle.device.type == "cuda":
        result["peak_memory_mb"] = torch.cuda.max_memory_allocated() / 2**20
        result["memory_kind"] = "CUDA max allocated"
    else:
        result["peak_memory_mb"] = peak_rss_mb()
        result["peak_above_loaded_mb"] = peak_rss_mb() - loaded_rss
        result["memory_kind"] = "CPU peak RSS"
    result.update(device=str(bundle.device), data=source, forget_rows=len(augmented), retain_rows=len(retain))
    Path(options.out).write_text(json.dumps(result))


# ---------------------------------------------------------------- driver


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="embedded:smollm2-135m-instruct")
    parser.add_argument("--steps", type=int, default=4, help="optimizer steps for each implementation")
    parser.add_argument("--batch-size", type=int, default=2, help="forget (and retain) examples per step")
    # One thread by default: on a shared, oversubscribed CPU more threads make small ops wait on
    # each other (measured here: 2 threads ran this implementation 10x slower than 1).
    parser.add_argument("--threads", type=int, default=1, help="torch threads per side (default 1)")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--json", help="also write the headline figures here, for run_all.py")
    parser.add_argument("--impl", choices=IMPLEMENTATIONS, help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    options = parser.parse_args(argv)
    if options.impl:
        worker(options)
        return 0

    results = {}
    for impl in IMPLEMENTATIONS:
        with tempfile.NamedTemporaryFile(suffix=".json") as out:
            command = [sys.executable, __file__, "--impl", impl, "--out", out.name, "--model", options.model,
                       "--steps", str(options.steps), "--batch-size", str(options.batch_size),
                       "--threads", str(options.threads), "--device", options.device]
            print(f"running {impl} ...", flush=True)
            subprocess.run(command, check=True, cwd=PROJECT)
            results[impl] = json.loads(Path(out.name).read_text())
    torch.set_num_threads(options.threads)
    device = torch.device(results[IMPLEMENTATIONS[0]]["device"])
    peak = matmul_peak_flops(device)
    for r in results.values():
        r["tokens_per_s"] = r["real_tokens"] / r["train_time_s"]
        r["flops_per_s"] = r["flops"] / r["train_time_s"]
        r["share_of_peak"] = r["flops_per_s"] / peak
    print_table(results, peak, options)
    write_headline(options.json, "finetune", settings(results, peak, options), headline(results))
    return 0


def headline(results: dict) -> list[dict]:
    """Tokens/s, peak memory and share of the matmul peak, this implementation vs official-style."""
    kind = results["relearn-pipeline"]["memory_kind"]
    measures = (
        ("tokens_per_s", "training tokens/s (real tokens)", "tokens/s"),
        ("peak_memory_mb", f"peak memory ({kind})", "MiB"),
        ("share_of_peak", "achieved FLOP/s as a share of the dense matmul peak measured here", "%"),
    )
    return [
        row(f"fine-tune {what}: this project vs the official code's approach",
            *((impl, results[impl][key]) for impl in IMPLEMENTATIONS), unit)
        for key, what, unit in measures
    ]


def settings(results: dict, peak: float, options) -> str:
    ours = results["relearn-pipeline"]
    return (f"relearn_klr_gdr, {options.model}, {options.steps} steps of batch {options.batch_size}, "
            f"{ours['device']}, {options.threads} thread(s); matmul peak {peak / 1e9:.1f} GFLOP/s; data: {ours['data']}")


def print_table(results: dict, peak: float, options) -> None:
    ours, theirs = results["relearn-pipeline"], results["official-style"]
    rows = [
        ("optimizer steps", options.steps, options.steps, "{}"),
        ("train time (s)", ours["train_time_s"], theirs["train_time_s"], "{:.1f}"),
        ("real tokens trained", ours["real_tokens"], theirs["real_tokens"], "{}"),
        ("positions computed (incl. padding, reference)", ours["computed_positions"],
         theirs["computed_positions"], "{}"),
        ("training tokens/s (real tokens)", ours["tokens_per_s"], theirs["tokens_per_s"], "{:.1f}"),
        (f"peak memory (MB, {ours['memory_kind']})", ours["peak_memory_mb"], theirs["peak_memory_mb"], "{:.0f}"),
    ]
    if "peak_above_loaded_mb" in ours:
        rows.append(("  of which above the loaded model (MB)", ours["peak_above_loaded_mb"],
                     theirs["peak_above_loaded_mb"], "{:.0f}"))
    rows += [
        ("achieved GFLOP/s", ours["flops_per_s"] / 1e9, theirs["flops_per_s"] / 1e9, "{:.1f}"),
        ("share of matmul peak", ours["share_of_peak"], theirs["share_of_peak"], "{:.1%}"),
    ]
    print(f"\nReLearn fine-tune (relearn_klr_gdr), {options.model}, batch {options.batch_size}, "
          f"{ours['device']}, {options.threads} threads; data: {ours['data']} "
          f"({ours['forget_rows']} forget, {ours['retain_rows']} retain rows)")
    print(f"dense fp32 matmul peak measured here: {peak / 1e9:.1f} GFLOP/s\n")
    width = max(len(r[0]) for r in rows) + 2
    print(f"{'':<{width}}{'relearn-pipeline':>18}{'official-style':>18}{'ratio':>10}")
    for name, a, b, fmt in rows:
        ratio = f"{a / b:.2f}x" if isinstance(a, (int, float)) and b else ""
        print(f"{name:<{width}}{fmt.format(a):>18}{fmt.format(b):>18}{ratio:>10}")
    speedup = theirs["train_time_s"] / ours["train_time_s"]
    memory = ours["peak_memory_mb"] / theirs["peak_memory_mb"]
    print(f"\nspeed-up per epoch (same steps, same data): {speedup:.1f}x (goal >= 3x) "
          f"{'OK' if speedup >= 3 else 'MISSED'}")
    print(f"peak memory ratio: {memory:.2f}x (goal <= 0.7x) {'OK' if memory <= 0.7 else 'MISSED'}")
    print("note: FLOP counts are estimates (2 x linear weights + causal attention per position, x2 for the "
          "backward through frozen weights); timings on a shared CPU are noisy.")


if __name__ == "__main__":
    sys.exit(main())
