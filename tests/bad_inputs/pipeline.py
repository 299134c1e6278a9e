"""Bad pipeline settings: each is refused before any work starts, with a message naming the setting (the command
line shows it as the flag, e.g. `threshold` -> --threshold)."""

from __future__ import annotations

import json

from hf_lottery.pipeline.config import RunSettings, check_resume
from hf_lottery.pipeline.runner import run_pipeline

from . import BadInput


def _settings(**kwargs):
    values = dict(task_name="demo", output_dir="runs/x")
    values.update(kwargs)
    return lambda tmp_path: RunSettings.from_kwargs(**values)


def _resume_with(previous_fingerprint=None, finished=None, **kwargs):
    def call(tmp_path):
        settings = RunSettings.from_kwargs(task_name="demo", output_dir=str(tmp_path), **kwargs)
        previous = None if previous_fingerprint is None else {"fingerprint": previous_fingerprint(settings)}
        check_resume(settings, previous, finished or {})

    return call


def _glue_root(tmp_path, *folders: str) -> str:
    """A GLUE root holding SST-2 and RTE folders (a sentence / two sentences per example), or the named ones."""
    files = {"SST-2": "sentence\tlabel\ngood film\t1\nbad film\t0\n",
             "RTE": "index\tsentence1\tsentence2\tlabel\n0\tA.\tB.\tentailment\n1\tC.\tD.\tnot_entailment\n"}  # fmt: skip
    for name in folders or files:
        (tmp_path / "glue" / name).mkdir(parents=True)
        for split in ("train.tsv", "dev.tsv"):
            (tmp_path / "glue" / name / split).write_text(files[name])
    return str(tmp_path / "glue")


def _swapped_folders(tmp_path):
    root = _glue_root(tmp_path)
    settings = RunSettings.from_kwargs(
        task_name=["sst2", "rte"], data_dir=[f"{root}/RTE", f"{root}/SST-2"], output_dir=str(tmp_path / "out")
    )
    try:
        run_pipeline(settings)
    finally:
        assert not (tmp_path / "out").exists()  # every task's data is read before anything is written


def _redaction(tmp_path):
    settings = RunSettings.from_kwargs(task_name="demo", output_dir="x", seeds=[1], hub_token="hf_x")
    assert settings.command_line("run") == "run --task_name demo --seeds 1 --output_dir x"
    assert "hf_" not in json.dumps(settings.to_dict())


CASES = [
    BadInput(
        "pipeline-super-retrain-seeds-negative",
        "pipeline",
        _settings(super_retrain_seeds=-1),
        ValueError,
        r"`super_retrain_seeds` must be an integer >= 0",
    ),
    BadInput(
        "pipeline-threshold-above-one", "pipeline", _settings(threshold=1.5), ValueError, r"`threshold` must be in"
    ),
    BadInput(
        "pipeline-train-samples-zero",
        "pipeline",
        _settings(max_train_samples=0),
        ValueError,
        r"`max_train_samples` must be an integer >= 1",
    ),
    BadInput(
        "pipeline-train-samples-negative",
        "pipeline",
        _settings(max_train_samples=-5),
        ValueError,
        r"`max_train_samples`",
    ),
    BadInput(
        "pipeline-eval-samples-zero", "pipeline", _settings(max_eval_samples=0), ValueError, r"`max_eval_samples`"
    ),
    BadInput(
        "pipeline-search-samples-zero",
        "pipeline",
        _settings(max_search_samples=0),
        ValueError,
        r"`max_search_samples`",
    ),
    BadInput(
        "pipeline-no-seeds", "pipeline", _settings(seeds=[]), ValueError, r"`seeds` must be one or more integers"
    ),
    BadInput("pipeline-duplicate-seeds", "pipeline", _settings(seeds=[1, 1]), ValueError, r"`seeds` must be distinct"),
    BadInput(
        "pipeline-unknown-stage",
        "pipeline",
        _settings(stages=["dance"]),
        ValueError,
        r"`stages` must be one or more of \['finetune'",
    ),
    BadInput(
        "pipeline-unknown-method",
        "pipeline",
        _settings(methods=["lottery"]),
        ValueError,
        r"`methods` must be one or more of",
    ),
    BadInput(
        "pipeline-kinds-without-good",
        "pipeline",
        _settings(kinds=["random"]),
        ValueError,
        r"`kinds` must include 'good'",
    ),
    BadInput(
        "pipeline-negative-learning-rate",
        "pipeline",
        _settings(learning_rate=-1.0),
        ValueError,
        r"`learning_rate` must be a number > 0",
    ),
    BadInput(
        "pipeline-zero-batch-size",
        "pipeline",
        _settings(per_device_train_batch_size=0),
        ValueError,
        r"`per_device_train_batch_size`",
    ),
    BadInput(
        "pipeline-zero-max-length",
        "pipeline",
        _settings(max_seq_length=0),
        ValueError,
        r"`max_seq_length` must be an integer >= 1",
    ),
    BadInput(
        "pipeline-no-output-dir",
        "pipeline",
        lambda tmp_path: RunSettings.from_kwargs(task_name="demo"),
        ValueError,
        r"`output_dir` is required",
    ),
    BadInput(
        "pipeline-single-seed-flag",
        "pipeline",
        _settings(seed=3),
        ValueError,
        r"`seed` is set per fine-tune from `seeds`",
    ),
    BadInput(
        "pipeline-push-without-repo",
        "pipeline",
        _settings(push_to_hub=True),
        ValueError,
        r"`push_to_hub` needs `hub_model_id`",
    ),
    BadInput(
        "pipeline-unknown-setting",
        "pipeline",
        _settings(thresold=0.8),
        TypeError,
        r"Unknown setting\(s\) \['thresold'\]",
    ),
    BadInput(
        "pipeline-unknown-task",
        "pipeline",
        _settings(task_name="sst3"),
        ValueError,
        r"`task_name`: Unknown task 'sst3'",
    ),
    BadInput(
        "pipeline-data-dir-missing",
        "pipeline",
        lambda tmp_path: RunSettings.from_kwargs(task_name="sst2", output_dir="x", data_dir=str(tmp_path / "nope")),
        ValueError,
        r"`data_dir` .*nope' is not a folder",
    ),
    BadInput(
        "pipeline-tasks-twice",
        "pipeline",
        _settings(task_name=["sst2", "SST-2"]),
        ValueError,
        r"`task_name`: each task once; got \['sst2', 'SST-2'\]",
    ),
    BadInput(
        "pipeline-tasks-one-unknown",
        "pipeline",
        _settings(task_name=["mrpc", "sst3"]),
        ValueError,
        r"`task_name`: Unknown task 'sst3'",
    ),
    BadInput(
        "pipeline-tasks-data-dirs-miscounted",
        "pipeline",
        lambda tmp_path: RunSettings.from_kwargs(
            task_name=["sst2", "mrpc", "rte"], output_dir="x", data_dir=[str(tmp_path), str(tmp_path)]
        ),
        ValueError,
        r"`data_dir`: one folder \(a GLUE root\) or one per task \(3\); got",
    ),
    BadInput(
        "pipeline-tasks-one-data-dir-missing",
        "pipeline",
        lambda tmp_path: RunSettings.from_kwargs(
            task_name=["sst2", "mrpc"], output_dir="x", data_dir=[str(tmp_path), str(tmp_path / "nope")]
        ),
        ValueError,
        r"`data_dir` .*nope' is not a folder",
    ),
    BadInput(
        "pipeline-tasks-push",
        "pipeline",
        _settings(task_name=["demo", "sst2"], push_to_hub=True, hub_model_id="you/x"),
        ValueError,
        r"`push_to_hub` publishes one task's ticket: .*hf-lottery push OUTPUT_DIR/TASK/seed_S",
    ),
    BadInput(
        "pipeline-resume-other-tasks",
        "pipeline",
        lambda tmp_path: check_resume(
            RunSettings.from_kwargs(task_name=["demo", "rte"], output_dir=str(tmp_path)),
            {"fingerprint": {"task_name": ["demo", "sst2"]}},
            {},
        ),
        ValueError,
        r"holds a run with other settings \(--task_name \['demo', 'sst2'\] -> \['demo', 'rte'\]\)",
    ),
    BadInput(
        "pipeline-tasks-one-task-folder-for-several",
        "pipeline",
        lambda tmp_path: RunSettings.from_kwargs(
            task_name=["sst2", "rte"], output_dir="x", data_dir=f"{_glue_root(tmp_path, 'SST-2')}/SST-2"
        ),
        ValueError,
        r"`data_dir` .*SST-2' serves 2 tasks, so it must be a GLUE root; it has no SST-2/train\.tsv",
    ),
    BadInput(
        "pipeline-tasks-root-without-a-task",
        "pipeline",
        lambda tmp_path: RunSettings.from_kwargs(
            task_name=["sst2", "qnli"], output_dir="x", data_dir=_glue_root(tmp_path)
        ),
        ValueError,
        r"serves 2 tasks, so it must be a GLUE root; it has no QNLI/train\.tsv",
    ),
    BadInput(
        "pipeline-tasks-folders-swapped", "pipeline", _swapped_folders, ValueError, r"lacks column\(s\) \['sentence'\]"
    ),
    BadInput(
        "pipeline-tasks-mnli-twice",
        "pipeline",
        _settings(task_name=["mnli", "mnli-mm"]),
        ValueError,
        r"each task once; .* \(mnli-mm is MNLI scored on its mismatched dev set: run it in a folder of its own\)",
    ),
    BadInput(
        "pipeline-resume-one-task-in-a-grid-folder",
        "pipeline",
        lambda tmp_path: check_resume(
            RunSettings.from_kwargs(task_name="sst2", output_dir=str(tmp_path)),
            {"fingerprint": {"task_name": ["sst2", "mrpc"]}},
            {},
        ),
        ValueError,
        r"holds a run of several tasks \(sst2, mrpc\); each of them is a run in its own folder, e\.g\. --output_dir .*sst2",
    ),
    BadInput(
        "pipeline-resume-several-tasks-in-a-task-folder",
        "pipeline",
        lambda tmp_path: check_resume(
            RunSettings.from_kwargs(task_name=["sst2", "mrpc"], output_dir=str(tmp_path)),
            {"fingerprint": {"task_name": "sst2"}},
            {},
        ),
        ValueError,
        r"holds a run of one task \(sst2\); use another --output_dir for several tasks",
    ),
    BadInput(
        "pipeline-model-folder-missing",
        "pipeline",
        _settings(model_name_or_path="./no/such/model"),
        ValueError,
        r"`model_name_or_path` './no/such/model' is not a folder",
    ),
    BadInput(
        "pipeline-resume-other-threshold",
        "pipeline",
        _resume_with(lambda s: {**s.fingerprint(), "threshold": 0.8}),
        ValueError,
        r"other settings \(--threshold 0\.8 -> 0\.9\)",
    ),
    BadInput(
        "pipeline-resume-other-warmup",
        "pipeline",
        _resume_with(lambda s: {k: v for k, v in s.fingerprint().items() if k != "warmup_steps"}, warmup_steps=5),
        ValueError,
        r"--warmup_steps 'unset' -> 5",
    ),
    BadInput(
        "pipeline-resume-other-model",
        "pipeline",
        _resume_with(None, {"seed_42": "bert-base-uncased"}),
        ValueError,
        r"seed_42 was fine-tuned from 'bert-base-uncased', not from --model_name_or_path",
    ),
    BadInput("pipeline-token-redacted", "pipeline", _redaction, None),
]
