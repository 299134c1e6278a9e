"""Reproduce the paper's claims on three GLUE tasks × 3 seeds with the packaged MiniLM, sized for 2 CPU cores.

Runs the whole pipeline (fine-tune → structured and magnitude tickets → random / bad / super → pruned evaluation →
re-fine-tuning → report) once per task, each in its own `hf-lottery run` process and folder, then collects the
reports into the Markdown tables of `docs/reproduction.md`: ours beside the paper's, the claims per task, the time
per stage. Re-running the same command resumes (finished units are skipped) and then collects again.

    python recipes/reproduce_paper.py --data_dir GLUE_DIR                     # GLUE_DIR/SST-2, MRPC, CoLA (or RTE)
    python recipes/reproduce_paper.py --data_dir GLUE_DIR --tasks sst2 mrpc rte --output_dir runs/repro
    python recipes/reproduce_paper.py --collect_only --output_dir runs/reproduction   # tables of finished runs

The subsets (`SUBSETS`) and training settings (`COMMON`) are sized so that the 3 × 3 grid takes about 75 minutes of
wall time on 2 idle CPU cores; see docs/reproduction.md for how they were chosen and what they cost in fidelity.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

from hf_lottery.pipeline.layout import RunLayout
from hf_lottery.pipeline.tables import mean_std, unit_timings
from hf_lottery.tasks.paper import PAPER_LABEL, paper_results


SEEDS = ("1337", "42", "86")  # the paper's first three seeds
# Per task: training subset (seeded), epochs, dev examples scored (the first ones; the search uses the first
# `max_search_samples` of them, as the paper searches on dev) and max tokens. Sized from timed units, see
# docs/reproduction.md: CPU seconds per training example-epoch ≈ 0.2 (SST-2), 0.25 (MRPC), 0.09 (CoLA).
SUBSETS = {
    "sst2": {"max_train_samples": 192, "num_train_epochs": 2, "max_eval_samples": 200, "max_seq_length": 64},
    "mrpc": {"max_train_samples": 384, "num_train_epochs": 1, "max_eval_samples": 200, "max_seq_length": 128},
    "cola": {"max_train_samples": 384, "num_train_epochs": 2, "max_eval_samples": 200, "max_seq_length": 64},
    "rte": {"max_train_samples": 256, "num_train_epochs": 1, "max_eval_samples": 200, "max_seq_length": 128},
}
COMMON = {
    "learning_rate": "1e-4",  # the paper's 2e-5 barely moves MiniLM in so few steps
    "per_device_train_batch_size": "16",
    "max_search_samples": "100",
    "search_batch_size": "50",
    "super_retrain_seeds": "0",  # super tickets are evaluated pruned, not re-fine-tuned (3 trainings per seed saved)
    "on_degenerate": "ignore",  # a weak full model still gives a complete table; the report flags it
}
STAGES_RUN = ["finetune", "search", "sample", "evaluate", "retrain", "report"]
STAGES = ("finetune", "search", "sample", "evaluate", "retrain")


def run_task(task: str, data_dir: str, output_dir: Path) -> float:
    """One task's pipeline in its own process; its wall seconds (a failure stops the grid with the task named)."""
    flags = [f"--{name}={value}" for name, value in {**SUBSETS[task], **COMMON}.items()]
    command = [sys.executable, "-m", "hf_lottery.cli", "run", "--task_name", task, "--data_dir", data_dir]
    command += ["--output_dir", str(output_dir / task), "--seeds", *SEEDS, "--stages", *STAGES_RUN, *flags]
    print("$ hf-lottery", " ".join(command[3:]), flush=True)
    start = time.perf_counter()
    if subprocess.run(command).returncode != 0:
        sys.exit(f"{task} failed; re-run the same command to resume it.")
    return time.perf_counter() - start


def collect(output_dir: Path, tasks: list[str]) -> str:
    """The tables of docs/reproduction.md from the finished runs under `output_dir` (one folder per task)."""
    results = {}
    for task in tasks:
        path = output_dir / task / "report" / "results.json"
        if path.is_file():
            results[task] = json.loads(path.read_text(encoding="utf-8"))
    lines = ["### Ours beside the paper (dev; ours: mean ± std over seeds)", ""]
    lines += [f"| task | subnetwork | ours, pruned | {PAPER_LABEL}, pruned | ours, re-FT | {PAPER_LABEL}, re-FT |"]
    lines += ["|---|---|---|---|---|---|"]
    for task, result in results.items():
        for row in result["table"]:
            pruned = "–" if row["pruned"] is None else mean_std(row["pruned"])
            cells = [row.get("paper_pruned"), mean_std(row["retrained"]), row.get("paper_retrained")]
            lines.append(f"| {task} | {row['subnetwork']} | {pruned} | " + " | ".join(c or "–" for c in cells) + " |")
    lines += ["", "### Ticket sizes (structured good: heads, MLPs; magnitude good: encoder weights kept)", ""]
    lines.append(
        "| task | heads kept (ours) | heads (paper, of 144) | MLPs kept (ours) | MLPs (paper, of 12) | "
        "weights kept (ours) | weights kept (paper) |"
    )
    lines.append("|---|---|---|---|---|---|---|")
    for task, result in results.items():
        paper = paper_results(task)
        goods = [t.get("structured/good") for t in result["tickets"].values()]
        heads = ", ".join(f"{t['kept_heads']}/{t['total_heads']}" for t in goods if t) or "–"
        mlps = ", ".join(f"{t['kept_mlps']}/{t['total_mlps']}" for t in goods if t) or "–"
        kept = [t.get("magnitude/good", {}).get("encoder_weights_kept") for t in result["tickets"].values()]
        kept = ", ".join(f"{k:.1%}" for k in kept if k is not None) or "–"
        paper_cells = [paper.get(k, "–") for k in ("heads kept", "MLPs kept", "magnitude: weights kept (%)")]
        lines.append(
            f"| {task} | {heads} | {paper_cells[0]} | {mlps} | {paper_cells[1]} | {kept} | {paper_cells[2]}% |"
        )
    lines += ["", "### The paper's claims, per task", ""]
    lines += ["| claim | " + " | ".join(results) + " |", "|---" * (len(results) + 1) + "|"]
    claims = [c["claim"] for c in next(iter(results.values()), {"claims": []})["claims"]]
    for i, claim in enumerate(claims):
        lines.append(f"| {claim} | " + " | ".join(r["claims"][i]["verdict"] for r in results.values()) + " |")
    lines += ["", "Numbers behind each verdict: the *Paper's claims* section of each task's report.md.", ""]
    lines += ["### Time per stage (wall s / CPU s, summed over seeds)", ""]
    lines += ["| task | " + " | ".join(STAGES) + " | all |", "|---" * (len(STAGES) + 2) + "|"]
    for task, result in results.items():
        timings = unit_timings(RunLayout(output_dir / task), result["meta"]["config"]["pipeline"]["seeds"])
        cells = []
        for stage in [*STAGES, None]:
            chosen = [t for t in timings if stage in (None, t[0])]
            cells.append(f"{sum(t[2] for t in chosen):.0f} / {sum(t[3] or 0 for t in chosen):.0f}")
        lines.append(f"| {task} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data_dir", help="GLUE folder holding SST-2/, MRPC/, CoLA/ (and RTE/) with the TSVs.")
    parser.add_argument("--output_dir", default="runs/reproduction", help="One run folder per task goes here.")
    parser.add_argument("--tasks", nargs="+", default=["sst2", "mrpc", "cola"], choices=sorted(SUBSETS))
    parser.add_argument("--collect_only", action="store_true", help="Only collect the tables of finished runs.")
    args = parser.parse_args(argv)
    output_dir = Path(args.output_dir)
    if not args.collect_only:
        if not args.data_dir or not Path(args.data_dir).is_dir():
            parser.error("--data_dir must be a GLUE folder (SST-2/, MRPC/, CoLA/ or RTE/ with train.tsv, dev.tsv).")
        walls = {task: run_task(task, args.data_dir, output_dir) for task in args.tasks}
        print("wall seconds per task:", {task: round(wall) for task, wall in walls.items()}, flush=True)
    tables = collect(output_dir, args.tasks)
    (output_dir / "reproduction_tables.md").write_text(tables, encoding="utf-8")
    print(tables)
    return 0


if __name__ == "__main__":
    sys.exit(main())
