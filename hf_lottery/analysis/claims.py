"""The paper's four claims checked on one run: paired differences over seeds with a 95 % t-interval, read against a
margin (`RULE`, printed in every report). One seed decides nothing (no per-example predictions are stored to bootstrap
over dev examples)."""

from __future__ import annotations

from typing import Any

import numpy as np


MARGIN, JACCARD_VARIED, JACCARD_SAME = 0.03, 0.5, 0.8  # δ in metric units; claim 4's bounds
RULE = (
    f"Each comparison: paired difference over seeds, mean [95 % t-interval], margin δ = {MARGIN}. '≈': supported "
    "when the interval lies within ±δ, not supported when entirely outside; 'clearly lower': below −δ / above −δ; "
    "'collapsed' (pruned minus the constant predictor, 0 for regression): below +δ / above +δ; 'varied': mean "
    f"pairwise Jaccard of the seeds' kept heads ≤ {JACCARD_VARIED} / ≥ {JACCARD_SAME}. Otherwise, and under two seeds "
    "(or with a seed keeping no head), inconclusive. A claim is supported when all its comparisons are, not when one "
    "is not. Every claim is inconclusive when a seed's full model scores within δ of the constant predictor (nothing "
    "to preserve: the run cannot test the paper)."
)
_TESTS = {  # test -> (supported, not supported), given the interval (low, high)
    "≈": (lambda low, high: -MARGIN <= low and high <= MARGIN, lambda low, high: low > MARGIN or high < -MARGIN),
    "clearly lower": (lambda low, high: high < -MARGIN, lambda low, high: low >= -MARGIN),
    "collapsed": (lambda low, high: high <= MARGIN, lambda low, high: low > MARGIN),
    "varied": (lambda low, high: high <= JACCARD_VARIED, lambda low, high: low >= JACCARD_SAME),
}


def paired_interval(differences: list[float], level: float = 0.95) -> tuple[float, float, float] | None:
    """Mean of the paired differences and its t-interval (`scipy.stats.t`); None for fewer than two."""
    if len(differences) < 2:
        return None
    from scipy import stats

    mean, half = float(np.mean(differences)), stats.t.ppf((1 + level) / 2, len(differences) - 1)
    half *= float(np.std(differences, ddof=1) / np.sqrt(len(differences)))
    return mean, mean - half, mean + half


def _comparison(name: str, test: str, seeds: int, interval: tuple[float, float, float] | None) -> dict[str, Any]:
    yes, no = _TESTS[test]
    verdict = "inconclusive"
    if interval is not None:
        verdict = "supported" if yes(*interval[1:]) else "not supported" if no(*interval[1:]) else verdict
    return {"comparison": name, "test": test, "seeds": seeds, "interval": interval, "verdict": verdict}


def check_claims(full: dict, pruned: dict, retrained: dict, baseline: float | None, agreement: dict | None) -> list:
    """The paper's claims for one run: dev results as `hf_lottery.pipeline.report.collect` reads them (``{seed:
    metrics}``, ``{seed: {ticket: metrics}}``; ``metrics["score"]`` compared), the constant predictor's score, and
    `mask_agreement(...).to_dict()` of the structured good tickets (None under two seeds)."""
    full = {seed: metrics.get("score") for seed, metrics in full.items()}

    def score(table: dict, ticket: str) -> dict:
        return {seed: tickets.get(ticket, {}).get("score") for seed, tickets in table.items()}

    def compare(name: str, a: dict, b: dict, test: str) -> dict[str, Any]:
        seeds = [seed for seed in a if a[seed] is not None and b.get(seed) is not None]
        return _comparison(name, test, len(seeds), paired_interval([a[seed] - b[seed] for seed in seeds]))

    magnitude = (("good", "≈"), ("random", "clearly lower"), ("bad", "clearly lower"))
    good, constant = score(retrained, "structured/good"), dict.fromkeys(full, baseline or 0.0)
    jaccard = agreement["mean_pairwise_jaccard"] if agreement and min(agreement["heads_kept"]) else None
    vary, raters = None if jaccard is None else (jaccard,) * 3, (agreement or {}).get("num_raters", len(full))
    claims = {
        "(1) magnitude: good re-FT ≈ full model; random and bad re-FT clearly lower": [
            compare(f"magnitude/{k} re-FT − full", score(retrained, f"magnitude/{k}"), full, t) for k, t in magnitude
        ],
        "(2) structured: good ≈ random ≈ bad after re-FT": [
            compare(f"structured/{k} − good, re-FT", score(retrained, f"structured/{k}"), good, "≈")
            for k in ("random", "bad")
        ],
        "(3) random and bad collapse without retraining": [
            compare(f"{m}/{k} pruned − constant", score(pruned, f"{m}/{k}"), constant, "collapsed")
            for m in ("structured", "magnitude")
            for k in ("random", "bad")
        ],
        "(4) the surviving heads vary across seeds": [
            _comparison("kept heads, mean pairwise Jaccard", "varied", raters, vary)
        ],
    }
    results, untrained = [], [s for s, value in full.items() if value is None or value - (baseline or 0.0) <= MARGIN]
    for text, comparisons in claims.items():
        verdicts = {c["verdict"] for c in comparisons}
        verdict = "not supported" if "not supported" in verdicts else "inconclusive"
        verdict = "inconclusive" if untrained else "supported" if verdicts == {"supported"} else verdict
        results.append({"claim": text, "verdict": verdict, "comparisons": comparisons})
    return results


def claims_markdown(claims: list[dict[str, Any]]) -> str:
    """The claims as a Markdown table, under the rule that decides them."""

    def evidence(c: dict[str, Any]) -> str:
        (mean, low, high), form = c["interval"] or (None,) * 3, ".3f" if c["test"] == "varied" else "+.3f"
        value = "no interval" if mean is None else f"{mean:{form}}"
        value += f" [{low:{form}}, {high:{form}}]" if mean is not None and low != high else ""
        return f"{c['comparison']} ({c['test']}): {value}, n = {c['seeds']} → {c['verdict']}"

    rows = [f"| {c['claim']} | **{c['verdict']}** | {'; '.join(map(evidence, c['comparisons']))} |" for c in claims]
    return "\n".join([RULE, "", "| claim | verdict | numbers behind it |", "|---|---|---|", *rows])
