"""The report's tables (Markdown and CSV), built from the data `report.collect` read from a run folder."""

from __future__ import annotations

import csv
import io
import statistics
from collections.abc import Sequence
from typing import Any

from ..tasks.paper import PAPER_LABEL, PAPER_MODEL, paper_results
from .layout import RunLayout


KIND_ORDER = ("good", "random", "bad")
GROUPS = ("structured", "magnitude", "imp", "super")
KEPT = (("heads", 144), ("MLPs", 12))  # the paper's counts and bert-base's totals
PAPER_NAMES = {"full model": "Full model", "structured": "s", "magnitude": "m", "super": "s super"}


def mean_std(values: Sequence[float | None]) -> str:
    """``"0.8123 ± 0.0100"`` over the values given (one value alone; "–" for none).

    Example:

    ```python
    >>> mean_std([0.5, 0.7]), mean_std([0.5]), mean_std([])
    ('0.6000 ± 0.1414', '0.5000', '–')

    ```
    """
    values = [v for v in values if v is not None]
    if not values:
        return "–"
    if len(values) == 1:
        return f"{values[0]:.4f}"
    return f"{statistics.mean(values):.4f} ± {statistics.stdev(values):.4f}"


def _fmt(value: Any, spec: str = ".4f") -> str:
    if value is None:
        return "–"
    return f"{value:{spec}}" if isinstance(value, float) else str(value)


def main_table(data: dict[str, Any]) -> tuple[str, list[dict[str, Any]]]:
    """The paper's main table: full model, majority class (classification only), good/random/bad pruned and
    re-fine-tuned; a subnetwork with no result in any seed has no row. For a GLUE task the paper covers, the
    paper's figures stand beside ours (columns and ``paper_pruned`` / ``paper_retrained`` in the rows)."""
    seeds = data["seeds"]
    run = data["run"]
    metric = run.get("metric_name", "score")
    paper = paper_results(data.get("config", {}).get("task_name", ""))

    def scores(table: dict, key: str | None) -> list[float]:
        entries = [table.get(seed, {}) if key is None else table.get(seed, {}).get(key) for seed in seeds]
        return [entry.get("score") for entry in entries if entry]

    rows: list[dict[str, Any]] = [
        {"subnetwork": "full model", "pruned": None, "retrained": scores(data["full"], None)}
    ]
    baseline = run.get("constant_baseline")
    if baseline is not None and not run.get("is_regression"):
        rows.append({"subnetwork": "majority class (constant predictor)", "pruned": None, "retrained": [baseline]})
    for group in GROUPS:
        for kind in KIND_ORDER:
            name = f"{group}/{kind}"
            pruned, retrained = scores(data["pruned"], name), scores(data["retrained"], name)
            if pruned or retrained:
                rows.append({"subnetwork": name, "pruned": pruned, "retrained": retrained})
    for row in rows if paper else []:  # the paper's name: "structured/good" -> "s good"
        group, _, kind = row["subnetwork"].partition("/")
        setting = f"{PAPER_NAMES.get(group, '')} {kind}".strip() if kind else PAPER_NAMES.get(group, "Majority class")
        row.update(paper_pruned=paper.get(f"{setting}, pruned"), paper_retrained=paper.get(f"{setting}, re-FT"))
        row["paper_retrained"] = row["paper_retrained"] or paper.get(setting)

    def line(cells: list[Any]) -> str:  # subnetwork, seeds, pruned, the paper's pruned, re-FT, the paper's re-FT
        return "| " + " | ".join(map(str, cells if paper else [*cells[:3], cells[4]])) + " |"

    ours = [f"pruned, no retraining ({metric})", f"re-fine-tuned from pre-trained ({metric})"]
    lines = [line(["subnetwork", "seeds", ours[0], f"{PAPER_LABEL}, pruned", ours[1], f"{PAPER_LABEL}, re-FT"])]
    lines.append("|---" * (6 if paper else 4) + "|")
    for row in rows:
        pruned = "–" if row["pruned"] is None else mean_std(row["pruned"])
        label = row["subnetwork"] if row["subnetwork"] != "full model" else "full model (fine-tuned)"
        seeds_used = "–" if row["subnetwork"].startswith("majority") else len(row["retrained"])
        paper_cells = [row.get("paper_pruned") or "–", row.get("paper_retrained") or "–"]
        lines.append(line([label, seeds_used, pruned, paper_cells[0], mean_std(row["retrained"]), paper_cells[1]]))
    note = "Paper: bert-base-uncased, full GLUE data, mean ± std over 5 seeds as published (STS-B: Pearson)."
    if (model := run.get("base_model") or "").rsplit("/", 1)[-1] != PAPER_MODEL:
        note += f" This run's model is {model}: compare shapes (what holds, what falls), not levels."
    lines += ["", note] if paper else []
    return "\n".join(lines), rows


def seeds_table(data: dict[str, Any]) -> str:
    """One row per seed: the good tickets found (a ticket that does not exist shows "–", never "no")."""
    head = "| seed | full | heads kept | MLPs kept | structured metric (search data) | magnitude weights kept |"
    lines = [f"{head} magnitude metric | degenerate stop rule |", "|---" * 8 + "|"]
    for seed in data["seeds"]:
        tickets = data["tickets"].get(seed, {})
        s, m = tickets.get("structured/good"), tickets.get("magnitude/good")
        full = data["full"].get(seed, {}).get("score")
        found = [t for t in (s, m) if t]
        degenerate = "–" if not found else ("yes" if any(t.get("degenerate_stop_rule") for t in found) else "no")
        s, m = s or {}, m or {}
        heads = f"{s['kept_heads']}/{s['total_heads']}" if s else "–"
        mlps = f"{s['kept_mlps']}/{s['total_mlps']}" if s else "–"
        weights = _fmt(m.get("encoder_weights_kept"), ".1%")
        lines.append(
            f"| {seed} | {_fmt(full)} | {heads} | {mlps} | {_fmt(s.get('metric'))} | {weights} | "
            f"{_fmt(m.get('metric'))} | {degenerate} |"
        )
    if paper := paper_results(data.get("config", {}).get("task_name", "")):  # heads of 144, MLPs of 12
        heads, mlps = (f"{paper[f'{k} kept']}/{n} ({paper[f'{k} kept in all seeds']} in all seeds)" for k, n in KEPT)
        kept = paper["magnitude: weights kept (%)"]
        lines.append(f"| {PAPER_LABEL}, mean | {paper['Full model']} | {heads} | {mlps} | – | {kept}% | – | – |")
    return "\n".join(lines)


def to_csv(data: dict[str, Any]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["seed", "subnetwork", "setting", "metric", "value"])
    units = [(seed, "full", "fine-tuned", metrics) for seed, metrics in data["full"].items()]
    for setting in ("pruned", "retrained"):
        units += [
            (seed, t, setting, metrics) for seed, tickets in data[setting].items() for t, metrics in tickets.items()
        ]
    writer.writerows([*unit[:3], name, value] for *unit, metrics in units for name, value in metrics.items())
    return buffer.getvalue()


def unit_timings(layout: RunLayout, seeds: Sequence[int]) -> list[tuple[str, str, float, float | None]]:
    """``(stage, unit, wall seconds, CPU seconds)`` of every finished unit, read from the done markers."""
    found: list[tuple[str, str, float, float | None]] = []

    def add(stage: str, unit: str, done: dict[str, Any] | None) -> None:
        if done and isinstance(done.get("seconds"), (int, float)):
            found.append((stage, unit, float(done["seconds"]), done.get("cpu_seconds")))

    for seed in seeds:
        add("finetune", f"seed {seed}", layout.done(layout.finetuned_dir(seed)))
        for folder in sorted((layout.seed_dir(seed) / "tickets").glob("*/good")):
            add("search", f"seed {seed} {folder.parent.name}", layout.done(folder))
        add("sample", f"seed {seed}", layout.done(layout.seed_dir(seed) / "tickets"))
        add("evaluate", f"seed {seed}", layout.done(layout.pruned_dir(seed)))
        for marker in layout.retrained_results(seed):
            done = layout.done(marker.parent)
            compacted = " (compacted)" if done and done.get("compacted") else ""
            add("retrain", f"seed {seed} {marker.parent.name}{compacted}", done)
    add("sample", "super tickets", layout.done(layout.root / "super" / "tickets"))
    add("patterns", "first seed", layout.done(layout.patterns_dir))
    return found


def timing_markdown(layout: RunLayout, seeds: Sequence[int], per_unit: bool = False) -> str:
    """Wall and CPU time per stage (units, totals, shares of the recorded totals), and optionally per unit. CPU
    time (all threads of the process) is the steadier figure on a machine shared with other work."""
    timings = unit_timings(layout, seeds)
    stages: dict[str, list[tuple[float, float]]] = {}
    for stage, _, wall, cpu in timings:
        stages.setdefault(stage, []).append((wall, cpu or 0.0))
    stages["all"] = [(wall, cpu or 0.0) for _, _, wall, cpu in timings]
    wall_total, cpu_total = (sum(v[i] for v in stages["all"]) or 1.0 for i in (0, 1))
    lines = ["| stage | units | wall s | wall share | CPU s | CPU share |", "|---|---|---|---|---|---|"]
    for stage, values in stages.items():
        wall, cpu = sum(v[0] for v in values), sum(v[1] for v in values)
        lines.append(
            f"| {stage} | {len(values)} | {wall:.1f} | {wall / wall_total:.0%} | {cpu:.1f} | {cpu / cpu_total:.0%} |"
        )
    if per_unit:
        lines += ["", "| stage | unit | wall s | CPU s |", "|---|---|---|---|"]
        lines += [
            f"| {stage} | {unit} | {wall:.1f} | {'–' if cpu is None else f'{cpu:.1f}'} |"
            for stage, unit, wall, cpu in timings
        ]
    return "\n".join(lines)
