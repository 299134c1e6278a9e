"""Bad data files and task names: a `ValueError` / `FileNotFoundError` naming the file (with its path and line
number for rows) or the task, never a bare conversion error."""

from __future__ import annotations

from hf_lottery.tasks.glue import canonical_task_name, dev_split_name, held_out_split, load_glue

from . import BadInput


STSB_HEADER = "index\tgenre\tfilename\tyear\told_index\tsource1\tsource2\tsentence1\tsentence2\tscore\n"
SST2_HEADER = "sentence\tlabel\n"


def _row(score: str) -> str:
    return f"0\tmain\tf\t2012\t0\ts\ts\tA man plays.\tA man is playing.\t{score}\n"


def _glue(task: str, files: dict[str, str]):
    def call(tmp_path):
        for name, text in files.items():
            (tmp_path / name).write_text(text, encoding="utf-8")
        return load_glue(task, tmp_path)

    return call


def _sst2(dev: str):
    return _glue("sst2", {"train.tsv": SST2_HEADER + "good film\t1\n", "dev.tsv": dev})


def _mnli_mismatched(tmp_path):
    assert dev_split_name("mnli-mm") == "validation_mismatched" and dev_split_name("MNLI") == "validation"
    assert canonical_task_name("mnli-mismatched") == "mnli"


def _held_out(tmp_path):
    import datasets

    held_out_split(datasets.Dataset.from_dict({"label": [0, 1, 0]}), 3)


CASES = [
    BadInput(
        "data-stsb-score-not-a-number",
        "data",
        _glue("stsb", {"train.tsv": STSB_HEADER + _row("abc")}),
        ValueError,
        r"train\.tsv, line 2: score 'abc' is not a finite number",
    ),
    BadInput(
        "data-stsb-score-nan",
        "data",
        _glue("stsb", {"train.tsv": STSB_HEADER + _row("4.0") + _row("nan")}),
        ValueError,
        r"train\.tsv, line 3: score 'nan'",
    ),
    BadInput(
        "data-stsb-dev-score-after-blank-line",
        "data",
        _glue("stsb", {"train.tsv": STSB_HEADER + _row("1"), "dev.tsv": STSB_HEADER + _row("2") + "\n" + _row("x")}),
        ValueError,
        r"dev\.tsv, line 4: score 'x'",
    ),
    BadInput(
        "data-sst2-unknown-label",
        "data",
        _sst2(SST2_HEADER + "fine\t1\nbad\tmaybe\n"),
        ValueError,
        r"dev\.tsv, line 3: label 'maybe' is not one of \['negative', 'positive'\]",
    ),
    BadInput(
        "data-sst2-label-out-of-range",
        "data",
        _sst2(SST2_HEADER + "fine\t7\n"),
        ValueError,
        r"dev\.tsv, line 2: label '7'",
    ),
    BadInput(
        "data-sst2-too-few-fields",
        "data",
        _sst2(SST2_HEADER + "fine\t1\nno label here\n"),
        ValueError,
        r"dev\.tsv, line 3: 1 fields, expected 2",
    ),
    BadInput("data-sst2-empty-dev", "data", _sst2(""), ValueError, r"dev\.tsv is empty \(expected a header line\)"),
    BadInput(
        "data-sst2-missing-column",
        "data",
        _sst2("text\tlabel\nfine\t1\n"),
        ValueError,
        r"dev\.tsv lacks column\(s\) \['sentence'\]",
    ),
    BadInput(
        "data-sst2-no-dev-file",
        "data",
        _glue("sst2", {"train.tsv": SST2_HEADER + "good\t1\n"}),
        FileNotFoundError,
        r"has no dev\.tsv",
    ),
    BadInput("data-no-train-file", "data", _glue("rte", {}), FileNotFoundError, r"No train\.tsv for RTE"),
    BadInput(
        "data-unknown-task",
        "data",
        lambda tmp_path: canonical_task_name("glue-17"),
        ValueError,
        r"Unknown task 'glue-17'; choose one of",
    ),
    BadInput(
        "data-task-not-a-string",
        "data",
        lambda tmp_path: canonical_task_name(3),
        TypeError,
        r"task name must be a string",
    ),
    BadInput("data-held-out-everything", "data", _held_out, ValueError, r"held-out size 3 gives 3 of 3 examples"),
    BadInput("data-mnli-mm-is-mismatched", "data", _mnli_mismatched, None),
]
