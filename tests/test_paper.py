"""The paper beside every report: its figures (shipped CSV, matched by task) and its four claims, checked on a run."""

import json
import random
import shutil

import pytest
from scipy import stats

from hf_lottery.analysis.claims import JACCARD_SAME, JACCARD_VARIED, MARGIN, check_claims, paired_interval
from hf_lottery.tasks.paper import PAPER_LABEL, paper_results


def test_paper_figures_are_matched_by_task_and_printed_as_published():
    sst2 = paper_results("SST-2")
    assert sst2["Full model"] == "0.93 ± 0.00" and sst2["Majority class"] == "0.51"
    assert sst2["s good, pruned"] == "0.84" and sst2["s super bad, re-FT"] == "0.83" and sst2["heads kept"] == "67"
    assert paper_results("cola")["m bad, re-FT"] == "0.03 ± 0.03"
    assert paper_results("MNLI")["Full model"] == "0.85 ± 0.00"
    assert paper_results("demo") == {} and paper_results("mnli-mm") == {} and paper_results("my_data") == {}


def _table(scores):
    """``{seed: {ticket: score}}`` -> ``{seed: {ticket: {"score": score}}}``."""
    return {seed: {name: {"score": value} for name, value in tickets.items()} for seed, tickets in scores.items()}


def _synthetic(seeds, full, retrained, pruned):
    """Scores per seed: a base value plus seed noise of ±0.004."""
    noise = {seed: 0.004 * (i % 3 - 1) for i, seed in enumerate(seeds)}
    return (
        {seed: {"score": full + noise[seed]} for seed in seeds},
        _table({seed: {k: v + noise[seed] for k, v in pruned.items()} for seed in seeds}),
        _table({seed: {k: v - noise[seed] for k, v in retrained.items()} for seed in seeds}),
    )


PAPER_LIKE = dict(
    full=0.90,
    retrained={
        "magnitude/good": 0.90,
        "magnitude/random": 0.80,
        "magnitude/bad": 0.78,
        "structured/good": 0.88,
        "structured/random": 0.885,
        "structured/bad": 0.875,
    },
    pruned={"structured/random": 0.51, "structured/bad": 0.50, "magnitude/random": 0.52, "magnitude/bad": 0.49},
)


def test_claims_supported_when_the_intervals_say_so():
    full, pruned, retrained = _synthetic([1, 2, 3, 4, 5], **PAPER_LIKE)
    agreement = {"num_raters": 5, "heads_kept": [60, 70, 65, 68, 62], "mean_pairwise_jaccard": 0.35}
    claims = check_claims(full, pruned, retrained, 0.51, agreement)
    assert [c["verdict"] for c in claims] == ["supported"] * 4
    first = claims[0]["comparisons"][0]
    assert first["seeds"] == 5 and first["test"] == "≈" and abs(first["interval"][0]) < MARGIN


def test_claims_not_supported_when_the_numbers_contradict_them():
    values = {**PAPER_LIKE, "retrained": {**PAPER_LIKE["retrained"], "magnitude/random": 0.899, "structured/bad": 0.7}}
    values["pruned"] = {**values["pruned"], "magnitude/bad": 0.85}  # survives without retraining
    full, pruned, retrained = _synthetic([1, 2, 3], **values)
    agreement = {"num_raters": 3, "heads_kept": [6, 6, 6], "mean_pairwise_jaccard": 0.9}
    claims = check_claims(full, pruned, retrained, 0.51, agreement)
    assert [c["verdict"] for c in claims] == ["not supported"] * 4
    assert [c["verdict"] for c in claims[0]["comparisons"]] == ["supported", "not supported", "supported"]


def test_claims_inconclusive_with_one_seed_wide_intervals_or_no_data():
    one = check_claims(*_synthetic([7], **PAPER_LIKE), 0.51, None)
    assert [c["verdict"] for c in one] == ["inconclusive"] * 4  # a point estimate never supports a claim
    assert one[0]["comparisons"][0]["interval"] is None and one[3]["comparisons"][0]["seeds"] == 1
    full = {1: {"score": 0.9}, 2: {"score": 0.7}}  # two seeds that disagree: a wide interval
    retrained = _table({1: {"magnitude/good": 0.7}, 2: {"magnitude/good": 0.9}})
    wide = check_claims(full, {}, retrained, 0.5, {"num_raters": 2, "heads_kept": [4, 0], "mean_pairwise_jaccard": 0})
    assert [c["verdict"] for c in wide] == ["inconclusive"] * 4  # a seed keeping no head is no evidence either
    seeds = [1, 2, 3]
    trained = check_claims(*_synthetic(seeds, **PAPER_LIKE), 0.51, None)  # full models well above the constant level
    at_constant = {seed: {"score": 0.52} for seed in seeds}  # full models within δ of the constant predictor
    stalled = check_claims(at_constant, *_synthetic(seeds, **PAPER_LIKE)[1:3], 0.51, None)
    assert [c["verdict"] for c in stalled] == ["inconclusive"] * 4 != [c["verdict"] for c in trained]
    mean, low, high = paired_interval([0.2, -0.2])
    assert mean == 0 and high == pytest.approx(0.2 * stats.t.ppf(0.975, 1)) and low == -high


def _sst2_folder(root, train=48, dev=24):
    """A tiny SST-2-format folder (header ``sentence\\tlabel``), words that carry the label."""
    words = {1: ["good", "great", "fine", "nice"], 0: ["bad", "awful", "poor", "dull"]}
    rng = random.Random(0)
    folder = root / "SST-2"
    folder.mkdir(parents=True)
    for name, count in (("train.tsv", train), ("dev.tsv", dev)):
        rows = [f"a {rng.choice(words[i % 2])} film\t{i % 2}" for i in range(count)]
        (folder / name).write_text("sentence\tlabel\n" + "\n".join(rows) + "\n", encoding="utf-8")
    return root


def _expected_verdict(test, scores_a, scores_b):
    """The verdict recomputed from the report's numbers with the documented rule (independently of the module)."""
    diffs = [a - b for a, b in zip(scores_a, scores_b)]
    if len(diffs) < 2:
        return "inconclusive"
    mean, sd = sum(diffs) / len(diffs), stats.tstd(diffs)
    half = stats.t.ppf(0.975, len(diffs) - 1) * sd / len(diffs) ** 0.5
    low, high = mean - half, mean + half
    yes, no = {
        "≈": (-MARGIN <= low and high <= MARGIN, low > MARGIN or high < -MARGIN),
        "clearly lower": (high < -MARGIN, low >= -MARGIN),
        "collapsed": (high <= MARGIN, low > MARGIN),
    }[test]
    return "supported" if yes else "not supported" if no else "inconclusive"


def _check_verdicts_follow_from_numbers(results):
    baseline = results["meta"]["constant_baseline"]
    full = {seed: r["score"] for seed, r in results["full"].items()}
    for claim in results["claims"][:3]:
        for c in claim["comparisons"]:
            name = c["comparison"].split(" ")[0]
            stage = "pruned" if " pruned " in c["comparison"] else "retrained"
            ours = {seed: t[name]["score"] for seed, t in results[stage].items() if name in t}
            if "constant" in c["comparison"]:
                other = {seed: baseline for seed in ours}
            elif "full" in c["comparison"]:
                other = full
            else:
                other = {seed: t["structured/good"]["score"] for seed, t in results["retrained"].items()}
            seeds = sorted(set(ours) & set(other))
            assert c["verdict"] == _expected_verdict(c["test"], [ours[s] for s in seeds], [other[s] for s in seeds])
        verdicts = {c["verdict"] for c in claim["comparisons"]}
        expected = "supported" if verdicts == {"supported"} else "inconclusive"
        expected = "not supported" if "not supported" in verdicts else expected
        untrained = any(score - baseline <= MARGIN for score in full.values())  # nothing to preserve: no test
        assert claim["verdict"] == ("inconclusive" if untrained else expected)
    agreement = results["seed_statistics"]
    jaccard = agreement["mean_pairwise_jaccard"] if agreement and min(agreement["heads_kept"]) else None
    fourth = results["claims"][3]["verdict"]
    if jaccard is None or JACCARD_VARIED < jaccard < JACCARD_SAME:
        assert fourth == "inconclusive"
    else:
        assert fourth == ("supported" if jaccard <= JACCARD_VARIED else "not supported")


def test_report_sets_the_paper_beside_a_glue_run_and_checks_its_claims(tiny_pretrained, tmp_path):
    from hf_lottery.pipeline import RunSettings, build_report, run_pipeline

    settings = RunSettings.from_kwargs(
        task_name="sst2",
        data_dir=str(_sst2_folder(tmp_path / "glue")),
        model_name_or_path=tiny_pretrained,
        output_dir=str(tmp_path / "run"),
        seeds=[1],
        learning_rate=1e-3,
        num_train_epochs=1.0,
        per_device_train_batch_size=16,
        max_seq_length=16,
        magnitude_max_steps=2,
        search_batch_size=16,
        on_degenerate="ignore",
        stages=["finetune", "search", "sample", "evaluate", "retrain", "report"],
    )
    report = run_pipeline(settings)
    text = report.read_text()
    header = f"| subnetwork | seeds | pruned, no retraining (accuracy) | {PAPER_LABEL}, pruned |"
    assert header in text and f"| {PAPER_LABEL}, re-FT |" in text
    assert "| full model (fine-tuned) | 1 | – | – | " in text and "| 0.93 ± 0.00 |" in text
    assert "| majority class (constant predictor) | – | – | – | 0.5000 | 0.51 |" in text
    assert "| structured/good | 1 | " in text and " | 0.84 | " in text and " | 0.87 ± 0.07 |" in text
    assert "| magnitude/bad | 1 | " in text and " | 0.82 ± 0.00 |" in text
    paper_row = (
        f"| {PAPER_LABEL}, mean | 0.93 ± 0.00 | 67/144 (19 in all seeds) | 7.8/12 (2 in all seeds) | – | 43.6% |"
    )
    assert paper_row in text and "\n| 1 | " in text  # our seed beside the paper's ticket sizes
    assert "compare shapes" in text and "## Paper's claims" in text
    claims = text.split("## Paper's claims")[1].split("## Tickets per seed")[0]
    assert claims.count("| **inconclusive** |") == 4 and "→ supported" not in claims
    results = json.loads((report.parent / "results.json").read_text())
    assert results["paper"]["Full model"] == "0.93 ± 0.00" and results["table"][0]["paper_retrained"] == "0.93 ± 0.00"
    assert [c["verdict"] for c in results["claims"]] == ["inconclusive"] * 4
    _check_verdicts_follow_from_numbers(results)

    # Two more seeds, made by copying seed 1 with scores moved per seed: the claims now have intervals.
    root = tmp_path / "run"
    run_config = json.loads((root / "run_config.json").read_text())
    run_config["config"]["pipeline"]["seeds"] = [1, 2, 3]
    (root / "run_config.json").write_text(json.dumps(run_config))
    for seed, shift in ((2, 0.01), (3, -0.02)):
        shutil.copytree(root / "seed_1", root / f"seed_{seed}")
        for marker in (root / f"seed_{seed}").rglob("result.json"):
            done = json.loads(marker.read_text())
            named = [(done.get("ticket", "full"), done.get("dev"))]
            named += [(name, ticket["dev"]) for name, ticket in done.get("tickets", {}).items()]
            for name, dev in named:
                if dev and "score" in dev:
                    dev["score"] += shift * (1 + len(name) % 3)  # subnetworks move differently
            marker.write_text(json.dumps(done))
    results = json.loads((build_report(root).parent / "results.json").read_text())
    assert results["claims"][0]["comparisons"][0]["seeds"] == 3 and results["claims"][0]["comparisons"][0]["interval"]
    untrained = any(r["score"] - results["meta"]["constant_baseline"] <= MARGIN for r in results["full"].values())
    copied = "not supported" if min(results["seed_statistics"]["heads_kept"]) and not untrained else "inconclusive"
    assert results["claims"][3]["verdict"] == copied  # the same heads in every seed (or none: no evidence)
    _check_verdicts_follow_from_numbers(results)


def test_tasks_the_paper_does_not_cover_get_no_paper_column():
    from hf_lottery.pipeline.tables import main_table

    run = {"metric_name": "accuracy", "constant_baseline": 0.5}
    data = {"seeds": [1], "config": {"task_name": "demo"}, "run": run, "full": {1: {"score": 0.8}}, "pruned": {}}
    data["retrained"] = {}
    table, rows = main_table(data)
    assert "paper" not in table and "paper_retrained" not in rows[0]
    assert table.splitlines()[2] == "| full model (fine-tuned) | 1 | – | 0.8000 |"
