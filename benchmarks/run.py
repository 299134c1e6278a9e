"""hf-lottery benchmarks: every figure is a ratio of two measurements taken side by side in one run.

    python benchmarks/run.py            # the packaged MiniLM at batch 32 x seq 128 (several minutes on 2 cores)
    python benchmarks/run.py --quick    # a tiny random BERT, under 2 minutes

Times are medians over interleaved repeats (A, B, A, B, ...) after warm-up; peak memory comes from separate
subprocesses (a process's peak only grows). Prints a Markdown table, writes benchmarks/results.json, and exits
non-zero when a figure cannot be measured.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path


sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

from benchmarks.flops import encoder_flops  # noqa: E402
from benchmarks.workloads import (  # noqa: E402
    Workload,
    make_workload,
    plain_forward_backward,
    ticket_for,
    training_step,
)


HERE = Path(__file__).resolve().parent


def interleaved(variants: dict[str, Callable[[], object]], repeats: int, warmup: int = 1) -> dict[str, float]:
    """Median wall time of each variant, run in turns so drifts of a shared machine hit all of them alike.

    The order alternates between rounds (A B, B A, ...) so no variant always runs right after the other.
    """
    for _ in range(warmup):
        for fn in variants.values():
            fn()
    times: dict[str, list[float]] = {name: [] for name in variants}
    order = list(variants.items())
    for round_ in range(repeats):
        for name, fn in order if round_ % 2 == 0 else order[::-1]:
            start = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - start)
    return {name: statistics.median(values) for name, values in times.items()}


def bench_importance(w: Workload, repeats: int) -> dict[str, float]:
    from hf_lottery import compute_importance

    t = interleaved(
        {
            "importance": lambda: compute_importance(w.model, w.batches, progress=False),
            "forward_backward": lambda: plain_forward_backward(w.model, w.batches),
        },
        repeats,
    )
    return {"ratio": t["importance"] / t["forward_backward"], **{f"{k}_s": v for k, v in t.items()}}


def bench_training_step(w: Workload, repeats: int) -> dict[str, float]:
    from hf_lottery import apply_ticket

    ticket = ticket_for(w.model, heads=0.5, mlps=0.5, weights=0.5)
    gated = w.fresh_model()
    handle = apply_ticket(gated, ticket)
    plain = w.fresh_model()
    opt_gated = torch.optim.AdamW(gated.parameters(), lr=1e-5)
    opt_plain = torch.optim.AdamW(plain.parameters(), lr=1e-5)
    batch = w.batches[0]

    def with_ticket():
        training_step(gated, opt_gated, batch)
        handle.enforce_weight_masks()

    t = interleaved(
        {"with_ticket": with_ticket, "without": lambda: training_step(plain, opt_plain, batch)}, repeats * 3
    )
    return {"ratio": t["with_ticket"] / t["without"], **{f"{k}_s": v for k, v in t.items()}}


def bench_search(w: Workload, repeats: int, max_steps: int) -> dict[str, float]:
    from hf_lottery import find_structured_ticket

    tickets = {}

    def run(passes: int):
        def go():
            tickets[passes] = find_structured_ticket(
                w.model, w.batches, w.metric, passes_per_step=passes, max_steps=max_steps, on_degenerate="ignore",
                progress=False,
            )  # fmt: skip

        return go

    t = interleaved({"one_pass": run(1), "paper_two_pass": run(2)}, repeats, warmup=0)
    identical = tickets[1].masks_equal(tickets[2]) and [h["metric"] for h in tickets[1].history] == [
        h["metric"] for h in tickets[2].history
    ]
    if not identical:
        raise RuntimeError("The one-pass and the two-pass searches found different tickets.")
    return {
        "speedup": t["paper_two_pass"] / t["one_pass"],
        "identical_ticket": identical,
        "steps": len(tickets[1].history) - 1,
        **{f"{k}_s": v for k, v in t.items()},
    }


def bench_compaction(w: Workload, repeats: int) -> list[dict[str, float]]:
    from hf_lottery import apply_ticket
    from hf_lottery.compaction import compact_model

    rows = []
    batch = {k: v for k, v in w.batches[0].items() if k != "labels"}
    for keep in (0.75, 0.5, 0.25):
        ticket = ticket_for(w.model, heads=keep, mlps=keep, weights=None)
        dense = w.fresh_model()
        compact = compact_model(w.fresh_model(), ticket)
        gated = w.fresh_model()
        apply_ticket(gated, ticket)
        with torch.no_grad():
            t = interleaved(
                {"dense": lambda d=dense: d(**batch), "compact": lambda c=compact: c(**batch)}, repeats * 3
            )
            error = float((gated(**batch).logits - compact(**batch).logits).abs().max())
        if error > 1e-4:
            raise RuntimeError(f"The compact model disagrees with the gated one (max |logit error| {error:.2e}).")
        seq = batch["input_ids"].shape[1]
        predicted = encoder_flops(dense, seq) / encoder_flops(compact, seq)
        measured = t["dense"] / t["compact"]
        rows.append(
            {
                "kept": keep,
                "measured_speedup": measured,
                "predicted_speedup": predicted,
                "efficiency": measured / predicted,
                "max_abs_logit_error": error,
                **{f"{k}_s": v for k, v in t.items()},
            }
        )
    return rows


def bench_memory(quick: bool) -> dict[str, float]:
    """Peak RSS of the importance pass vs a plain forward+backward, each in its own subprocess."""
    peaks = {}
    for mode in ("importance", "forward_backward"):
        out = subprocess.run(
            [sys.executable, str(HERE / "memory_probe.py"), mode] + (["--quick"] if quick else []),
            capture_output=True, text=True, check=True, env=dict(os.environ, OMP_NUM_THREADS=str(torch.get_num_threads())),
        )  # fmt: skip
        peaks[mode] = json.loads(out.stdout.strip().splitlines()[-1])
    increase = {m: p["peak_mb"] - p["baseline_mb"] for m, p in peaks.items()}
    if increase["forward_backward"] <= 0:
        raise RuntimeError("The forward+backward pass showed no memory increase: peak memory was not measured.")
    return {
        # memory the pass itself needs (peak minus the process's resident size before it), the fair comparison
        "ratio": increase["importance"] / increase["forward_backward"],
        "total_peak_ratio": peaks["importance"]["peak_mb"] / peaks["forward_backward"]["peak_mb"],
        "importance_increase_mb": increase["importance"],
        "forward_backward_increase_mb": increase["forward_backward"],
        "importance_peak_mb": peaks["importance"]["peak_mb"],
        "forward_backward_peak_mb": peaks["forward_backward"]["peak_mb"],
    }


TARGETS = {
    "importance pass / plain forward+backward": ("<=", 1.10),
    "training step with ticket / without": ("<=", 1.05),
    "search speedup, one pass vs the paper's two": (">=", 1.6),
    "peak memory, importance pass / forward+backward": ("<=", 1.10),
}


def table(results: dict) -> str:
    lines = ["| figure | measured | target | met |", "|---|---|---|---|"]

    def row(name: str, value: float, target: tuple[str, float] | None):
        met = (
            ""
            if target is None
            else ("yes" if (value <= target[1] if target[0] == "<=" else value >= target[1]) else "NO")
        )
        goal = "" if target is None else f"{target[0]} {target[1]}"
        lines.append(f"| {name} | {value:.3f} | {goal} | {met} |")

    row(
        "importance pass / plain forward+backward",
        results["importance"]["ratio"],
        TARGETS["importance pass / plain forward+backward"],
    )
    row(
        "training step with ticket / without",
        results["training_step"]["ratio"],
        TARGETS["training step with ticket / without"],
    )
    row(
        "search speedup, one pass vs the paper's two",
        results["search"]["speedup"],
        TARGETS["search speedup, one pass vs the paper's two"],
    )
    for r in results["compaction"]:
        row(f"compact speedup at {r['kept']:.0%} heads+MLPs kept (predicted {r['predicted_speedup']:.2f}x)",
            r["measured_speedup"], None)  # fmt: skip
        row(f"  measured / predicted at {r['kept']:.0%}", r["efficiency"], (">=", 0.8))
        lines.append(f"|   max abs logit difference, compact vs gated | {r['max_abs_logit_error']:.1e} | <= 1e-5 | "
                     f"{'yes' if r['max_abs_logit_error'] <= 1e-5 else 'NO'} |")  # fmt: skip
    row(
        "peak memory, importance pass / forward+backward",
        results["memory"]["ratio"],
        TARGETS["peak memory, importance pass / forward+backward"],
    )
    row("  (whole-process peak RSS ratio)", results["memory"]["total_peak_ratio"], None)
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="tiny random BERT instead of the packaged MiniLM")
    parser.add_argument("--repeats", type=int, default=None, help="interleaved repeats per figure")
    parser.add_argument("--output", default=str(HERE / "results.json"))
    args = parser.parse_args(argv)
    torch.manual_seed(0)
    w = make_workload(args.quick)
    repeats = args.repeats or (3 if args.quick else 5)
    started = time.perf_counter()
    results = {
        "machine": {
            "platform": platform.platform(),
            "processor": platform.processor(),
            "cpus": os.cpu_count(),
            "torch_threads": torch.get_num_threads(),
            "torch": torch.__version__,
            "python": platform.python_version(),
        },  # fmt: skip
        "workload": w.describe(),
        "importance": bench_importance(w, repeats),
        "training_step": bench_training_step(w, repeats),
        "search": bench_search(w, max(2, repeats // 2), max_steps=4 if args.quick else 3),
        "compaction": bench_compaction(w, repeats),
        "memory": bench_memory(args.quick),
    }
    results["wall_time_s"] = time.perf_counter() - started
    results["table"] = table(results)
    Path(args.output).write_text(json.dumps(results, indent=2) + "\n")
    print(results["table"])
    print(f"\n{w.describe()}; {results['wall_time_s']:.0f} s; written to {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
