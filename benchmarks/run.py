"""hf-lottery benchmarks: every figure is a ratio of two measurements taken side by side in one run.

    python benchmarks/run.py            # the packaged MiniLM at batch 32 x seq 128 (about 12 minutes on 2 cores)
    python benchmarks/run.py --quick    # a tiny random BERT, under 5 minutes on 2 cores
    python benchmarks/run.py --device cuda          # the same on a GPU (peak memory from torch.cuda)
    python benchmarks/run.py --only grid_cost       # the paper's 9 x 5 grid, predicted (bert-base size) and measured

Times are medians over interleaved repeats (A, B, B, A, ...) after warm-up; speedups of a training step or a forward
pass are the median over rounds of the two times taken in the same round, which cancels the drifts of a shared
machine. Peak memory on the CPU comes from separate subprocesses (a process's peak only grows). Prints a Markdown
table with every target and whether it is met, writes benchmarks/results.json, and exits non-zero when a figure
cannot be measured.
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

from benchmarks.flops import encoder_flops, training_flops  # noqa: E402
from benchmarks.grid_cost import bench_grid_cost, grid_markdown  # noqa: E402
from benchmarks.onnx_latency import bench_onnx  # noqa: E402
from benchmarks.retrain import bench_retrain_stage  # noqa: E402
from benchmarks.workloads import (  # noqa: E402
    Workload,
    device_name,
    make_workload,
    plain_forward_backward,
    synchronize,
    ticket_for,
    trainer_optimizer,
    training_step,
)


HERE = Path(__file__).resolve().parent
KEPT = (0.75, 0.5, 0.25)
_DEVICE = torch.device("cpu")  # set by main(); interleaved() synchronises a GPU around each timing


def interleaved(variants: dict[str, Callable[[], object]], repeats: int, warmup: int = 1) -> dict[str, float]:
    """Median wall time of each variant over `interleaved_rounds`, so drifts of a shared machine hit all alike."""
    return medians(interleaved_rounds(variants, repeats, warmup))


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


def interleaved_rounds(variants: dict[str, Callable[[], object]], rounds: int, warmup: int = 1) -> list[dict]:
    """Wall time of every variant in each round; the order rotates and reverses between rounds (A B C, C B A, B C A,
    A C B, ...) so no variant always runs first or right after another. Warm-up rounds are not timed."""
    for _ in range(warmup):
        for fn in variants.values():
            fn()
    names = list(variants)
    out = []
    for round_ in range(rounds):
        shift = (round_ // 2) % len(names)
        order = names[shift:] + names[:shift]
        times = {}
        for name in order if round_ % 2 == 0 else order[::-1]:
            synchronize(_DEVICE)
            start = time.perf_counter()
            variants[name]()
            synchronize(_DEVICE)
            times[name] = time.perf_counter() - start
        out.append(times)
    return out


def medians(rounds: list[dict]) -> dict[str, float]:
    """Median time of each variant over `interleaved_rounds`."""
    return {name: statistics.median(r[name] for r in rounds) for name in rounds[0]}


def paired_ratio(rounds: list[dict], numerator: str, denominator: str) -> float:
    """Median over rounds of numerator / denominator, both timed in the same round: drifts between rounds cancel."""
    return statistics.median(r[numerator] / r[denominator] for r in rounds)


def bench_training_step(w: Workload, repeats: int) -> dict[str, float]:
    """A training step (forward, backward, clipping, the Trainer's fused AdamW) with a structured + magnitude ticket
    applied vs without.

    The ratio is the median over rounds of with / without, both timed in the same round. A second model without the
    ticket runs in every round too: the same median of without-again / without is the noise floor of this machine
    (1.0 on a quiet one). The masking work the ticket adds (the fused gradient masking and re-zeroing) is also timed
    on its own and given as a share of the step.
    """
    from hf_lottery import apply_ticket

    ticket = ticket_for(w.model, heads=0.5, mlps=0.5, weights=0.5)
    gated = w.fresh_model()
    handle = apply_ticket(gated, ticket)
    plain, plain_again = w.fresh_model(), w.fresh_model()
    optimizers = [trainer_optimizer(m) for m in (gated, plain, plain_again)]
    batch = w.batches[0]

    def with_ticket():
        training_step(gated, optimizers[0], batch)
        handle.enforce_weight_masks()

    rounds = interleaved_rounds(
        {
            "with_ticket": with_ticket,
            "without": lambda: training_step(plain, optimizers[1], batch),
            "without_again": lambda: training_step(plain_again, optimizers[2], batch),
        },
        repeats * 4,
    )
    times = medians(rounds)
    # the masking work alone, on the gradients of one real backward pass
    gated.train()
    gated(**batch).loss.backward()
    masking = interleaved({"mask_gradients": handle.mask_gradients, "rezero": handle.enforce_weight_masks}, 20)
    gated.zero_grad(set_to_none=True)
    return {
        "ratio": paired_ratio(rounds, "with_ticket", "without"),
        "noise_floor": paired_ratio(rounds, "without_again", "without"),
        "ratio_of_medians": times["with_ticket"] / times["without"],
        "masking_share": (masking["mask_gradients"] + masking["rezero"]) / times["without"],
        "rounds": len(rounds),
        **{f"{k}_s": v for k, v in times.items()},
        **{f"{k}_s": v for k, v in masking.items()},
    }


def bench_search(w: Workload, repeats: int, max_steps: int) -> dict[str, float]:
    from hf_lottery import find_structured_ticket

    tickets = {}

    def run(passes: int):
        def go():
            tickets[passes] = find_structured_ticket(
                w.model, w.batches, w.metric, passes_per_step=passes, structured_max_steps=max_steps, on_degenerate="ignore",
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
    """Inference (forward) of the compacted model vs the dense one, against the encoder-FLOP prediction."""
    from hf_lottery import apply_ticket
    from hf_lottery.models.compaction import compact_model

    rows = []
    batch = {k: v for k, v in w.batches[0].items() if k != "labels"}
    for keep in KEPT:
        ticket = ticket_for(w.model, heads=keep, mlps=keep, weights=None)
        dense = w.fresh_model()
        compact = compact_model(w.fresh_model(), ticket)
        gated = w.fresh_model()
        apply_ticket(gated, ticket)
        with torch.no_grad():
            rounds = interleaved_rounds(
                {"dense": lambda d=dense: d(**batch), "compact": lambda c=compact: c(**batch)}, repeats * 3
            )
            error = float((gated(**batch).logits - compact(**batch).logits).abs().max())
        t = medians(rounds)
        if error > 1e-4:
            raise RuntimeError(f"The compact model disagrees with the gated one (max |logit error| {error:.2e}).")
        seq = batch["input_ids"].shape[1]
        predicted = encoder_flops(dense, seq) / encoder_flops(compact, seq)
        measured = paired_ratio(rounds, "dense", "compact")
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


def bench_compact_training(w: Workload, repeats: int) -> list[dict[str, float]]:
    """A training step (forward, backward, clipping, the Trainer's fused AdamW) of the compacted model vs the gated
    dense model.

    The prediction is the ratio of the whole model's forward + backward FLOPs (`training_flops`: embeddings, pooler
    and classifier included), read from the modules' real shapes.
    """
    from hf_lottery import apply_ticket
    from hf_lottery.models.compaction import compact_model
    from hf_lottery.models.rewinding import freeze_removed_mlp_biases

    rows = []
    batch = w.batches[0]
    batch_size, seq = batch["input_ids"].shape
    for keep in KEPT:
        ticket = ticket_for(w.model, heads=keep, mlps=keep, weights=None)
        gated = w.fresh_model()
        apply_ticket(gated, ticket)
        compact = compact_model(w.fresh_model(), ticket)
        freeze_removed_mlp_biases(compact)
        optimizers = {name: trainer_optimizer(m) for name, m in (("gated", gated), ("compact", compact))}
        rounds = interleaved_rounds(
            {
                "gated": lambda g=gated, o=optimizers["gated"]: training_step(g, o, batch),
                "compact": lambda c=compact, o=optimizers["compact"]: training_step(c, o, batch),
            },
            repeats * (2 if w.quick else 3),  # --quick stays under 5 minutes on 2 cores
            warmup=1,  # the first AdamW step allocates its state
        )
        t = medians(rounds)
        predicted = training_flops(gated, seq, batch_size) / training_flops(compact, seq, batch_size)
        measured = paired_ratio(rounds, "gated", "compact")
        rows.append(
            {
                "kept": keep,
                "measured_speedup": measured,
                "predicted_speedup": predicted,
                "efficiency": measured / predicted,
                **{f"{k}_s": v for k, v in t.items()},
            }
        )
    return rows


def bench_memory(w: Workload, quick: bool) -> dict[str, float]:
    """Peak memory of the importance pass vs a plain forward+backward (CPU: RSS in subprocesses; GPU: torch.cuda)."""
    if w.device.type == "cuda":
        from hf_lottery import compute_importance

        peaks = {}
        for mode, fn in (
            ("importance", lambda: compute_importance(w.model, w.batches, progress=False)),
            ("forward_backward", lambda: plain_forward_backward(w.model, w.batches)),
        ):
            fn()  # warm-up
            torch.cuda.synchronize()
            baseline = torch.cuda.memory_allocated() / 2**20
            torch.cuda.reset_peak_memory_stats()
            fn()
            torch.cuda.synchronize()
            peaks[mode] = {"baseline_mb": baseline, "peak_mb": torch.cuda.max_memory_allocated() / 2**20}
    else:
        peaks = {}
        for mode in ("importance", "forward_backward"):
            out = subprocess.run(
                [sys.executable, str(HERE / "memory_probe.py"), mode] + (["--quick"] if quick else []),
                capture_output=True, text=True, check=True,
                env=dict(os.environ, OMP_NUM_THREADS=str(torch.get_num_threads())),
            )  # fmt: skip
            peaks[mode] = json.loads(out.stdout.strip().splitlines()[-1])
    increase = {m: p["peak_mb"] - p["baseline_mb"] for m, p in peaks.items()}
    if increase["forward_backward"] <= 0:
        raise RuntimeError("The forward+backward pass showed no memory increase: peak memory was not measured.")
    return {
        # memory the pass itself needs (peak minus what was allocated before it), the fair comparison
        "ratio": increase["importance"] / increase["forward_backward"],
        "total_peak_ratio": peaks["importance"]["peak_mb"] / peaks["forward_backward"]["peak_mb"],
        "importance_increase_mb": increase["importance"],
        "forward_backward_increase_mb": increase["forward_backward"],
        "importance_peak_mb": peaks["importance"]["peak_mb"],
        "forward_backward_peak_mb": peaks["forward_backward"]["peak_mb"],
        "measured_as": "torch.cuda peak allocated" if w.device.type == "cuda" else "process peak RSS",
    }


def target_rows(results: dict, quick: bool) -> list[dict]:
    """Every figure with a target: value, target and whether it is met (also written to results.json)."""
    efficiency = 0.7 if quick else 0.85
    rows = []

    def add(figure: str, value: float, op: str | None = None, goal: float | None = None) -> None:
        met = None if op is None else bool(value <= goal if op == "<=" else value >= goal)
        rows.append({"figure": figure, "value": value, "target": None if op is None else f"{op} {goal}", "met": met})

    if "importance" in results:
        add("importance pass / plain forward+backward", results["importance"]["ratio"], "<=", 1.10)
    if "training_step" in results:
        step = results["training_step"]
        add("training step with ticket / without (median of paired rounds)", step["ratio"], "<=", 1.02)
        add("  noise floor: the same step, second model without ticket / first", step["noise_floor"])
        add("  masking work (gradient masking + re-zeroing) / step", step["masking_share"])
    if "search" in results:
        add("search speedup, one pass vs the paper's two", results["search"]["speedup"], ">=", 1.6)
    for r in results.get("compaction", []):
        add(f"inference: compact speedup at {r['kept']:.0%} kept (predicted {r['predicted_speedup']:.2f}x)",
            r["measured_speedup"])  # fmt: skip
        add(f"  inference: measured / predicted at {r['kept']:.0%}", r["efficiency"], ">=", 0.8)
        add("  inference: max abs logit difference, compact vs gated", r["max_abs_logit_error"], "<=", 1e-5)
    for r in results.get("compact_training", []):
        add(f"training step: compact vs gated at {r['kept']:.0%} kept (predicted {r['predicted_speedup']:.2f}x)",
            r["measured_speedup"])  # fmt: skip
        add(f"  training step: measured / predicted at {r['kept']:.0%}", r["efficiency"], ">=", efficiency)
    if "retrain_stage" in results:
        stage = results["retrain_stage"]
        kept = ", ".join(f"{n} {t['kept_heads']} heads/{t['kept_mlps']} MLPs" for n, t in stage["tickets"].items())
        figure = f"retrain stage, gated / compacted wall time ({stage['steps']} steps; {kept})"
        if quick:  # the target is set on the demo's tickets with the packaged MiniLM (the full run)
            add(figure + " [target: full run]", stage["speedup"])
        else:
            add(figure, stage["speedup"], ">=", 1.5)
    if "memory" in results:
        add("peak memory, importance pass / forward+backward", results["memory"]["ratio"], "<=", 1.10)
        add("  (whole-process peak ratio)", results["memory"]["total_peak_ratio"])
    if "grid_cost" in results:
        hours, small = results["grid_cost"]["predicted_hours"], results["grid_cost"]["small_grid"]
        add("grid_cost: paper grid (9 tasks x 5 seeds, bert-base size), hours on 1 device", hours["units_1"])
        for distribute in ("units", "data"):
            add(f"  grid_cost: hours on 8 devices, --distribute {distribute}", hours[f"{distribute}_8"])
        add("grid_cost: measured small grid on 2 CPU processes, wall time data / units", small["speedup"], ">=", 1.0)
    onnx = results.get("onnx", {})
    for name in ("dense", "compact"):
        if name in onnx:
            add(f"onnxruntime speedup over torch, {name} model ({onnx['device']})", onnx[name]["onnxruntime_speedup"])
            add(f"  onnxruntime max abs logit difference, {name}", onnx[name]["max_abs_logit_error"], "<=", 1e-4)
    return rows


def table(rows: list[dict]) -> str:
    lines = ["| figure | measured | target | met |", "|---|---|---|---|"]
    for row in rows:
        value = f"{row['value']:.1e}" if abs(row["value"]) < 1e-2 else f"{row['value']:.3f}"
        met = "" if row["met"] is None else ("yes" if row["met"] else "NO")
        lines.append(f"| {row['figure']} | {value} | {row['target'] or ''} | {met} |")
    return "\n".join(lines)


BENCHMARKS = ("importance", "training_step", "search", "compaction", "compact_training", "retrain_stage", "memory",
              "onnx", "grid_cost")  # fmt: skip
ON_REQUEST = ("grid_cost",)  # run only when named in --only: it launches the pipeline on 2 processes


def _in_fresh_process(name: str, argv: list[str]) -> dict:
    """One figure measured by a fresh interpreter (same options), so it does not depend on what ran before it."""
    import tempfile

    keep = []
    skip = False
    for arg in argv:  # drop --only / --output (and their values); the child gets its own
        if skip:
            skip = False
            continue
        if arg in ("--only", "--output"):
            skip = True
            continue
        if not arg.startswith(("--only=", "--output=")):
            keep.append(arg)
    with tempfile.TemporaryDirectory() as folder:
        output = os.path.join(folder, "figure.json")
        # the child's table goes nowhere (the parent prints the whole one); its progress and errors go to stderr
        subprocess.run(
            [sys.executable, __file__, *keep, "--only", name, "--output", output], check=True,
            stdout=subprocess.DEVNULL,
        )  # fmt: skip
        return json.loads(Path(output).read_text())[name]


def main(argv: list[str] | None = None) -> int:
    global _DEVICE
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="tiny random BERT instead of the packaged MiniLM")
    parser.add_argument("--repeats", type=int, default=None, help="interleaved repeats per figure")
    parser.add_argument("--device", default="cpu", help="cpu (default) or cuda")
    parser.add_argument("--model", default=None, help="pre-trained model folder of the full run (default: MiniLM)")
    parser.add_argument("--retrain-steps", type=int, default=None, help="training steps per ticket in retrain_stage")
    parser.add_argument(
        "--only", default=",".join(b for b in BENCHMARKS if b not in ON_REQUEST),
        help=f"comma-separated subset of {BENCHMARKS} (default: all but {ON_REQUEST})",
    )  # fmt: skip
    parser.add_argument("--output", default=str(HERE / "results.json"))
    parser.add_argument(
        "--same-process", action="store_true",
        help="run every figure in this process (default: each in a fresh one, so no figure inherits another's heap)",
    )  # fmt: skip
    args = parser.parse_args(argv)
    only = [name.strip() for name in args.only.split(",") if name.strip()]
    unknown = sorted(set(only) - set(BENCHMARKS))
    if unknown:
        parser.error(f"--only: unknown benchmark(s) {unknown}; choose from {list(BENCHMARKS)}")
    _DEVICE = torch.device(args.device)
    torch.manual_seed(0)
    w = make_workload(args.quick, _DEVICE, args.model)
    repeats = args.repeats or (3 if args.quick else 5)
    runs: dict[str, Callable[[], object]] = {
        "importance": lambda: bench_importance(w, repeats),
        "training_step": lambda: bench_training_step(w, repeats),
        "search": lambda: bench_search(w, max(2, repeats // 2), max_steps=4 if args.quick else 3),
        "compaction": lambda: bench_compaction(w, repeats),
        "compact_training": lambda: bench_compact_training(w, repeats),
        "retrain_stage": lambda: bench_retrain_stage(
            w, steps=args.retrain_steps or (6 if args.quick else 20), repeats=1 if args.quick else 2
        ),
        "memory": lambda: bench_memory(w, args.quick),
        "onnx": lambda: bench_onnx(w, repeats, interleaved),
        "grid_cost": lambda: bench_grid_cost(_DEVICE),
    }
    started = time.perf_counter()
    results: dict = {
        "machine": {
            "platform": platform.platform(),
            "processor": platform.processor(),
            "cpus": os.cpu_count(),
            "torch_threads": torch.get_num_threads(),
            "torch": torch.__version__,
            "python": platform.python_version(),
            "device": device_name(_DEVICE),
        },
        "workload": w.describe(),
    }
    for name in BENCHMARKS:
        if name in only:
            began = time.perf_counter()
            if args.same_process or len(only) == 1:
                results[name] = runs[name]()
            else:
                results[name] = _in_fresh_process(name, argv if argv is not None else sys.argv[1:])
            print(f"{name}: {time.perf_counter() - began:.0f} s", file=sys.stderr, flush=True)
    results["wall_time_s"] = time.perf_counter() - started
    results["targets"] = target_rows(results, args.quick)
    results["table"] = table(results["targets"])
    Path(args.output).write_text(json.dumps(results, indent=2) + "\n")
    print(results["table"])
    if "grid_cost" in results:
        print("\n" + grid_markdown(results["grid_cost"]))
    print(f"\n{w.describe()}; {results['wall_time_s']:.0f} s; written to {args.output}")
    return 0


if __name__ == "__main__":
    from transformers.utils import logging as transformers_logging

    transformers_logging.set_verbosity_error()  # no load reports of fresh classifiers among the figures
    transformers_logging.disable_progress_bar()
    sys.exit(main())
