"""Resumes, degenerate runs and the pipeline's remaining deep errors: a resume never mixes two runs (changed data or
model files, another IMP `rewind_step`, a Trainer checkpoint's ticket), a search never runs inside a ticket, a run
whose fine-tuned model is a constant predictor stops after fine-tuning, and torn files, a full disk, a deleted
ticket, an ASCII terminal and negative seeds get clear errors or the exact right result."""

from __future__ import annotations

import errno
import json
import os
import subprocess
import sys
from pathlib import Path

import torch

from hf_lottery import LotteryTicket, apply_ticket
from hf_lottery.pipeline import PipelineConfig, RunSettings, build_report, run_pipeline
from hf_lottery.pipeline.config import check_resume, parse_run_args

from ..conftest import tiny_bert
from ..science_helpers import accuracy
from ..trainer_helpers import collate, to_dataset, training_args
from . import BadInput


# ------------------------------------------------------------------------------------------------------ helpers
def _tiny_model(tmp_path: Path) -> str:
    """A tiny random 'pre-trained' BERT folder (64 positions) with the packaged MiniLM tokenizer."""
    from ..conftest import save_tiny_pretrained

    folder = tmp_path / "tiny_pretrained"
    return str(folder) if folder.is_dir() else save_tiny_pretrained(folder)


def _settings(tmp_path: Path, **overrides) -> RunSettings:
    """A pipeline run of the tiny model on 48 demo examples (fine-tune only unless `stages` says more)."""
    values = dict(
        task_name="demo", model_name_or_path=_tiny_model(tmp_path), output_dir=str(tmp_path / "run"), seeds=[1],
        learning_rate=1e-3, num_train_epochs=1.0, per_device_train_batch_size=16, max_seq_length=32,
        max_train_samples=48, max_eval_samples=32, methods=["structured"], kinds=["good", "random"],
        structured_max_steps=2, search_batch_size=16, stages=["finetune"], on_degenerate="ignore",
    )  # fmt: skip
    values.update(overrides)
    return RunSettings.from_kwargs(**values)


def _sst2(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    rows = "sentence\tlabel\n" + "".join(f"a good film {i}\t1\na bad film {i}\t0\n" for i in range(4))
    for name in ("train.tsv", "dev.tsv"):
        (folder / name).write_text(rows, encoding="utf-8")
    return folder


def _resumed_after(change, settings: dict):
    """check_resume of the same settings over a run of them, after `change(tmp_path)` of the files it read."""

    def call(tmp_path):
        made = {k: v(tmp_path) if callable(v) else v for k, v in settings.items()}
        previous = {"fingerprint": RunSettings.from_kwargs(output_dir=str(tmp_path), **made).fingerprint()}
        change(tmp_path)
        check_resume(RunSettings.from_kwargs(output_dir=str(tmp_path), **made), previous, {})

    return call


def _append(path: str):
    return lambda tmp_path: (tmp_path / path).open("a", encoding="utf-8").write("a new film\t1\n")


def _local_model(tmp_path: Path) -> str:
    folder = tmp_path / "my_model"
    folder.mkdir(exist_ok=True)
    (folder / "config.json").write_text('{"model_type": "bert"}', encoding="utf-8")
    return str(folder)


def _moved_data_and_other_on_degenerate(tmp_path):
    _sst2(tmp_path / "data")
    previous = {"fingerprint": RunSettings.from_kwargs(task_name="sst2", data_dir=str(tmp_path / "data"),
                                                       output_dir=str(tmp_path)).fingerprint()}  # fmt: skip
    (tmp_path / "data").rename(tmp_path / "moved")
    again = RunSettings.from_kwargs(
        task_name="sst2", data_dir=str(tmp_path / "moved"), output_dir=str(tmp_path), on_degenerate="ignore"
    )
    check_resume(again, previous, {})  # same content elsewhere, and a flag that changes no result: the same run
    assert "data_dir/SST-2/dev.tsv" in previous["fingerprint"] and "on_degenerate" not in previous["fingerprint"]


def _imp(tmp_path, **settings):
    from hf_lottery.imp import find_imp_ticket

    args = training_args(tmp_path / "imp", max_steps=2, gradient_accumulation_steps=1, save_strategy="no")
    return find_imp_ticket(
        tiny_bert(seed=3), args, to_dataset(48, 1), to_dataset(32, 2), accuracy, rounds=1, data_collator=collate,
        threshold=0.01, on_degenerate="ignore", base_model="tiny-pretrained", **settings,
    )  # fmt: skip


def _imp_resumed(first: dict, second: dict):
    def call(tmp_path):
        _imp(tmp_path, **first)
        _imp(tmp_path, **second)

    return call


def _ticket(model, pruned_head: int = 1) -> LotteryTicket:
    head_mask = torch.ones(3, 4, dtype=torch.bool)
    head_mask[0, pruned_head] = False
    return LotteryTicket.full(model, kind="custom").copy(head_mask=head_mask)


def _train(output_dir: Path, callbacks: list, max_steps: int = 4, resume: bool = False):
    from transformers import Trainer

    trainer = Trainer(model=tiny_bert(), args=training_args(output_dir, max_steps=max_steps, save_steps=2),
                      train_dataset=to_dataset(64, 1), data_collator=collate, callbacks=callbacks)  # fmt: skip
    trainer.train(resume_from_checkpoint=resume or None)
    return trainer


def _resume_checkpoint(delete_copy: bool, given=None, required: bool = True):
    """Train 4 steps with ticket A (checkpoints 2 and 4); checkpoint-2's copy is replaced by ticket B and made the
    newest folder; resume with `given` (None: adopt the checkpoint's ticket)."""
    from hf_lottery.callbacks import TicketCallback

    def call(tmp_path):
        model = tiny_bert()
        _train(tmp_path, [TicketCallback(_ticket(model, 1))])
        _ticket(model, 2).save_pretrained(tmp_path / "checkpoint-2" / "hf_lottery_ticket")
        os.utime(tmp_path / "checkpoint-2")  # newest by mtime; the Trainer resumes checkpoint-4 (highest step)
        if delete_copy:
            for path in (tmp_path / "checkpoint-4" / "hf_lottery_ticket").iterdir():
                path.unlink()
        callback = TicketCallback(given(model) if given else None, required=required)
        _train(tmp_path, [callback], max_steps=6, resume=True)
        assert callback.ticket.masks_equal(_ticket(model, 1))  # the ticket checkpoint-4 was trained with

    return call


def _search_with_ticket_callback(tmp_path):
    from hf_lottery.callbacks import StructuredPruningCallback, TicketCallback

    search = StructuredPruningCallback(eval_dataset=to_dataset(16, 3), metric=accuracy, data_collator=collate,
                                       structured_max_steps=1, on_degenerate="ignore")  # fmt: skip
    _train(tmp_path, [TicketCallback(_ticket(tiny_bert())), search])


def _search_on_ticketed_model(tmp_path):
    from hf_lottery.callbacks import TicketSearch

    model = tiny_bert()
    apply_ticket(model, _ticket(model))
    TicketSearch("magnitude", to_dataset(16, 3), accuracy, data_collator=collate).run(model, progress=False)


def _degenerate(tmp_path):
    run_pipeline(_settings(tmp_path, stages=["finetune", "search"], on_degenerate="warn"))


def _degenerate_then_ignore(tmp_path):
    import pytest

    with pytest.raises(ValueError, match="stops after fine-tuning"):
        _degenerate(tmp_path)
    assert not (tmp_path / "run" / "seed_1" / "tickets").exists()  # stopped before the search
    run_pipeline(_settings(tmp_path, stages=["finetune", "search"], on_degenerate="ignore"))  # same run, goes on
    assert (tmp_path / "run" / "seed_1" / "tickets" / "structured" / "good" / "ticket_config.json").is_file()


def _long_then_corrected(tmp_path):
    import pytest

    with pytest.raises(ValueError, match="--max_seq_length 128 is more than the 64 positions"):
        run_pipeline(_settings(tmp_path, max_seq_length=128))
    assert not (tmp_path / "run").exists()  # refused before anything was written
    run_pipeline(_settings(tmp_path, max_seq_length=64))
    assert (tmp_path / "run" / "seed_1" / "finetuned" / "result.json").is_file()


def _torn_run_config(tmp_path):
    (tmp_path / "run_config.json").write_text('{"config": {"pipeline": {', encoding="utf-8")
    run_pipeline(RunSettings.from_kwargs(task_name="demo", output_dir=str(tmp_path)))


def _run_with_result(text: str):
    def call(tmp_path):
        run = {"config": {"pipeline": {"task_name": "demo", "seeds": [1]}}}
        (tmp_path / "run_config.json").write_text(json.dumps(run), encoding="utf-8")
        (tmp_path / "seed_1" / "finetuned").mkdir(parents=True)
        (tmp_path / "seed_1" / "finetuned" / "result.json").write_text(text, encoding="utf-8")
        build_report(tmp_path)

    return call


def _disk_full(error: BaseException, target: str = "hf_lottery.pipeline.context.write_json"):
    """The fine-tune's last write fails as on a full disk; the error names what was written, and a re-run of the same
    command then finishes with nothing half-written taken as done."""

    def call(tmp_path):
        import pytest

        def full(*args, **kwargs):
            raise error

        settings = _settings(tmp_path)
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(target, full)
            with pytest.raises(OSError) as info:
                run_pipeline(settings)
        assert (tmp_path / "run" / "seed_1" / "finetuned" / "result.json").is_file() is False
        run_pipeline(settings)
        assert (tmp_path / "run" / "seed_1" / "finetuned" / "result.json").is_file()
        assert not list((tmp_path / "run").rglob("*.tmp"))
        raise info.value

    return call


def _deleted_ticket_then_rerun(tmp_path):
    import shutil

    settings = _settings(tmp_path, stages=["finetune", "search", "sample", "report"])
    run_pipeline(settings)
    folder = tmp_path / "run" / "seed_1" / "tickets" / "structured" / "random"
    original = LotteryTicket.from_pretrained(folder)
    shutil.rmtree(folder)
    text = build_report(tmp_path / "run").read_text(encoding="utf-8")
    assert "structured/random ticket of seed 1" in text and "Re-run the same command to finish" in text
    run_pipeline(settings)
    assert LotteryTicket.from_pretrained(folder).masks_equal(original)
    results = json.loads((tmp_path / "run" / "report" / "results.json").read_text(encoding="utf-8"))
    assert not any("structured/random ticket" in missing for missing in results["missing"])


def _report_in_ascii_terminal(env: dict):
    def call(tmp_path):
        root = tmp_path / "résultats"
        root.mkdir()
        run = {"config": {"pipeline": {"task_name": "demo", "seeds": [1]}}, "model_note": "6 layers × 12 heads — x"}
        (root / "run_config.json").write_text(json.dumps(run, ensure_ascii=False), encoding="utf-8")
        done = subprocess.run(
            [sys.executable, "-m", "hf_lottery.cli", "report", str(root)], capture_output=True,
            env={**os.environ, "HF_HUB_OFFLINE": "1", **env}, cwd=tmp_path, timeout=300,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr.decode(errors="replace")
        assert f"Report: {tmp_path}/r\\xe9sultats/report/report.md".encode() in done.stdout.replace(
            b"\\udcc3\\udca9", b"\\xe9"
        )
        assert (root / "report" / "results.json").read_bytes().isascii()

    return call


# -------------------------------------------------------------------------------------------------------- cases
DATA = {"task_name": "sst2", "data_dir": lambda tmp_path: str(_sst2(tmp_path / "glue"))}
NESTED = {"task_name": "sst2", "data_dir": lambda tmp_path: str(_sst2(tmp_path / "glue" / "SST-2").parent)}
LOCAL_MODEL = {"task_name": "demo", "model_name_or_path": _local_model}

CASES = [
    # 5. a resume never mixes two runs
    BadInput(
        "resume-changed-dev-tsv",
        "pipeline",
        _resumed_after(_append("glue/dev.tsv"), DATA),
        ValueError,
        r"other settings \(--data_dir/SST-2/dev\.tsv '[0-9a-f]{16}' -> '[0-9a-f]{16}'\); use another --output_dir",
    ),
    BadInput(
        "resume-changed-train-tsv-in-task-folder",
        "pipeline",
        _resumed_after(_append("glue/SST-2/train.tsv"), NESTED),
        ValueError,
        r"\(--data_dir/SST-2/train\.tsv '[0-9a-f]{16}' -> '[0-9a-f]{16}'\)",
    ),
    BadInput(
        "resume-changed-local-model-file",
        "pipeline",
        _resumed_after(lambda tmp_path: (tmp_path / "my_model" / "config.json").write_text("{}"), LOCAL_MODEL),
        ValueError,
        r"\(--model_name_or_path/config\.json '[0-9a-f]{16}' -> '[0-9a-f]{16}'\)",
    ),
    BadInput("resume-moved-data-same-content-accepted", "pipeline", _moved_data_and_other_on_degenerate, None),
    BadInput(
        "resume-imp-other-rewind-step",
        "training",
        _imp_resumed({"rewind_step": 0}, {"rewind_step": 1}),
        ValueError,
        r"IMP round 0 in .*round_0 was run with other settings \(rewind_step: 0 -> 1\)",
    ),
    BadInput(
        "resume-imp-other-prune-fraction",
        "training",
        _imp_resumed({}, {"magnitude_prune_fraction": 0.2}),
        ValueError,
        r"magnitude_prune_fraction: 0\.1 -> 0\.2\); resuming would mix two searches",
    ),
    BadInput("resume-trainer-adopts-the-resumed-checkpoint-ticket", "training", _resume_checkpoint(False), None),
    BadInput(
        "resume-trainer-missing-ticket-copy",
        "training",
        _resume_checkpoint(True),
        ValueError,
        r"trained with a ticket, but .*checkpoint-4/hf_lottery_ticket holds no copy: give this run that ticket",
    ),
    BadInput(
        "resume-trainer-missing-copy-ticket-not-required",
        "training",
        _resume_checkpoint(True, required=False),
        ValueError,
        r"checkpoint-4/hf_lottery_ticket holds no copy",
    ),
    BadInput(
        "resume-trainer-another-ticket-without-copy",
        "training",
        _resume_checkpoint(True, given=lambda model: _ticket(model, 3)),
        ValueError,
        r"checkpoint resumed \(.*checkpoint-4\) was trained with another ticket than the one given",
    ),
    # 6. a search never runs inside a ticket
    BadInput(
        "resume-search-callback-with-ticket-callback",
        "training",
        _search_with_ticket_callback,
        ValueError,
        r"The structured ticket search cannot run on a model that carries a ticket \(TicketCallback",
    ),
    BadInput(
        "resume-search-on-a-model-with-a-ticket-applied",
        "search",
        _search_on_ticketed_model,
        ValueError,
        r"The magnitude ticket search cannot run on a model that carries a ticket",
    ),
    # 8. a degenerate run stops after fine-tuning
    BadInput(
        "resume-degenerate-finetune-stops",
        "pipeline",
        _degenerate,
        ValueError,
        r"Seed 1's fine-tuned model scores 0\.5312 \(accuracy\) on dev, a constant predictor's level for the stop "
        r"rule \(0\.5312 >= --threshold 0\.9 x score\).*stops after fine-tuning\. Train it better \(more "
        r"--max_train_samples or --num_train_epochs, another --learning_rate\) or go on with --on_degenerate ignore",
    ),
    BadInput("resume-degenerate-then-on-degenerate-ignore-goes-on", "pipeline", _degenerate_then_ignore, None),
    # 7. clear errors
    BadInput(
        "resume-max-seq-length-above-positions",
        "pipeline",
        lambda tmp_path: run_pipeline(_settings(tmp_path, max_seq_length=128)),
        ValueError,
        r"--max_seq_length 128 is more than the 64 positions of the model .*; pass --max_seq_length 64 or less",
    ),
    BadInput("resume-max-seq-length-corrected-command-runs", "pipeline", _long_then_corrected, None),
    BadInput(
        "resume-truncated-run-config",
        "pipeline",
        _torn_run_config,
        ValueError,
        r"run_config\.json is not as hf-lottery wrote it \(a JSON object with \['fingerprint'\]\): cut short or "
        r"edited by hand\. Delete it and re-run the same command",
    ),
    BadInput(
        "resume-hand-edited-result-json",
        "pipeline",
        _run_with_result('{"dev": {"score": 0.9},'),
        ValueError,
        r"seed_1/finetuned/result\.json is not as hf-lottery wrote it .*Delete it and re-run the same command: its "
        r"unit runs again",
    ),
    BadInput(
        "resume-result-json-without-dev",
        "pipeline",
        _run_with_result('{"score": 0.9}'),
        ValueError,
        r"finetuned/result\.json is not as hf-lottery wrote it \(a JSON object with \['dev'\]\)",
    ),
    BadInput(
        "resume-disk-full-names-what-was-written",
        "pipeline",
        _disk_full(OSError(errno.ENOSPC, "No space left on device")),
        OSError,
        r"No space left on device while the finetune stage of seed 1 wrote under .*run \(.*\); free some space and "
        r"re-run the same command: finished units are kept",
    ),
    BadInput(
        "resume-disk-full-in-safetensors",
        "pipeline",
        _disk_full(
            RuntimeError("Error while serializing: IoError(Os { code: 28, message: No space left on device })"),
            "transformers.PreTrainedModel.save_pretrained",
        ),
        OSError,
        r"\[Errno 28\] No space left on device while the finetune stage of seed 1 wrote .*Error while serializing",
    ),
    BadInput("resume-deleted-sampled-ticket-rerun-finishes", "pipeline", _deleted_ticket_then_rerun, None),
    BadInput(
        "resume-report-in-ascii-terminal",
        "pipeline",
        _report_in_ascii_terminal({"PYTHONIOENCODING": "ascii", "LANG": "C"}),
        None,
    ),
    BadInput(
        "resume-report-in-c-locale-without-utf8-mode",
        "pipeline",
        _report_in_ascii_terminal({"LC_ALL": "C", "PYTHONUTF8": "0", "PYTHONIOENCODING": "ascii"}),
        None,
    ),
    BadInput(
        "resume-negative-seed",
        "pipeline",
        lambda tmp_path: PipelineConfig(task_name="demo", seeds=[42, -1]),
        ValueError,
        r"`seeds` must be one or more integers in \[0, 2\*\*32\); got \[42, -1\]",
    ),
    BadInput(
        "resume-seed-beyond-32-bits",
        "pipeline",
        lambda tmp_path: RunSettings.from_kwargs(task_name="demo", output_dir=str(tmp_path), seeds=[2**32]),
        ValueError,
        r"`seeds` must be one or more integers in \[0, 2\*\*32\)",
    ),
    BadInput(
        "resume-negative-seed-on-the-command-line",
        "pipeline",
        lambda tmp_path: parse_run_args(["--task_name", "demo", "--output_dir", str(tmp_path), "--seeds", "-1"]),
        SystemExit,
        r"^2$",
    ),
]
