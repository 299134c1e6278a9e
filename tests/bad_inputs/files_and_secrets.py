"""Secrets and files: a token never reaches a file or a message, whatever its spelling; a flag is only what it says;
hf-lottery writes only inside the folder it was given and deletes only what it created."""

from __future__ import annotations

import contextlib
import io
import json
import os

from hf_lottery import LotteryTicket
from hf_lottery.atomic import write_text
from hf_lottery.cli import main
from hf_lottery.commands import parse_dataclasses
from hf_lottery.commands.hub import DownloadArguments, PushArguments, _download
from hf_lottery.pipeline.config import RunSettings, parse_run_args
from hf_lottery.pipeline.layout import SCRATCH_MARKER, RunLayout
from hf_lottery.pipeline.runner import run_pipeline

from ..conftest import save_tiny_pretrained, tiny_bert
from . import BadInput


TOKEN = "hf_FAKEtokenDoNotLeak1234567890"
RUN = ["--task_name", "demo", "--output_dir", "runs/x"]


def _recorded(*flags):
    """A spelling of the token argparse accepts: parsed, but in neither the recorded command nor the settings."""

    def call(tmp_path):
        settings = parse_run_args([*RUN, *flags])
        assert settings.training["hub_token"] == TOKEN
        recorded = settings.command_line("hf-lottery run") + json.dumps(settings.to_dict())
        assert TOKEN not in recorded and "hub_token" not in recorded and "--output_dir runs/x" in recorded

    return call


def _exit(*argv, parse=lambda argv: parse_run_args([*RUN, *argv])):
    """Exit status and last stderr line of a refused command line (the token never in it)."""

    def call(tmp_path):
        err = io.StringIO()
        try:
            with contextlib.redirect_stderr(err):
                parse(list(argv))
        except SystemExit as exit_info:
            assert TOKEN not in err.getvalue(), err.getvalue()
            raise SystemExit(f"{exit_info.code}: {err.getvalue().strip().splitlines()[-1]}") from None

    return call


def _push(argv):
    return parse_dataclasses(
        "hf-lottery push", "", [PushArguments], ["t", "me/r", *argv], positionals=["ticket", "repo_id"]
    )


def _user_work(remove):
    """A `.work` folder the user made (notes inside) is neither deleted nor used as scratch."""

    def call(tmp_path):
        (tmp_path / ".work").mkdir()
        (tmp_path / ".work" / "notes.txt").write_text("mine")
        try:
            return RunLayout(tmp_path).remove_work() if remove else RunLayout(tmp_path).work_dir("finetune", 1)
        finally:
            assert (tmp_path / ".work" / "notes.txt").read_text() == "mine"
            assert not (tmp_path / ".work" / SCRATCH_MARKER).exists()

    return call


def _report_stage_with_user_work(tmp_path):
    (tmp_path / ".work").mkdir()
    (tmp_path / ".work" / "notes.txt").write_text("mine")
    settings = RunSettings.from_kwargs(
        task_name="demo", output_dir=str(tmp_path), stages=["report"], max_eval_samples=8, overwrite_output_dir=True
    )
    try:
        return run_pipeline(settings)
    finally:
        assert sorted(p.name for p in tmp_path.rglob("*")) == [".work", "notes.txt"]


def _own_work(tmp_path):
    layout = RunLayout(tmp_path)
    unit = layout.work_dir("finetune", 1)
    (unit / "checkpoint").mkdir(parents=True)
    (tmp_path / "seed_1").mkdir()
    layout.remove_work(tmp_path / "seed_1")  # outside .work: never deleted
    layout.remove_work(unit)
    assert sorted(p.name for p in (tmp_path / ".work").rglob("*")) == [SCRATCH_MARKER, "finetune"]
    layout.remove_work()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["seed_1"]


def _report_symlink(tmp_path):
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "report.md").write_text("theirs")
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "report").symlink_to(tmp_path / "other")
    try:
        return RunLayout(tmp_path / "run").report_dir
    finally:
        assert (tmp_path / "other" / "report.md").read_text() == "theirs"


def _seed_symlink(tmp_path):
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "seed_1").symlink_to(tmp_path)
    return RunLayout(tmp_path / "run").finetuned_dir(1)


def _onnx_side_file(tmp_path):
    from hf_lottery import export_onnx

    (tmp_path / "out").mkdir()
    (tmp_path / "outside.json").write_text("theirs")
    (tmp_path / "out" / "config.json").symlink_to(tmp_path / "outside.json")
    try:
        return export_onnx(tiny_bert(), tmp_path / "out", verify=False)
    finally:
        assert (tmp_path / "outside.json").read_text() == "theirs"


def _link_out(tmp_path):
    (tmp_path / "outside.txt").write_text("theirs")
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "result.json").symlink_to(tmp_path / "outside.txt")
    try:
        return write_text(tmp_path / "out" / "result.json", "{}")
    finally:
        assert (tmp_path / "outside.txt").read_text() == "theirs"


def _link_inside(tmp_path):
    (tmp_path / "real.json").write_text("old")
    (tmp_path / "alias.json").symlink_to("real.json")
    write_text(tmp_path / "alias.json", "new")  # the link inside the folder is replaced, never written through
    assert (tmp_path / "alias.json").read_text() == "new" and not (tmp_path / "alias.json").is_symlink()
    assert (tmp_path / "real.json").read_text() == "old"


def _ticket_modes(umask):
    def call(tmp_path):
        previous = os.umask(umask)
        try:
            LotteryTicket.full(tiny_bert()).save_pretrained(tmp_path / "ticket")
        finally:
            os.umask(previous)
        modes = {p.name: p.stat().st_mode & 0o777 for p in (tmp_path / "ticket").iterdir()}
        assert modes == {name: 0o666 & ~umask for name in modes} and len(modes) == 2, modes

    return call


def _run_into(*files, overwrite=False):
    def call(tmp_path):
        for name in files:
            (tmp_path / name).write_text("{}")
        settings = RunSettings.from_kwargs(task_name="demo", output_dir=str(tmp_path), overwrite_output_dir=overwrite)
        return run_pipeline(settings) if not overwrite else RunLayout(tmp_path).check_writable(overwrite)

    return call


def _planted_link(write):
    """A symlink planted inside the folder a library's `save_pretrained` writes into (`write`) is refused."""

    def call(tmp_path):
        (tmp_path / "outside.safetensors").write_text("theirs")
        (tmp_path / "out" / "seed_1" / "finetuned").mkdir(parents=True)
        for folder in (tmp_path / "out", tmp_path / "out" / "seed_1" / "finetuned"):
            (folder / "model.safetensors").symlink_to(tmp_path / "outside.safetensors")
        try:
            return write(tmp_path)
        finally:
            assert (tmp_path / "outside.safetensors").read_text() == "theirs"

    return call


def _finetune_into(tmp_path):
    settings = RunSettings.from_kwargs(
        task_name="demo", output_dir=str(tmp_path / "out"), model_name_or_path=save_tiny_pretrained(tmp_path / "m"),
        seeds=[1], stages=["finetune"], max_train_samples=8, max_eval_samples=8, max_seq_length=16,
        num_train_epochs=1.0, overwrite_output_dir=True,
    )  # fmt: skip
    return run_pipeline(settings)


def _download_into(tmp_path):
    model = tiny_bert()
    model.save_pretrained(tmp_path / "pruned")
    LotteryTicket.full(model).save_pretrained(tmp_path / "pruned")
    return _download(DownloadArguments(repo_id_or_path=str(tmp_path / "pruned"), output_dir=str(tmp_path / "out")))


CASES = [
    # 1. Secrets never reach a file or a log, whatever the spelling; a flag is only what it says.
    BadInput("secret-token-underscore", "secrets", _recorded("--hub_token", TOKEN), None),
    BadInput("secret-token-dash", "secrets", _recorded("--hub-token", TOKEN), None),
    BadInput("secret-token-dash-equals", "secrets", _recorded(f"--hub-token={TOKEN}"), None),
    BadInput("secret-token-underscore-equals", "secrets", _recorded(f"--hub_token={TOKEN}"), None),
    BadInput(
        "secret-token-abbreviated",
        "secrets",
        _exit("--hub_tok", TOKEN),
        SystemExit,
        r"^2: .*unrecognized arguments: --hub_tok VALUE \(values not shown\)",
    ),
    BadInput(
        "secret-token-abbreviated-equals",
        "secrets",
        _exit(f"--hub-tok={TOKEN}"),
        SystemExit,
        r"^2: .*unrecognized arguments: --hub-tok \(values not shown\)",
    ),
    BadInput(
        "secret-token-stray-value-not-echoed",
        "secrets",
        _exit(TOKEN),
        SystemExit,
        r"^2: .*unrecognized arguments: VALUE",
    ),
    BadInput(
        "secret-token-given-twice-two-spellings",
        "secrets",
        _exit("--hub-token", TOKEN, f"--hub_token={TOKEN}"),
        SystemExit,
        r"^2: .*--hub_token is given twice \(--hub-token and --hub_token\)",
    ),
    BadInput(
        "secret-push-token-abbreviated",
        "secrets",
        _exit("--tok", TOKEN, parse=_push),
        SystemExit,
        r"^2: hf-lottery push: error: unrecognized arguments: --tok VALUE",
    ),
    BadInput(
        "secret-push-token-given-twice",
        "secrets",
        _exit("--token", TOKEN, "--token", TOKEN, parse=_push),
        SystemExit,
        r"^2: .*--token is given twice",
    ),
    BadInput(
        "flag-abbreviation-refused",
        "secrets",
        _exit("--learning", "1e-4"),
        SystemExit,
        r"^2: .*unrecognized arguments: --learning VALUE",
    ),
    BadInput(
        "flag-top-level-abbreviation-refused",
        "secrets",
        _exit("--verb", "run", parse=main),
        SystemExit,
        r"^2: hf-lottery: error: unrecognized arguments: --verb \(values not shown\)",
    ),
    BadInput(
        "secret-token-before-the-command",
        "secrets",
        _exit(f"--hub_token={TOKEN}", "run", parse=main),
        SystemExit,
        r"^2: hf-lottery: error: unrecognized arguments: --hub_token \(values not shown\)",
    ),
    BadInput(
        "secret-token-as-the-command",
        "secrets",
        _exit(TOKEN, parse=main),
        SystemExit,
        r"^2: hf-lottery: error: COMMAND must be one of demo, .*the word given is not repeated",
    ),
    BadInput(
        "flag-given-twice",
        "secrets",
        _exit("--seeds", "1", "--seeds", "2"),
        SystemExit,
        r"^2: .*--seeds is given twice",
    ),
    BadInput(
        "flag-bool-and-its-negation",
        "secrets",
        _exit("--no_compact_retrain", "--compact_retrain"),
        SystemExit,
        r"^2: .*--compact_retrain is given twice \(--no_compact_retrain and --compact_retrain\)",
    ),
    BadInput(
        "flag-negative-seed",
        "secrets",
        _exit("--seeds", "-1"),
        SystemExit,
        r"^2: .*--seeds must be .*integers in \[0,",
    ),
    BadInput(
        "flag-bf16-with-fp16",
        "secrets",
        _exit("--bf16", "--fp16"),
        SystemExit,
        r"^2: .*--bf16 and --fp16 cannot both be set",
    ),
    # 2. hf-lottery writes only inside the folder it was given, and deletes only what it created.
    BadInput("files-user-work-folder-kept", "files", _user_work(remove=True), None),
    BadInput(
        "files-user-work-folder-not-used",
        "files",
        _user_work(remove=False),
        FileExistsError,
        r"\.work was not made by hf-lottery .*move it out of the run folder",
    ),
    BadInput(
        "files-report-stage-keeps-user-work",
        "files",
        _report_stage_with_user_work,
        FileExistsError,
        r"\.work was not made by hf-lottery",
    ),
    BadInput("files-own-work-removed-and-nothing-else", "files", _own_work, None),
    BadInput(
        "files-report-symlink-out",
        "files",
        _report_symlink,
        ValueError,
        r"run/report leads out of .*run through a symlink",
    ),
    BadInput("files-seed-folder-symlink-out", "files", _seed_symlink, ValueError, r"seed_1/finetuned leads out of"),
    BadInput(
        "files-onnx-side-file-symlink-out",
        "files",
        _onnx_side_file,
        ValueError,
        r"out/config\.json leads out of .*out",
    ),
    BadInput(
        "files-finetuned-folder-planted-link",
        "files",
        _planted_link(_finetune_into),
        ValueError,
        r"seed_1/finetuned/model\.safetensors leads out of",
    ),
    BadInput(
        "files-download-folder-planted-link",
        "files",
        _planted_link(_download_into),
        ValueError,
        r"out/model\.safetensors leads out of",
    ),
    BadInput("files-atomic-write-onto-link-out", "files", _link_out, ValueError, r"result\.json leads out of"),
    BadInput("files-atomic-write-onto-link-inside", "files", _link_inside, None),
    BadInput("files-ticket-mode-umask-077", "files", _ticket_modes(0o077), None),
    BadInput("files-ticket-mode-umask-022", "files", _ticket_modes(0o022), None),
    BadInput(
        "files-run-into-foreign-folder",
        "files",
        _run_into("notes.txt"),
        ValueError,
        r"is not empty and holds no hf-lottery run \(no run_config\.json\).*--overwrite_output_dir",
    ),
    BadInput("files-run-into-foreign-folder-when-asked", "files", _run_into("notes.txt", overwrite=True), None),
]
