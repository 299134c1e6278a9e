"""The command line and the recipe: HfArgumentParser flags, validation before any work, secrets kept off disk."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from unittest import mock

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
    assert (args.learning_rate, args.per_device_train_batch_size) == (2e-5, 16)  # global 32 over 2 accumulations
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


def test_hub_token_reaches_no_file_and_no_output_whatever_its_spelling(tiny_pretrained, tmp_path, capfd, caplog):
    root = tmp_path / "run"
    common = ["--verbose", "run", "--task_name", "demo", "--output_dir", str(root), "--model_name_or_path",
              tiny_pretrained, "--seeds", "1", "--max_eval_samples", "16", "--max_seq_length", "16",
              "--stages", "report", "push", "--push_to_hub", "--hub_model_id", "me/x"]  # fmt: skip
    spellings = [["--hub_token", FAKE_TOKEN], [f"--hub_token={FAKE_TOKEN}"], ["--hub-token", FAKE_TOKEN],
                 [f"--hub-token={FAKE_TOKEN}"]]  # fmt: skip
    pushed = []
    with (
        mock.patch("hf_lottery.pipeline.runner.push_best", lambda ctx: pushed.append(ctx.settings.training)),
        mock.patch("hf_lottery.pipeline.runner._majority_score", lambda ctx: 0.5),  # no tokenizing: seconds, not tens
    ):
        for spelling in spellings:
            assert main([*common, *spelling]) == 0
    assert [training["hub_token"] for training in pushed] == [FAKE_TOKEN] * 4  # parsed, and given to the push only
    for abbreviation in (["--hub_tok", FAKE_TOKEN], [f"--hub-tok={FAKE_TOKEN}"], ["--hub", FAKE_TOKEN]):
        with pytest.raises(SystemExit) as exit_info:
            main([*common, *abbreviation])
        assert exit_info.value.code == 2
    out = capfd.readouterr()
    assert FAKE_TOKEN not in out.out + out.err + caplog.text and out.err.count("unrecognized arguments: --hub") == 3
    assert [p for p in tmp_path.rglob("*") if p.is_file() and FAKE_TOKEN.encode() in p.read_bytes()] == []
    commands = json.loads((root / "run_config.json").read_text())["commands"]
    assert len(commands) == 4 and all(c.startswith("hf-lottery run --task_name demo") for c in commands)
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


def test_env_prints_the_versions_and_devices_a_bug_report_needs(capsys):
    import torch

    assert main(["env"]) == 0
    lines = dict(line[2:].split(": ", 1) for line in capsys.readouterr().out.splitlines())
    names = ["python", "platform", "hf_lottery", "transformers", "torch", "huggingface_hub", "accelerate", "datasets"]
    assert list(lines) == [*names, "torch-pruning", "safetensors", "evaluate", "onnxruntime", "CUDA", "MPS"]
    assert lines["torch"] == torch.__version__ and lines["python"] == sys.version.split()[0]


def test_only_the_main_process_of_a_launch_prints_warnings_included():
    code = (
        "import logging, warnings\nfrom hf_lottery.cli import configure_logging\nconfigure_logging()\n"
        "log = logging.getLogger('hf_lottery.pipeline')\nlog.info('an info line')\nlog.warning('a warning line')\n"
        "warnings.warn_explicit('a python warning', UserWarning, 'units.py', 1, module='hf_lottery.pipeline.units')\n"
        "log.error('an error line')\n"
    )
    seen = {}
    for rank in ("0", "1"):
        env = dict(os.environ, PYTHONPATH=str(REPO), RANK=rank)
        seen[rank] = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert all(proc.returncode == 0 for proc in seen.values()), seen
    for text in ("an info line", "a warning line", "a python warning", "an error line"):
        assert text in seen["0"].stderr
    assert seen["1"].stderr.strip() == "[hf-lottery] an error line"


def test_recipe_config_file_flags_override_it_and_a_misspelt_key_is_refused(tmp_path):
    config = tmp_path / "run.yaml"
    config.write_text(f"task_name: demo\noutput_dir: {tmp_path / 'run'}\nlearning_rate: 3e-5\nseeds: [1, 2]\n"
                      f"compact_retrain: false\nhub_token: {FAKE_TOKEN}\n")  # fmt: skip
    settings = parse_run_args(["--config", str(config), "--learning_rate", "1e-4"], prog="lottery_glue.py")
    assert settings.training["learning_rate"] == 1e-4  # the command line wins
    assert (settings.pipeline.seeds, settings.pipeline.compact_retrain, settings.training["hub_token"]) == (
        [1, 2], False, FAKE_TOKEN)  # fmt: skip
    assert parse_run_args(["--config", str(config)]).training["learning_rate"] == 3e-5  # typed as the flag is
    assert FAKE_TOKEN not in json.dumps(settings.to_dict()) + settings.command_line()  # a secret, as the flag is
    config.write_text("task_name: demo\nlearning_rte: 1e-4\n")
    out = _run(["recipes/lottery_glue.py", "--config", str(config), "--output_dir", str(tmp_path / "bad")])
    assert out.returncode == 2 and "--config" in out.stderr and "unknown setting(s) learning_rte;" in out.stderr
    assert not (tmp_path / "bad").exists() and "Traceback" not in out.stderr


def test_every_command_takes_a_config_file(tmp_path):
    from hf_lottery.commands import parse_dataclasses
    from hf_lottery.commands.hub import PushArguments

    config = tmp_path / "push.yaml"
    config.write_text("ticket: my-ticket\nrepo_id: me/x\nprivate: true\nmetrics: [accuracy=0.9]\nmodel_dir: m\n")
    (args,) = parse_dataclasses("hf-lottery push", "", [PushArguments], ["--config", str(config), "other-ticket"],
                                positionals=["ticket", "repo_id"])  # fmt: skip
    assert (args.ticket, args.repo_id, args.private, args.scores) == ("other-ticket", "me/x", True, {"accuracy": 0.9})
