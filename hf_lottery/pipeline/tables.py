"""The report's tables (Markdown and CSV), built from the data `report.collect` read from a run folder."""

from __future__ import annotations

import csv
import io
import statistics
from collections.abc import Sequence
from typing import Any

from .layout import RunLayout


KIND_ORDER = ("good", "random", "bad")
GROUPS = ("structured", "magnitude", "imp", "super")


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


def _fmt(value: Any) -> str:
    if value is None:
        return "–"
    return f"{value:.4f}" if isinstance(value, float) else str(value)


def main_table(data: dict[str, Any]) -> tuple[str, list[dict[str, Any]]]:
    """The paper's main table: full model, majority class (classification only), good/random/bad pruned and
    re-fine-tuned; a subnetwork with no result in any seed has no row."""
    seeds = data["seeds"]
    run = data["run"]
    metric = run.get("metric_name", "score")

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
    """One row per seed: the good tickets found (a ticket that does not exist shows "–", never "no")."""
    lines = [
        "| seed | full | heads kept | MLPs kept | structured metric (search data) | magnitude sparsity | "
        "magnitude metric | degenerate stop rule |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for seed in data["seeds"]:
        tickets = data["tickets"].get(seed, {})
        s, m = tickets.get("structured/good"), tickets.get("magnitude/good")
        full = data["full"].get(seed, {}).get("score")
        found = [t for t in (s, m) if t]
        degenerate = "–" if not found else ("yes" if any(t.get("degenerate_stop_rule") for t in found) else "no")
        s, m = s or {}, m or {}
        heads = f"{s['kept_heads']}/{s['total_heads']}" if s else "–"
        mlps = f"{s['kept_mlps']}/{s['total_mlps']}" if s else "–"
        lines.append(
            f"| {seed} | {_fmt(full)} | {heads} | {mlps} | {_fmt(s.get('metric'))} | {_fmt(m.get('sparsity'))} | "
            f"{_fmt(m.get('metric'))} | {degenerate} |"
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
    wall_total = sum(t[2] for t in timings) or 1.0
    cpu_total = sum(t[3] or 0.0 for t in timings) or 1.0
    stages: dict[str, list[tuple[float, float]]] = {}
    for stage, _, wall, cpu in timings:
        stages.setdefault(stage, []).append((wall, cpu or 0.0))
    lines = ["| stage | units | wall s | wall share | CPU s | CPU share |", "|---|---|---|---|---|---|"]
    for stage, values in stages.items():
        wall, cpu = sum(v[0] for v in values), sum(v[1] for v in values)
        lines.append(
            f"| {stage} | {len(values)} | {wall:.1f} | {wall / wall_total:.0%} | {cpu:.1f} | {cpu / cpu_total:.0%} |"
        )
    lines.append(
        f"| all | {len(timings)} | {sum(t[2] for t in timings):.1f} | 100% | {sum(t[3] or 0 for t in timings):.1f} | 100% |"
    )
    if per_unit:
        lines += ["", "| stage | unit | wall s | CPU s |", "|---|---|---|---|"]
        lines += [
            f"| {stage} | {unit} | {wall:.1f} | {'–' if cpu is None else f'{cpu:.1f}'} |"
            for stage, unit, wall, cpu in timings
        ]
    return "\n".join(lines)
