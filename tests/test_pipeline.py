"""The pipeline on a tiny BERT with the packaged tokenizer: stage skipping, crash-then-resume, the report."""

import json
from pathlib import Path

import pytest
import torch

from hf_lottery.pipeline import PipelineConfig, RunSettings, build_report, run_pipeline
from hf_lottery.pipeline import stages as stage_module


def config(model, output_dir, **overrides):
    values = dict(
        task_name="demo", model_name_or_path=model, output_dir=str(output_dir), seeds=[1, 2], learning_rate=1e-3,
        num_train_epochs=1.0, per_device_train_batch_size=16, max_seq_length=32, max_train_samples=48,
        max_eval_samples=32, magnitude_max_steps=2, search_batch_size=16, on_degenerate="ignore",
        stages=["finetune", "search", "sample", "evaluate", "retrain", "patterns", "report"], pattern_examples=4,
    )  # fmt: skip
    values.update(overrides)
    return RunSettings.from_kwargs(**values)


class CountingTrain:
    def __init__(self, fail_at=None):
        self.calls = 0
        self.fail_at = fail_at
        self.real = stage_module._train

    def __call__(self, *args, **kwargs):
        self.calls += 1
        if self.calls == self.fail_at:
            raise RuntimeError("simulated crash")
        return self.real(*args, **kwargs)


def results(root):
    data = json.loads((root / "report" / "results.json").read_text())
    return {k: data[k] for k in ("full", "pruned", "retrained")}


@pytest.fixture(scope="module")
def full_run(tiny_pretrained, tmp_path_factory):
    from hf_lottery.tickets.ticket import LotteryTicket

    root = tmp_path_factory.mktemp("full")
    counter = CountingTrain()
    written = []
    real_save = LotteryTicket.save_pretrained

    def recording_save(self, folder, *args, **kwargs):
        written.append(Path(folder))
        return real_save(self, folder, *args, **kwargs)

    real_read = LotteryTicket.from_pretrained.__func__
    reads = []

    def counting_read(cls, folder, *args, **kwargs):
        reads.append(Path(folder))
        return real_read(cls, folder, *args, **kwargs)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(stage_module, "_train", counter)
        mp.setattr(LotteryTicket, "save_pretrained", recording_save)
        mp.setattr(LotteryTicket, "from_pretrained", classmethod(counting_read))
        report = run_pipeline(config(tiny_pretrained, root))
    return root, report, counter.calls, written, reads


def test_all_stages_write_their_outputs(full_run):
    root, report, trainings, _, _ = full_run
    assert trainings == 2 * (1 + 6 + 3)  # per seed: fine-tune, 3 kinds x 2 methods, 3 super tickets
    for seed in (1, 2):
        for method in ("structured", "magnitude"):
            for kind in ("good", "random", "bad"):
                assert (root / f"seed_{seed}" / "tickets" / method / kind / "ticket_config.json").is_file()
    assert (root / "super" / "tickets" / "structured" / "good" / "ticket_config.json").is_file()
    text = report.read_text()
    assert "| structured/good |" in text and "| super/bad |" in text and "Fleiss" in text
    assert (
        "Attention patterns of surviving heads" in text
        and (root / "report" / "plots" / "pattern_survival.png").is_file()
    )
    assert (root / "report" / "results.csv").read_text().startswith("seed,subnetwork,setting,metric,value")
    meta = json.loads((root / "report" / "results.json").read_text())["meta"]
    assert meta["config"]["pipeline"]["seeds"] == [1, 2] and "transformers" in meta["versions"] and meta["command"]
    assert meta["config"]["training"]["learning_rate"] == 1e-3 and meta["config"]["search"]["magnitude_max_steps"] == 2
    assert not list(root.rglob("*.tmp")) and not (root / ".work").exists()


def test_every_ticket_written_is_kept_and_each_read_once(full_run):
    root, _, _, written, reads = full_run
    assert written and all((folder / "ticket_config.json").is_file() for folder in written)
    assert not list(root.rglob("hf_lottery_ticket"))  # no copy in a Trainer folder
    assert len(reads) == len(set(reads))  # the run (report included) reads every ticket once


def test_finetuned_model_records_its_pretrained_model(full_run, tiny_pretrained):
    root = full_run[0]
    saved = json.loads((root / "seed_1" / "finetuned" / "config.json").read_text())
    assert saved["hf_lottery_base_model"] == str(Path(tiny_pretrained).resolve())
    done = json.loads((root / "seed_1" / "finetuned" / "result.json").read_text())
    assert done["base_model"] == str(Path(tiny_pretrained).resolve()) and done["seconds"] > 0


def test_structured_tickets_are_retrained_compacted_and_timed(full_run):
    root = full_run[0]
    for name, compacted in (("structured_good", True), ("super_bad", True), ("magnitude_good", False)):
        done = json.loads((root / "seed_1" / "retrained" / name / "result.json").read_text())
        assert done["compacted"] is compacted and done["seconds"] >= done["train_seconds"] > 0
    text = (root / "report" / "report.md").read_text()
    assert "## Time per stage" in text and "| retrain | 18 | " in text and "(compacted)" in text


def test_report_captions_once_and_no_empty_rows(full_run):
    text = (full_run[0] / "report" / "report.md").read_text()
    assert text.count("Head survival across seeds") == 1
    assert "(0) |" not in text and "Incomplete run" not in text
    assert "| majority class (constant predictor) |" in text  # a classification task
    assert "sampled with seed 1" in text  # the pattern stage says which dev rows it used
    assert "32 of 400 examples of the validation split (truncated by --max_eval_samples)" in text


def test_patterns_stage_samples_dev_rows_with_the_seed(full_run):
    result = json.loads((full_run[0] / "patterns" / "result.json").read_text())
    rows = result["dev_rows"]
    assert rows["count"] == 4 and rows["of"] == 32 and rows["sampled_with_seed"] == 1
    assert rows["indices"] != [0, 1, 2, 3] and len(set(rows["indices"])) == 4


def test_report_of_an_unfinished_run_says_so(full_run, tmp_path, capfd):
    import shutil

    from hf_lottery.cli import main

    root = tmp_path / "run"
    shutil.copytree(full_run[0], root)
    (root / "seed_2" / "retrained" / "magnitude_bad" / "result.json").unlink()
    shutil.rmtree(root / "seed_2" / "pruned")
    assert main(["report", str(root)]) == 0
    text = (root / "report" / "report.md").read_text()
    assert "**Incomplete run.** Missing: pruned evaluation of seed 2; re-fine-tuned magnitude/bad of seed 2." in text
    err = capfd.readouterr().err
    assert "incomplete run" in err.lower() and "magnitude/bad of seed 2" in err
    assert json.loads((root / "report" / "results.json").read_text())["complete"] is False


def test_another_model_over_a_run_without_run_config_is_refused(full_run, tmp_path):
    import shutil

    root = tmp_path / "run"
    shutil.copytree(full_run[0], root)
    (root / "run_config.json").unlink()
    with pytest.raises(
        ValueError, match=r"seed_1 was fine-tuned from .*tiny_pretrained.*, not from --model_name_or_path .*MiniLM"
    ):
        run_pipeline(config("minilm", root))


def test_rerun_skips_finished_stages(full_run, tiny_pretrained):
    root = full_run[0]
    before = results(root)
    counter = CountingTrain()
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(stage_module, "_train", counter)
        run_pipeline(config(tiny_pretrained, root))
    assert counter.calls == 0
    assert results(root) == before


def test_crash_then_resume_loses_nothing(full_run, tiny_pretrained, tmp_path):
    crash = CountingTrain(fail_at=9)  # in the retrain stage of the first seed
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(stage_module, "_train", crash)
        with pytest.raises(RuntimeError, match="simulated crash"):
            run_pipeline(config(tiny_pretrained, tmp_path))
    finished = sorted(p.parent.name for p in (tmp_path / "seed_1" / "retrained").glob("*/result.json"))
    assert len(finished) == 6  # fine-tunes of both seeds + 6 retrains done before the crash
    resume = CountingTrain()
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(stage_module, "_train", resume)
        run_pipeline(config(tiny_pretrained, tmp_path))
    assert crash.calls - 1 + resume.calls == 20  # nothing trained twice
    assert results(tmp_path) == results(full_run[0])  # same numbers as the uninterrupted run


@pytest.mark.parametrize(
    "change, flag",
    [({"learning_rate": 5e-4}, "--learning_rate"), ({"warmup_steps": 2}, "--warmup_steps"),
     ({"threshold": 0.8}, "--threshold"), ({"max_seq_length": 16}, "--max_seq_length")],
)  # fmt: skip
def test_changed_settings_are_refused(full_run, tiny_pretrained, change, flag):
    with pytest.raises(ValueError, match=f"other settings \\({flag} "):
        run_pipeline(config(tiny_pretrained, full_run[0], **change))


def test_report_command_rebuilds(full_run):
    from hf_lottery.cli import main

    root = full_run[0]
    (root / "report" / "report.md").unlink()
    assert main(["report", str(root)]) == 0
    assert (root / "report" / "report.md").is_file()
    with pytest.raises(FileNotFoundError, match="not a pipeline run folder"):
        build_report(root / "seed_1")


def test_config_validation():
    with pytest.raises(ValueError, match="`stages` must be one or more of"):
        PipelineConfig(task_name="demo", stages=["dance"])
    with pytest.raises(ValueError, match="must include 'good'"):
        PipelineConfig(task_name="demo", kinds=["random"])
    with pytest.raises(ValueError, match="hub_model_id"):
        RunSettings.from_kwargs(task_name="demo", output_dir="x", push_to_hub=True)


def test_patterns_stage_with_own_classifier_and_norm_based_maps(full_run, tiny_pretrained, tmp_path):
    import shutil

    from hf_lottery.patterns import PatternClassifier

    root = tmp_path / "run"
    shutil.copytree(full_run[0], root)
    classifier = PatternClassifier.from_pretrained().save_pretrained(tmp_path / "my_classifier")
    counter = CountingTrain()
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(stage_module, "_train", counter)
        report = run_pipeline(
            config(tiny_pretrained, root, pattern_classifier=str(classifier), pattern_norm_based=True)
        )
    assert counter.calls == 0  # only the patterns stage and the report re-ran
    result = json.loads((root / "patterns" / "result.json").read_text())
    assert result["classifier"] == str(classifier) and result["norm_based"] is True
    assert len(result["patterns"]["labels"]) == 2 and len(result["patterns"]["labels"][0]) == 4  # tiny: 2 x 4 heads
    text = report.read_text()
    assert f"classifier `{classifier}`" in text and "norm-based maps" in text


def test_cli_reports_a_missing_model_as_an_error_not_a_traceback(tmp_path, capfd):
    from hf_lottery.cli import main

    missing = tmp_path / "no-such-model"
    code = main(["find", "--model", str(missing), "--task_name", "sst2", "--output_dir", str(tmp_path / "t")])
    assert code == 1
    err = capfd.readouterr().err
    assert "find: error:" in err and str(missing) in err and "Traceback" not in err


@pytest.mark.filterwarnings("ignore::hf_lottery.search.stop_rule.DegenerateStopRuleWarning")  # tiny model, 32 examples
def test_cli_evaluate_find_and_predict_on_a_finished_run(full_run, tmp_path, capsys):
    from hf_lottery import LotteryTicket
    from hf_lottery.cli import main

    root = full_run[0]
    model = str(root / "seed_1" / "finetuned")
    data = ["--task_name", "demo", "--max_eval_samples", "32"]
    assert main(["evaluate", "--model", model, *data]) == 0
    full = json.loads((root / "report" / "results.json").read_text())["full"]["1"]
    assert json.loads(capsys.readouterr().out)["score"] == full["score"]  # the pipeline's own dev score
    ticket = root / "seed_1" / "tickets" / "structured" / "good"
    assert main(["evaluate", "--model", model, *data, "--ticket", str(ticket)]) == 0
    pruned = json.loads((root / "report" / "results.json").read_text())["pruned"]["1"]["structured/good"]
    assert json.loads(capsys.readouterr().out)["score"] == pruned["score"]
    found = tmp_path / "found"
    args = [
        "--method",
        "structured",
        "--max_seq_length",
        "32",
        "--magnitude_max_steps",
        "2",
        "--search_batch_size",
        "16",
    ]
    assert main(["find", "--model", model, *data, *args, "--output_dir", str(found)]) == 0
    original = LotteryTicket.from_pretrained(found)
    assert original.masks_equal(LotteryTicket.from_pretrained(ticket))
    assert (
        original.base_model
        == json.loads((root / "seed_1" / "finetuned" / "config.json").read_text())["hf_lottery_base_model"]
    )  # from the fine-tuned model's config, never the fine-tuned folder
    again = tmp_path / "again"
    assert main(["find", "--like", str(found), "--model", model, "--output_dir", str(again)]) == 0
    regenerated = LotteryTicket.from_pretrained(again)
    assert regenerated.masks_equal(original) and regenerated.extra["search_config"] == original.extra["search_config"]
    capsys.readouterr()
    tickets = [str(root / f"seed_{s}" / "tickets" / "structured" / "good") for s in (1, 2)]
    output = tmp_path / "patterns.json"
    args = ["patterns", "predict", "--model", model, "--task_name", "demo", "--num_examples", "4"]
    assert main([*args, "--tickets", *tickets, "--output", str(output)]) == 0
    assert "| demo | all (8) |" in capsys.readouterr().out
    assert len(json.loads(output.read_text())["patterns"]["labels"]) == 2


def test_regression_tasks_get_no_majority_baseline_and_missing_tickets_no_verdict():
    from hf_lottery.pipeline.tables import main_table, seeds_table

    data = {
        "seeds": [1, 2], "run": {"metric_name": "pearson_spearman", "is_regression": True, "constant_baseline": None},
        "full": {1: {"score": 0.8}}, "pruned": {}, "retrained": {}, "tickets": {1: {}, 2: {}},
    }  # fmt: skip
    table, rows = main_table(data)
    assert [row["subnetwork"] for row in rows] == ["full model"] and "majority" not in table
    lines = seeds_table(data).splitlines()
    assert lines[2] == "| 1 | 0.8000 | – | – | – | – | – | – |" and lines[3].startswith("| 2 | – |")


def test_imp_pipeline(tiny_pretrained, tmp_path):
    report = run_pipeline(
        config(tiny_pretrained, tmp_path, seeds=[1], methods=["imp"], stages=["finetune", "search", "report"])
    )
    assert (tmp_path / "seed_1" / "tickets" / "imp" / "good" / "ticket_config.json").is_file()
    assert report.is_file()


def test_compacted_retrained_model_is_saved_dense_with_the_ticket_baked_in(full_run, tiny_pretrained, tmp_path):
    import torch
    from transformers import AutoModelForSequenceClassification

    from hf_lottery.pipeline.context import RunContext
    from hf_lottery.pipeline.units import rewind_ticket, save_retrained
    from hf_lottery.tickets.ticket import LotteryTicket

    ctx = RunContext(config(tiny_pretrained, tmp_path / "run"))
    ticket = LotteryTicket.from_pretrained(full_run[0] / "seed_1" / "tickets" / "structured" / "bad")
    ticket = ticket.copy(mlp_mask=torch.tensor([True, False]))  # one MLP removed as well
    model, handle = rewind_ticket(ctx, ticket, seed=3, compact=True)
    assert handle is None and sum(p.numel() for p in model.parameters()) < sum(
        p.numel() for p in AutoModelForSequenceClassification.from_pretrained(tiny_pretrained).parameters()
    )
    optimizer = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.5)
    batch = {"input_ids": torch.tensor([[2, 10, 11, 12, 3], [2, 13, 14, 3, 0]]),
             "attention_mask": torch.tensor([[1, 1, 1, 1, 1], [1, 1, 1, 1, 0]]), "labels": torch.tensor([0, 1])}  # fmt: skip
    for _ in range(3):
        model(**batch).loss.backward()
        optimizer.step()
        optimizer.zero_grad()
    model.eval()
    save_retrained(ctx, model, ticket, tmp_path / "saved")
    reloaded = AutoModelForSequenceClassification.from_pretrained(tmp_path / "saved").eval()
    inputs = {k: v for k, v in batch.items() if k != "labels"}
    with torch.no_grad():
        torch.testing.assert_close(reloaded(**inputs).logits, model(**inputs).logits, atol=1e-5, rtol=0)
    saved = json.loads((tmp_path / "saved" / "config.json").read_text())
    assert saved["hf_lottery_base_model"] == str(Path(tiny_pretrained).resolve())
    assert LotteryTicket.from_pretrained(tmp_path / "saved").masks_equal(ticket)


def write_sst2(folder: Path, rows: int = 64) -> Path:
    """A small SST-2 folder of TSVs (two-word sentiment sentences), under a GLUE root."""
    words = (["bad", "dull", "awful", "poor"], ["good", "great", "fine", "lovely"])
    (folder / "SST-2").mkdir(parents=True)
    for name, count in (("train.tsv", rows), ("dev.tsv", rows // 2)):
        lines = [f"a {words[i % 2][i % 4]} {words[i % 2][i // 2 % 4]} film\t{i % 2}" for i in range(count)]
        (folder / "SST-2" / name).write_text("sentence\tlabel\n" + "\n".join(lines) + "\n")
    return folder


def test_several_tasks_run_as_one_grid_with_a_cross_task_report(full_run, tiny_pretrained, tmp_path, capsys):
    from hf_lottery import LotteryTicket
    from hf_lottery.cli import main

    glue, grid = write_sst2(tmp_path / "glue"), tmp_path / "grid"
    stages = ["finetune", "search", "sample", "evaluate", "report"]
    flags = ["--model_name_or_path", tiny_pretrained, "--output_dir", str(grid), "--seeds", "1", "2",
             "--learning_rate", "1e-3", "--num_train_epochs", "1", "--per_device_train_batch_size", "16",
             "--max_seq_length", "32", "--max_train_samples", "48", "--max_eval_samples", "32", "--magnitude_max_steps",
             "2", "--search_batch_size", "16", "--on_degenerate", "ignore", "--pattern_examples", "4"]  # fmt: skip
    assert main(["run", "--task_name", "demo", "SST-2", "--data_dir", str(glue), "--stages", *stages, *flags]) == 0
    out = capsys.readouterr().out
    assert "\ndemo\n" in out and "\nsst2\n" in out and f"Report: {grid / 'report' / 'report.md'}" in out
    # the same settings given in Python resume the run the command line started
    settings = config(tiny_pretrained, grid, task_name=["demo", "SST-2"], data_dir=str(glue), stages=stages)
    assert run_pipeline(settings) == grid / "report" / "report.md"
    assert json.loads((grid / "run_config.json").read_text())["tasks"] == ["demo", "sst2"]
    # each task is an ordinary run folder: demo gives what a run of demo alone gives, sst2 read the GLUE root
    got, alone = results(grid / "demo"), results(full_run[0])
    assert (got["full"], got["pruned"]) == (alone["full"], alone["pruned"])
    sst2 = json.loads((grid / "sst2" / "run_config.json").read_text())
    assert (sst2["config"]["pipeline"]["data_dir"], sst2["data"]["train"], sst2["data"]["dev"]) == (str(glue), 48, 32)
    # the cross-task report, on structured tickets written by hand: survivors demo {1-1, 1-2, 2-1}, sst2 {1-1, 2-1, 2-3}
    masks = {"demo": ([[1, 1, 0, 0], [1, 0, 1, 0], [0] * 4], [[1, 1, 1, 0], [1, 0, 0, 0], [1] * 4]),
             "sst2": ([[1, 0, 0, 0], [1, 1, 1, 1], [0] * 4], [[1, 1, 0, 1], [1, 0, 1, 0], [0] * 4])}  # fmt: skip
    for task, per_seed in masks.items():
        for seed, (head_mask, mlp_mask) in zip((1, 2), zip(per_seed, ([1, 1, 0], [1, 0, 0]))):
            ticket = LotteryTicket(head_mask=torch.tensor(head_mask), mlp_mask=torch.tensor(mlp_mask))
            ticket.save_pretrained(grid / task / f"seed_{seed}" / "tickets" / "structured" / "good")
    report = build_report(grid).read_text()
    data = json.loads((grid / "report" / "results.json").read_text(), parse_constant=pytest.fail)  # strict JSON
    assert not data["complete"] and any(m.startswith("demo: re-fine-tuned structured/good") for m in data["missing"])
    assert "> **Incomplete run**" in report and "Command: `hf-lottery run --task_name demo SST-2 " in report
    assert "Resumed / extended with: `hf-lottery run --task_name demo SST-2 " in report  # the Python resume
    assert data["share_of_tasks"]["heads"] == [[1.0, 0.5, 0.0, 0.0], [1.0, 0.0, 0.5, 0.0], [0.0] * 4]
    assert (data["stable_heads"], data["stable_mlps"], data["overlap"]) == (
        [[1, 1], [2, 1]], [1], {"demo/sst2": {"shared": 2, "jaccard": 0.5}}
    )  # fmt: skip
    assert set(data["tables"]) == {"demo", "sst2"} and data["agreement"]["demo"]["heads_kept"] == [4, 8]
    for text in ("## demo", "## sst2", "(layer-head, from 1): 1-1, 2-1; MLPs (layer): 1.", "| demo/sst2 | 2 | 0.50 |"):
        assert text in report
    assert (grid / "report" / "plots" / "stable_heads.png").is_file()
    assert (grid / "sst2" / "report" / "plots" / "head_survival.png").is_file()  # linked from the grid report
    # resumed: nothing is trained again; another list of tasks in the folder is refused
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(stage_module, "_train", counter := CountingTrain())
        run_pipeline(settings)
    assert counter.calls == 0
    with pytest.raises(ValueError, match=r"--task_name \['demo', 'sst2'\] -> \['sst2', 'demo'\]"):
        run_pipeline(config(tiny_pretrained, grid, task_name=["sst2", "demo"], data_dir=str(glue), stages=stages))
