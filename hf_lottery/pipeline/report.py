"""The run report: `results.json`, `results.csv`, `report.md` and PNG plots, built from a run folder alone.

Every ticket is read once; an unfinished run gets an "incomplete run" banner listing what is missing (also logged
as a warning, i.e. on stderr from the command line).
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from transformers.utils import logging

from ..analysis.claims import check_claims, claims_markdown
from ..atomic import write_text
from ..tasks.paper import paper_results
from ..tickets.ticket import LotteryTicket
from .layout import RunLayout
from .tables import main_table, seeds_table, timing_markdown, to_csv


logger = logging.get_logger(__name__)


def collect(root: str | Path) -> dict[str, Any]:
    """Everything the stages wrote, keyed by seed; each ticket read once."""
    layout = RunLayout(root)
    if (run := layout.done(layout.run_config, "config")) is None:
        raise FileNotFoundError(f"{layout.root} is not a pipeline run folder (no run_config.json).")
    config = run["config"]["pipeline"] if "pipeline" in run["config"] else run["config"]
    seeds = config["seeds"]
    tickets = {key: LotteryTicket.from_pretrained(folder) for key, folder in layout.ticket_folders(seeds).items()}
    data: dict[str, Any] = {
        "layout": layout, "run": run, "config": config, "seeds": seeds, "ticket_objects": tickets,
        "full": {}, "pruned": {}, "retrained": {}, "tickets": {},
    }  # fmt: skip
    for seed in seeds:
        if (full := layout.done(layout.finetuned_dir(seed), "dev")) is not None:
            data["full"][seed] = full["dev"]
        if (pruned := layout.done(layout.pruned_dir(seed), "tickets")) is not None:
            data["pruned"][seed] = {name: r["dev"] for name, r in pruned["tickets"].items()}
        results = [layout.done(marker.parent, "ticket", "dev") for marker in layout.retrained_results(seed)]
        data["retrained"][seed] = {result["ticket"]: result["dev"] for result in results}
        data["tickets"][seed] = {
            f"{method}/{kind}": _summary(ticket) for (s, method, kind), ticket in tickets.items() if s == seed
        }
    return data


def _summary(ticket: LotteryTicket) -> dict[str, Any]:
    summary = ticket.summary()
    summary.update(
        metric=ticket.metrics.get("metric"),
        full_metric=ticket.metrics.get("full_metric"),
        degenerate_stop_rule=ticket.extra.get("degenerate_stop_rule"),
        sparsity=ticket.sparsity,
        steps=len(ticket.history) - 1 if ticket.history else None,
    )
    return summary


def _goods(data: dict[str, Any], method: str) -> list[LotteryTicket]:
    objects = data["ticket_objects"]
    return [objects[(s, method, "good")] for s in data["seeds"] if (s, method, "good") in objects]


def missing_units(data: dict[str, Any]) -> list[str]:
    """What a complete run of these seeds, methods and kinds would hold and this folder does not."""
    layout, config, seeds = data["layout"], data["config"], data["seeds"]
    methods = config.get("methods", ["structured", "magnitude"])
    kinds = config.get("kinds", ["good", "random", "bad"])
    missing = []
    for seed in seeds:
        if seed not in data["full"]:
            missing.append(f"fine-tuned model of seed {seed}")
        tickets = [(m, k) for m in methods for k in kinds if (seed, m, k) not in data["ticket_objects"]]
        missing += [f"{method}/{kind} ticket of seed {seed}" for method, kind in tickets]
        if seed not in data["pruned"]:
            missing.append(f"pruned evaluation of seed {seed}")
        expected = [f"{m}/{k}" for m in methods for k in kinds]
        limit = config.get("super_retrain_seeds")
        if "structured" in methods and len(seeds) > 1 and (limit is None or seed in seeds[:limit]):
            expected += [f"super/{k}" for k in kinds]
        absent = [name for name in expected if name not in data["retrained"].get(seed, {})]
        if absent:
            missing.append(f"re-fine-tuned {', '.join(absent)} of seed {seed}")
    if "patterns" in config.get("stages", []) and layout.done(layout.patterns_dir) is None:
        missing.append("attention patterns")
    return missing


def _data_sentence(run: dict[str, Any], search_data: str) -> str:
    """What the table's dev set is, saying when it was truncated and what the search used."""
    data = run.get("data")
    if not data:
        return ""

    def part(key: str, what: str, flag: str | None = None) -> str:
        cut = f" (truncated by --{flag})" if flag and data[key] < data[f"{key}_total"] else ""
        return f"{data[key]} of {data[f'{key}_total']} {what}{cut}"

    dev = part("dev", f"examples of the {data.get('dev_split', 'validation')} split", "max_eval_samples")
    search = "examples of " + ("dev" if search_data == "dev" else "a held-out slice of train")
    search, train = part("search", search, "max_search_samples"), part("train", "training examples")
    return f"Data: scores on {dev}; search on {search}; fine-tuning on {train}."


def _header(data: dict[str, Any]) -> list[str]:
    run, config = data["run"], data["config"]
    search = run["config"].get("search", config)
    training = run["config"].get("training", config)
    search_data = search.get("search_data", "dev")
    same = " — the same dev set the table reports, as in the paper, so 'pruned' scores are optimistic."
    return [
        f"# Lottery tickets: {config['task_name']} on {run.get('base_model', config.get('model_name_or_path'))}",
        "",
        run.get("model_note", ""),
        "",
        f"Seeds: {', '.join(map(str, data['seeds']))}. Search data (importance and stop rule): **{search_data}**"
        + (same if search_data == "dev" else "."),
        f"Stop rule: metric ≥ {search.get('threshold')} × full model. Metric: {run.get('metric_name')}. "
        f"Fine-tuning: lr {training.get('learning_rate')}, batch {run.get('effective_train_batch_size')} (global), "
        f"{float(training.get('num_train_epochs', 3.0)):g} epoch(s), max length {config.get('max_seq_length')}.",
        _data_sentence(run, search_data),
        "",
    ]


def statistics_section(data: dict[str, Any]) -> tuple[str, dict[str, Any] | None]:
    """Fleiss κ, Cochran's Q, Krippendorff α, IoU, Jaccard and survivors of the structured good tickets."""
    tickets = _goods(data, "structured")
    if len(tickets) < 2:
        return "Seed statistics need at least two seeds with a structured ticket.", None
    from ..analysis import agreement_table, mask_agreement

    agreement = mask_agreement(tickets)
    return agreement_table({data["config"]["task_name"]: agreement}), agreement.to_dict()


def plots_section(data: dict[str, Any], plots_dir: Path) -> list[tuple[str, Path]]:
    """Head-survival heatmaps (mean, std), MLP survival bars and magnitude Q/K/V survival, as PNG files."""
    from ..analysis import plots

    made: list[tuple[str, Path]] = []
    structured = _goods(data, "structured")
    if structured:
        made.append(("Head survival across seeds (share of seeds keeping each head)",
                     plots.plot_head_survival(structured, plots_dir / "head_survival.png")))  # fmt: skip
        if len(structured) > 1:
            made.append(("Head survival, standard deviation across seeds",
                         plots.plot_head_survival_std(structured, plots_dir / "head_survival_std.png")))  # fmt: skip
        made.append(("MLP survival across seeds", plots.plot_mlp_survival(structured, plots_dir / "mlp_survival.png")))
    magnitude = _goods(data, "magnitude")
    if magnitude:
        made.append(("Magnitude tickets: surviving Q/K/V weights per head",
                     plots.plot_magnitude_qkv_survival(magnitude, plots_dir / "magnitude_qkv_survival.png")))  # fmt: skip
    return made


def patterns_section(layout: RunLayout) -> list[str]:
    """Attention patterns of surviving heads vs. all heads (when the patterns stage ran)."""
    result = layout.done(layout.patterns_dir)
    if result is None or not result.get("survival"):
        return []
    from ..patterns import plot_pattern_survival, survival_markdown

    plot = plot_pattern_survival(result["survival"], layout.plots_dir / "pattern_survival.png")
    classifier = result.get("classifier")
    classifier = f"classifier `{classifier}`" if classifier else "classifier shipped with hf-lottery (synthetic maps)"
    maps = "norm-based maps" if result.get("norm_based") else "raw attention maps"
    rows = result.get("dev_rows")
    examples = (
        f"{rows['count']} of {rows['of']} dev examples sampled with seed {rows['sampled_with_seed']}"
        if rows
        else f"the first {result['patterns']['num_examples']} dev examples"
    )
    return [
        "## Attention patterns of surviving heads",
        "",
        f"Each head's pattern is the majority vote of the pattern classifier over the {maps} of {examples} "
        f"(fine-tuned model of seed {result['seed']}; {classifier}). Surviving = kept by the structured ticket of "
        "every seed.",
        "",
        survival_markdown(result["survival"]),
        "",
        f"![Pattern shares of all and of surviving heads](plots/{plot.name})",
        "",
    ]


def _provenance(run: dict[str, Any]) -> list[str]:
    resumed = run.get("commands", [])[1:]
    lines = ["## Provenance", "", f"Command: `{run.get('command', '')}`"]
    lines += [f"Resumed / extended with: `{c}`" for c in resumed]
    versions = ", ".join(f"{k} {v}" for k, v in sorted(run.get("versions", {}).items()))
    return [*lines, f"Git revision: {run.get('git_revision')}", f"Packages: {versions}", ""]


def _json(value: Any) -> str:
    """Strict JSON (ASCII, sorted keys): an undefined statistic (NaN, infinity) is written as null."""

    def finite(item: Any) -> Any:
        if isinstance(item, dict):
            return {key: finite(v) for key, v in item.items()}
        if isinstance(item, (list, tuple)):
            return [finite(v) for v in item]
        return None if isinstance(item, float) and not math.isfinite(item) else item

    return json.dumps(finite(value), indent=2, sort_keys=True, allow_nan=False) + "\n"


def build_report(output_dir: str | Path) -> Path:
    """Write ``report/results.json``, ``report/results.csv``, ``report/report.md`` and PNG plots of a run folder
    (e.g. ``build_report("outputs/demo")``, `hf-lottery report` on the command line); return report.md. The folder of
    several tasks gets each task's report and a cross-task one (`grid_report`)."""
    root = RunLayout(output_dir)
    if "tasks" in (root.done(root.run_config) or {}):
        return grid_report(root)
    return _task_report(collect(output_dir))[0]


def _task_report(data: dict[str, Any]) -> tuple[Path, str, list[dict[str, Any]]]:
    """Write the report of one run's collected `data`; return report.md, the main table and its rows."""
    layout = data["layout"]
    table, rows = main_table(data)
    stats_md, stats = statistics_section(data)
    figures = plots_section(data, layout.plots_dir)
    missing = missing_units(data)
    run = data["run"]
    claims = check_claims(data["full"], data["pruned"], data["retrained"], run.get("constant_baseline"), stats)
    meta = {k: v for k, v in run.items() if k != "fingerprint"}
    results = {"meta": meta, "complete": not missing, "missing": missing, "seed_statistics": stats, "table": rows}
    results |= {key: data[key] for key in ("full", "pruned", "retrained", "tickets")}
    paper = paper_results(data["config"]["task_name"])  # the paper's figures; {} for a task it does not cover
    results |= {"patterns": layout.done(layout.patterns_dir), "claims": claims, "paper": paper}
    write_text(layout.report_dir / "results.json", _json(results))
    write_text(layout.report_dir / "results.csv", to_csv(data))
    lines = _header(data)
    if missing:
        logger.warning("Incomplete run %s: missing %s.", layout.root, "; ".join(missing))
        finish = "Re-run the same command to finish (with `--stages` that make them)."
        lines += [f"> **Incomplete run.** Missing: {'; '.join(missing)}. {finish}", ""]
    lines += ["## Main table (dev, mean ± std over seeds)", "", table, "", "## Paper's claims", ""]
    lines += [claims_markdown(claims), "", "## Tickets per seed", "", seeds_table(data)]
    lines += ["", "## Agreement of the structured tickets across seeds", "", stats_md, "", "## Plots", ""]
    lines += [f"![{title}](plots/{path.name})\n" for title, path in figures]
    lines += patterns_section(layout)
    lines += ["## Time per stage", "", timing_markdown(layout, data["seeds"], per_unit=True), ""]
    lines += _provenance(run)
    report_md = layout.report_dir / "report.md"
    write_text(report_md, "\n".join(lines))
    logger.info("Report written to %s", report_md)
    return report_md, table, rows


def grid_report(layout: RunLayout) -> Path:
    """The report of a run of several tasks: each task's report, then one main table per task, the agreement of each
    task's structured tickets across seeds, the heads stable across tasks (kept by every seed's structured ticket in
    most tasks) with their heatmap and the pairwise overlap of tasks, and each task's head-survival heatmap."""
    import torch

    from ..analysis import agreement_table, mask_agreement, task_overlap
    from ..analysis.plots import plot_head_survival

    run = layout.done(layout.run_config, "tasks")
    lines = [f"# Lottery tickets: {', '.join(run['tasks'])}", ""]
    structured, agreements, tables, missing = {}, {}, {}, []
    for task in run["tasks"]:
        data = collect(layout.root / task)
        _, table, tables[task] = _task_report(data)
        missing += [f"{task}: {unit}" for unit in missing_units(data)]
        lines += [f"## {task} ([full report](../{task}/report/report.md))", "", table, ""]
        if goods := _goods(data, "structured"):
            structured[task] = goods
        if len(goods) > 1:
            agreements[task] = mask_agreement(goods)
    lines += ["## Agreement of the structured tickets across seeds, per task", ""]
    lines += [agreement_table(agreements) if agreements else "Needs two seeds or more with a structured ticket.", ""]
    results = {"tasks": run["tasks"], "tables": tables, "agreement": {k: v.to_dict() for k, v in agreements.items()}}
    results |= {"complete": not missing, "missing": missing}
    if missing:
        lines[2:2] = ["> **Incomplete run**: see each task's report for what is missing.", ""]
    if len(structured) > 1:  # the share of tasks where every seed keeps a head (MLP); stable: more than half of them
        kept = {part: [torch.stack([getattr(t, mask) for t in goods]).all(0) for goods in structured.values()]
                for part, mask in (("heads", "head_mask"), ("mlps", "mlp_mask"))}  # fmt: skip
        shares = {part: torch.stack(masks).float().mean(0) for part, masks in kept.items()}
        overlap = task_overlap(structured)
        results |= {"stable_heads": (shares["heads"] > 0.5).nonzero().add(1).tolist(), "overlap": overlap,
                    "stable_mlps": (shares["mlps"] > 0.5).nonzero().add(1).flatten().tolist(),
                    "share_of_tasks": {k: v.tolist() for k, v in shares.items()}}  # fmt: skip
        plot = plot_head_survival(kept["heads"], layout.plots_dir / "stable_heads.png",
                                  f"Heads kept by every seed: share of {len(structured)} tasks",
                                  label="share of tasks where every seed keeps the head")  # fmt: skip
        stable = ", ".join(f"{layer}-{head}" for layer, head in results["stable_heads"]) or "none"
        lines += ["## Heads stable across tasks", "", "A head is stable in a task when the structured good ticket of "
                  f"every seed keeps it. Stable in more than half of the {len(structured)} tasks (layer-head, from 1): "
                  f"{stable}; MLPs (layer): {', '.join(map(str, results['stable_mlps'])) or 'none'}.", "",
                  f"![Share of tasks keeping each head in every seed](plots/{plot.name})", "",
                  "| tasks | heads stable in both | Jaccard |", "|---|---|---|"]  # fmt: skip
        lines += [f"| {pair} | {v['shared']} | {v['jaccard']:.2f} |" for pair, v in overlap.items()]
    lines += ["", "## Head survival per task", ""]
    lines += [f"![{task}](../{task}/report/plots/head_survival.png)" for task in structured] + ["", *_provenance(run)]
    write_text(layout.report_dir / "results.json", _json(results))
    write_text(layout.report_dir / "report.md", "\n".join(lines) + "\n")
    logger.info("Cross-task report written to %s", layout.report_dir / "report.md")
    return layout.report_dir / "report.md"
