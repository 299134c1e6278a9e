"""The run report: `results.json`, `results.csv`, `report.md` and PNG plots, built from a run folder alone."""

from __future__ import annotations

import csv
import io
import json
import statistics
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from transformers.utils import logging

from ..atomic import write_json, write_text
from ..ticket import TICKET_CONFIG_NAME, LotteryTicket


logger = logging.get_logger(__name__)
KIND_ORDER = ("good", "random", "bad")


def _read(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None


def collect(root: Path) -> dict[str, Any]:
    """Everything the stages wrote, keyed by seed."""
    run = _read(root / "run_config.json")
    if run is None:
        raise FileNotFoundError(f"{root} is not a pipeline run folder (no run_config.json).")
    seeds = run["config"]["seeds"]
    data: dict[str, Any] = {"run": run, "full": {}, "pruned": {}, "retrained": {}, "tickets": {}}
    for seed in seeds:
        folder = root / f"seed_{seed}"
        if (full := _read(folder / "finetuned" / "result.json")) is not None:
            data["full"][seed] = full["dev"]
        if (pruned := _read(folder / "pruned" / "result.json")) is not None:
            data["pruned"][seed] = {name: r["dev"] for name, r in pruned["tickets"].items()}
        retrained = {}
        for result in sorted((folder / "retrained").glob("*/result.json")):
            value = _read(result)
            retrained[value["ticket"]] = value["dev"]
        data["retrained"][seed] = retrained
        data["tickets"][seed] = _ticket_summaries(folder / "tickets")
    return data


def _ticket_summaries(folder: Path) -> dict[str, Any]:
    summaries = {}
    for config in sorted(folder.glob(f"*/*/{TICKET_CONFIG_NAME}")):
        ticket = LotteryTicket.from_pretrained(config.parent)
        summary = ticket.summary()
        summary.update(
            metric=ticket.metrics.get("metric"),
            full_metric=ticket.metrics.get("full_metric"),
            degenerate_stop_rule=ticket.extra.get("degenerate_stop_rule"),
            sparsity=ticket.sparsity,
            steps=len(ticket.history) - 1 if ticket.history else None,
        )
        summaries[f"{config.parent.parent.name}/{config.parent.name}"] = summary
    return summaries


def mean_std(values: Sequence[float]) -> str:
    values = [v for v in values if v is not None]
    if not values:
        return "–"
    if len(values) == 1:
        return f"{values[0]:.4f}"
    return f"{statistics.mean(values):.4f} ± {statistics.stdev(values):.4f}"


def main_table(data: dict[str, Any]) -> tuple[str, list[dict[str, Any]]]:
    """The paper's main table: full model, majority class, and good/random/bad pruned and re-fine-tuned."""
    seeds = data["run"]["config"]["seeds"]
    metric = data["run"].get("metric_name", "score")
    rows: list[dict[str, Any]] = []

    def scores(table: dict, key: str | None) -> list[float]:
        out = []
        for seed in seeds:
            entry = table.get(seed, {}) if key is None else table.get(seed, {}).get(key)
            if entry:
                out.append(entry.get("score"))
        return out

    rows.append({"subnetwork": "full model", "pruned": None, "retrained": scores(data["full"], None)})
    baseline = data["run"].get("constant_baseline")
    rows.append(
        {
            "subnetwork": "majority class (constant predictor)",
            "pruned": None,
            "retrained": [baseline] if baseline is not None else [],
        }
    )
    for group in ("structured", "magnitude", "super"):
        for kind in KIND_ORDER:
            name = f"{group}/{kind}"
            pruned, retrained = scores(data["pruned"], name), scores(data["retrained"], name)
            if pruned or retrained:
                rows.append({"subnetwork": name, "pruned": pruned, "retrained": retrained})
    lines = [
        f"| subnetwork | pruned, no retraining ({metric}) | re-fine-tuned from pre-trained ({metric}) | seeds |",
        "|---|---|---|---|",
    ]
    for row in rows:
        pruned = "–" if row["pruned"] is None else mean_std(row["pruned"])
        label = row["subnetwork"] if row["subnetwork"] != "full model" else "full model (fine-tuned)"
        seeds_used = "–" if row["subnetwork"].startswith("majority") else len(row["retrained"])
        lines.append(f"| {label} | {pruned} | {mean_std(row['retrained'])} | {seeds_used} |")
    return "\n".join(lines), rows


def seeds_table(data: dict[str, Any]) -> str:
    lines = [
        "| seed | full | heads kept | MLPs kept | structured metric (search data) | magnitude sparsity | magnitude metric | degenerate stop rule |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for seed in data["run"]["config"]["seeds"]:
        tickets = data["tickets"].get(seed, {})
        s, m = tickets.get("structured/good", {}), tickets.get("magnitude/good", {})
        full = data["full"].get(seed, {}).get("score")
        fmt = lambda v: "–" if v is None else (f"{v:.4f}" if isinstance(v, float) else str(v))  # noqa: E731
        degenerate = any(t.get("degenerate_stop_rule") for t in (s, m))
        lines.append(
            f"| {seed} | {fmt(full)} | {fmt(s.get('kept_heads'))}/{fmt(s.get('total_heads'))} | "
            f"{fmt(s.get('kept_mlps'))}/{fmt(s.get('total_mlps'))} | {fmt(s.get('metric'))} | "
            f"{fmt(m.get('sparsity'))} | {fmt(m.get('metric'))} | {'yes' if degenerate else 'no'} |"
        )
    return "\n".join(lines)


def to_csv(data: dict[str, Any]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["seed", "subnetwork", "setting", "metric", "value"])
    for seed, metrics in data["full"].items():
        for name, value in metrics.items():
            writer.writerow([seed, "full", "fine-tuned", name, value])
    for setting in ("pruned", "retrained"):
        for seed, tickets in data[setting].items():
            for ticket, metrics in tickets.items():
                for name, value in metrics.items():
                    writer.writerow([seed, ticket, setting, name, value])
    return buffer.getvalue()


def _good_tickets(root: Path, seeds: Sequence[int], method: str) -> list[LotteryTicket]:
    tickets = []
    for seed in seeds:
        folder = root / f"seed_{seed}" / "tickets" / method / "good"
        if (folder / TICKET_CONFIG_NAME).is_file():
            tickets.append(LotteryTicket.from_pretrained(folder))
    return tickets


def statistics_section(root: Path, seeds: Sequence[int]) -> tuple[str, dict[str, Any] | None]:
    """Fleiss κ, Cochran's Q, Krippendorff α, IoU, Jaccard and survivors of the structured good tickets."""
    tickets = _good_tickets(root, seeds, "structured")
    if len(tickets) < 2:
        return "Seed statistics need at least two seeds with a structured ticket.", None
    from ..analysis import agreement_table, mask_agreement

    agreement = mask_agreement(tickets)
    task = json.loads((root / "run_config.json").read_text())["config"]["task_name"]
    return agreement_table({task: agreement}), agreement.to_dict()


def plots_section(root: Path, seeds: Sequence[int], plots_dir: Path) -> list[tuple[str, Path]]:
    """Head-survival heatmaps (mean, std), MLP survival bars and magnitude Q/K/V row survival, as PNG files."""
    from ..analysis import plots

    made: list[tuple[str, Path]] = []
    structured = _good_tickets(root, seeds, "structured")
    if structured:
        made.append(("Head survival across seeds (share of seeds keeping each head)",
                     plots.plot_head_survival(structured, plots_dir / "head_survival.png")))  # fmt: skip
        if len(structured) > 1:
            made.append(("Head survival, standard deviation across seeds",
                         plots.plot_head_survival_std(structured, plots_dir / "head_survival_std.png")))  # fmt: skip
        made.append(("MLP survival across seeds", plots.plot_mlp_survival(structured, plots_dir / "mlp_survival.png")))
    magnitude = _good_tickets(root, seeds, "magnitude")
    if magnitude:
        made.append(("Magnitude tickets: share of surviving Q/K/V rows per head",
                     plots.plot_magnitude_qkv_survival(magnitude, plots_dir / "magnitude_qkv_survival.png")))  # fmt: skip
    return made


def patterns_section(root: Path, plots_dir: Path) -> list[str]:
    """Attention patterns of surviving heads vs. all heads (when the patterns stage ran)."""
    result = _read(root / "patterns" / "result.json")
    if result is None or not result.get("survival"):
        return []
    from ..patterns import plot_pattern_survival, survival_markdown

    plot = plot_pattern_survival(result["survival"], plots_dir / "pattern_survival.png")
    classifier = (
        f"classifier `{result['classifier']}`"
        if result.get("classifier")
        else "classifier shipped with hf-lottery, trained on synthetic maps"
    )
    maps = "norm-based maps" if result.get("norm_based") else "raw attention maps"
    return [
        "## Attention patterns of surviving heads",
        "",
        f"Each head's pattern is the majority vote of the pattern classifier over the {maps} of "
        f"{result['patterns']['num_examples']} dev examples (fine-tuned model of seed {result['seed']}; {classifier}). "
        "Surviving = kept by the structured ticket of every seed.",
        "",
        survival_markdown(result["survival"]),
        "",
        f"![pattern shares](plots/{plot.name})",
        "",
    ]


def build_report(output_dir: str | Path) -> Path:
    """Write ``report/results.json``, ``report/results.csv``, ``report/report.md`` and PNG plots; return report.md."""
    root = Path(output_dir)
    data = collect(root)
    run = data["run"]
    config = run["config"]
    report_dir = root / "report"
    table, rows = main_table(data)
    stats_md, stats = statistics_section(root, config["seeds"])
    figures = plots_section(root, config["seeds"], report_dir / "plots")
    results = {
        "meta": {k: v for k, v in run.items() if k != "fingerprint"},
        "full": data["full"],
        "pruned": data["pruned"],
        "retrained": data["retrained"],
        "tickets": data["tickets"],
        "seed_statistics": stats,
        "patterns": _read(root / "patterns" / "result.json"),
        "table": rows,
    }
    write_json(report_dir / "results.json", results)
    write_text(report_dir / "results.csv", to_csv(data))
    lines = [
        f"# Lottery tickets: {config['task_name']} on {run.get('base_model', config['model_name_or_path'])}",
        "",
        run.get("model_note", ""),
        "",
        f"Seeds: {', '.join(map(str, config['seeds']))}. Search data (importance and stop rule): "
        f"**{config['search_data']}**"
        + (
            " — the same dev set the table reports, as in the paper, so 'pruned' scores are optimistic."
            if config["search_data"] == "dev"
            else "."
        ),
        f"Stop rule: metric ≥ {config['threshold']} × full model. Metric: {run.get('metric_name')}. "
        f"Fine-tuning: lr {config['learning_rate']}, batch {config['per_device_train_batch_size']}, "
        f"{config['num_train_epochs']:g} epoch(s), max length {config['max_seq_length']}"
        + (f", {config['max_train_samples']} training examples" if config.get("max_train_samples") else "")
        + ".",
        "",
        "## Main table (dev, mean ± std over seeds)",
        "",
        table,
        "",
        "## Tickets per seed",
        "",
        seeds_table(data),
        "",
        "## Agreement of the structured tickets across seeds",
        "",
        stats_md,
        "",
        "## Plots",
        "",
    ]
    lines += [f"![{title}](plots/{path.name})\n\n{title}\n" for title, path in figures]
    lines += patterns_section(root, report_dir / "plots")
    resumed = run.get("commands", [])[1:]
    lines += ["", "## Provenance", "", f"Command: `{run.get('command', '')}`"]
    lines += [f"Resumed / extended with: `{c}`" for c in resumed]
    lines += [f"Git revision: {run.get('git_revision')}",
              f"Packages: {', '.join(f'{k} {v}' for k, v in sorted(run.get('versions', {}).items()))}", ""]  # fmt: skip
    report_md = report_dir / "report.md"
    write_text(report_md, "\n".join(lines))
    logger.info("Report written to %s", report_md)
    return report_md
