"""The command line and the recipe: HfArgumentParser flags, validation before any work, secrets kept off disk."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from hf_lottery.cli import main
from hf_lottery.pipeline.config import PAPER_TRAINING_DEFAULTS, PipelineConfig, RunSettings, parse_run_args


REPO = Path(__file__).resolve().parents[1]
FAKE_TOKEN = "hf_FAKEtokenDoNotLeak1234567890"


def _run(args, **kwargs):
    env = dict(os.environ, PYTHONPATH=str(REPO))
    return subprocess.run([sys.executable, *args], capture_output=True, text=True, cwd=REPO, env=env, **kwargs)


def test_top_level_help_imports_nothing_heavy():
    code = (
        "import sys\nfrom hf_lottery.cli import main\ntry:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
        "print(sorted(m for m in ('torch', 'transformers', 'datasets') if m in sys.modules))"
    )
    out = _run(["-c", code])
    assert out.returncode == 0 and out.stdout.strip().endswith("[]"), out.stderr
    assert "demo" in out.stdout and "export" in out.stdout


def test_run_help_lists_every_settings_group_with_defaults(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["run", "--help"])
    assert exit_info.value.code == 0
    text = " ".join(capsys.readouterr().out.split())
    for flag in ("--task_name", "--seeds", "--threshold", "--max_search_samples", "--magnitude_max_steps",
                 "--warmup_steps", "--gradient_accumulation_steps", "--bf16", "--hub_token", "--compact_retrain"):  # fmt: skip
        assert flag in text, flag
    assert "(default: 2e-05)" in text and "Stop rule: keep pruning" in text


def test_pipeline_fields_share_no_name_with_training_or_search_arguments():
    from dataclasses import fields

    from transformers import TrainingArguments

    from hf_lottery.config import TicketSearchConfig

    pipeline = {f.name for f in fields(PipelineConfig)}
    assert not pipeline & {f.name for f in fields(TrainingArguments)}
    assert not pipeline & {f.name for f in fields(TicketSearchConfig)}


def test_paper_defaults_apply_unless_set():
    settings = parse_run_args(["--task_name", "demo", "--output_dir", "x"])
    assert {k: settings.training[k] for k in PAPER_TRAINING_DEFAULTS} == PAPER_TRAINING_DEFAULTS
    settings = parse_run_args(["--task_name", "demo", "--output_dir", "x", "--learning_rate", "1e-4"])
    assert settings.training["learning_rate"] == 1e-4


def test_trainer_flags_reach_the_fine_tunes(tiny_pretrained, tmp_path, monkeypatch):
    import transformers

    from hf_lottery.pipeline.context import RunContext
    from hf_lottery.pipeline.units import train_model

    argv = ["--task_name", "demo", "--output_dir", str(tmp_path), "--model_name_or_path", tiny_pretrained,
            "--warmup_steps", "3", "--gradient_accumulation_steps", "2", "--max_train_samples", "8",
            "--push_to_hub", "--hub_model_id", "me/x", "--hub_token", FAKE_TOKEN]  # fmt: skip
    settings = parse_run_args(argv)
    seen = {}

    class StopTrainer:
        def __init__(self, *, args, **kwargs):
            seen["args"] = args
            raise RuntimeError("stop before training")

    monkeypatch.setattr(transformers, "Trainer", StopTrainer)
    with pytest.raises(RuntimeError, match="stop before training"):
        train_model(RunContext(settings), 7, tmp_path / "work", ticket=None)
    args = seen["args"]
    assert (args.warmup_steps, args.gradient_accumulation_steps, args.seed, args.data_seed) == (3, 2, 7, 7)
    assert (args.learning_rate, args.per_device_train_batch_size) == (2e-5, 32)
    assert args.push_to_hub is False and args.hub_token is None  # a fine-tune never pushes; the push stage does


@pytest.mark.parametrize(
    "flags, named",
    [(["--threshold", "1.5"], "--threshold"), (["--max_train_samples", "0"], "--max_train_samples"),
     (["--max_train_samples", "-5"], "--max_train_samples"), (["--max_eval_samples", "0"], "--max_eval_samples")],
)  # fmt: skip
def test_recipe_refuses_bad_settings_within_seconds(tmp_path, flags, named):
    out_dir = tmp_path / "run"
    started = time.perf_counter()
    out = _run(["recipes/lottery_glue.py", "--task_name", "demo", "--output_dir", str(out_dir), *flags])
    assert out.returncode == 2 and named in out.stderr and "Traceback" not in out.stderr
    assert time.perf_counter() - started < 60  # parsing only: no data, no model, no fine-tune
    assert not out_dir.exists()  # run_config.json is written only after validation


def test_recipe_changed_settings_refusal_is_one_line(tmp_path):
    (tmp_path / "run_config.json").write_text(json.dumps({"fingerprint": {"task_name": "demo", "threshold": 0.8}}))
    out = _run(["recipes/lottery_glue.py", "--task_name", "demo", "--output_dir", str(tmp_path)])
    assert out.returncode == 1 and "Traceback" not in out.stderr
    assert (
        out.stderr.strip().count("\n") == 0
        and "other settings" in out.stderr
        and "--threshold 0.8 -> 0.9" in out.stderr
    )


@pytest.mark.slow
def test_hub_token_never_reaches_the_run_folder_or_the_output(tiny_pretrained, tmp_path):
    root = tmp_path / "run"
    common = ["recipes/lottery_glue.py", "--task_name", "demo", "--output_dir", str(root), "--model_name_or_path",
              tiny_pretrained, "--seeds", "1", "--max_train_samples", "16", "--max_eval_samples", "16",
              "--max_seq_length", "16", "--num_train_epochs", "1"]  # fmt: skip
    first = _run([*common, "--stages", "finetune", "--hub_token", FAKE_TOKEN])
    second = _run([*common, "--stages", "report", f"--hub_token={FAKE_TOKEN}"])
    assert first.returncode == 0 and second.returncode == 0, first.stderr[-2000:] + second.stderr[-2000:]
    for out in (first, second):
        assert FAKE_TOKEN not in out.stdout + out.stderr
    leaks = [p for p in root.rglob("*") if p.is_file() and FAKE_TOKEN.encode() in p.read_bytes()]
    assert leaks == []
    commands = json.loads((root / "run_config.json").read_text())["commands"]
    assert "--hub_token '***'" in commands[0] or "--hub_token ***" in commands[0]
    assert "--hub_token=***" in commands[1]
    assert "Incomplete run" in (root / "report" / "report.md").read_text()


def test_settings_from_keywords_refuse_unknown_names():
    with pytest.raises(TypeError, match="learning_rat"):
        RunSettings.from_kwargs(task_name="demo", output_dir="x", learning_rat=1e-4)


def test_train_refuses_a_ticket_without_base_model(tmp_path, capfd):
    from hf_lottery import LotteryTicket
    from tests.conftest import tiny_bert

    LotteryTicket.full(tiny_bert()).save_pretrained(tmp_path / "ticket")
    code = main(["train", str(tmp_path / "ticket"), "--task_name", "demo", "--output_dir", str(tmp_path / "out")])
    assert code == 1
    assert "records no base (pre-trained) model" in capfd.readouterr().err


def test_export_onnx_command(tmp_path, capsys):
    try:
        import onnxruntime  # noqa: F401

        import hf_lottery.models.onnx_export  # noqa: F401
    except ImportError as err:
        pytest.skip(f"hf_lottery.models.onnx_export / onnxruntime not in this tree: {err}")
    from tests.conftest import tiny_bert

    tiny_bert().save_pretrained(tmp_path / "model")
    assert main(["export", "--onnx", str(tmp_path / "model"), "--output_dir", str(tmp_path / "onnx")]) == 0
    assert (tmp_path / "onnx" / "model.onnx").is_file() and "Exported" in capsys.readouterr().out


def test_demo_defaults_and_overrides():
    from hf_lottery.commands.pipeline import DEMO_SETTINGS

    settings = parse_run_args([], defaults=DEMO_SETTINGS)
    assert settings.pipeline.seeds == [42, 1337] and settings.training["learning_rate"] == 2e-4
    assert settings.output_dir == Path("outputs/demo") and settings.search.search_batch_size == 128
    settings = parse_run_args(["--seeds", "7", "--compact_retrain", "false"], defaults=DEMO_SETTINGS)
    assert settings.pipeline.seeds == [7] and settings.pipeline.compact_retrain is False
