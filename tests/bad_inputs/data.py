"""Bad data files and task names: a `ValueError` / `FileNotFoundError` naming the file (with its path and line
number for rows) or the task, never a bare conversion error."""

from __future__ import annotations

import numpy as np
import torch

from hf_lottery.search.dataloader import search_dataloader
from hf_lottery.search.structured import find_structured_ticket
from hf_lottery.structure import EncoderStructure
from hf_lottery.tasks.glue import (
    canonical_task_name,
    dev_split_name,
    held_out_split,
    load_glue,
    load_text_classification,
    tokenize_for_classification,
)
from hf_lottery.tasks.metrics import get_task_metric

from ..conftest import tiny_batch, tiny_bert
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


def _dataset(**columns):
    import datasets

    return datasets.Dataset.from_dict(columns)


def _users_data(**columns):
    return lambda tmp_path: load_text_classification(_dataset(**columns), text_columns=["sentence"])


def _users_file(name: str, data: bytes, **kwargs):
    def call(tmp_path):
        (tmp_path / name).write_bytes(data)
        return load_text_classification({"train": tmp_path / name}, text_columns=["sentence"], **kwargs)

    return call


def _legal_quoted_csv(tmp_path):
    text = 'sentence,label\n"a comma, and a\nline break",pos\n"NA",neg\n'
    data = _users_file("train.csv", text.encode())(tmp_path)["train"]
    assert data["sentence"] == ["a comma, and a\nline break", "NA"] and data["label"] == [1, 0]


def _tokenize(**columns):
    from transformers import BertTokenizerFast

    def call(tmp_path):
        vocab = tmp_path / "vocab.txt"
        vocab.write_text("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "good", "film"]))
        return tokenize_for_classification(_dataset(**columns), BertTokenizerFast(str(vocab)), ["sentence"])

    return call


def _search_data(**columns):
    return lambda tmp_path: search_dataloader(_dataset(input_ids=[[5, 6]] * 2, **columns).with_format("torch"))


def _search(model_kwargs: dict, metric: str, labels: list):
    def call(tmp_path):
        batch = tiny_batch(batch_size=len(labels))
        batch["labels"] = torch.tensor(labels)
        model = tiny_bert(**model_kwargs)
        return find_structured_ticket(model, [batch], metric, target_heads=7, progress=False)

    return call


def _shared_layers(tmp_path):
    model = tiny_bert()
    model.bert.encoder.layer[1] = model.bert.encoder.layer[0]
    return EncoderStructure(model)


def _shared_query(tmp_path):
    model = tiny_bert()
    model.bert.encoder.layer[1].attention.self.query.weight = model.bert.encoder.layer[0].attention.self.query.weight
    return find_structured_ticket(model, [tiny_batch()], "sst2", target_heads=7, progress=False)


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
    # ---- missing values are refused, never read as the text "None"
    BadInput(
        "data-users-text-none",
        "data",
        _users_data(sentence=["good", None], label=["pos", "neg"]),
        ValueError,
        r"Split 'train', column 'sentence': example 1 \(counting from 0\) has no value \(None\); it would be read as 'None'",
    ),
    BadInput(
        "data-users-label-none",
        "data",
        _users_data(sentence=["good", "bad", "fine"], label=["pos", "neg", None]),
        ValueError,
        r"column 'label': example 2 .* has no value \(None\)",
    ),
    BadInput(
        "data-users-regression-score-nan",
        "data",
        lambda tmp_path: load_text_classification(
            _dataset(sentence=["a", "b"], score=[1.5, float("nan")]),
            text_columns=["sentence"],
            label_column="score",
            regression=True,
        ),
        ValueError,
        r"column 'score': example 1 .* has no value \(nan\)",
    ),
    BadInput(
        "data-users-csv-short-row",
        "data",
        _users_file("train.csv", b"sentence,label\ngood,pos\nno label here\n"),
        ValueError,
        r"train\.csv, line 3: 1 fields, expected 2",
    ),
    BadInput("data-users-quoted-csv-is-legal", "data", _legal_quoted_csv, None),
    BadInput(
        "data-tokenize-text-none",
        "data",
        _tokenize(sentence=["good film", None], label=[0, 1]),
        ValueError,
        r"Column 'sentence': example 1 \(counting from 0\) has no value",
    ),
    BadInput(
        "data-search-label-none",
        "data",
        _search_data(label=[0, None]),
        ValueError,
        r"The search data's 'label' column: example 1 .* has no value",
    ),
    # ---- STS-B scores outside [0, 5]
    BadInput(
        "data-stsb-score-above-five",
        "data",
        _glue("stsb", {"train.tsv": STSB_HEADER + _row("4.0") + _row("5.5")}),
        ValueError,
        r"train\.tsv, line 3: score '5\.5' is not a finite number in \[0\.0, 5\.0\]",
    ),
    BadInput(
        "data-stsb-score-negative",
        "data",
        _glue("stsb", {"train.tsv": STSB_HEADER + _row("-0.2")}),
        ValueError,
        r"line 2: score '-0\.2' is not a finite number in \[0\.0, 5\.0\]",
    ),
    # ---- both `label` and `labels`
    BadInput(
        "data-tokenize-label-and-labels",
        "data",
        _tokenize(sentence=["good", "film"], label=[0, 1], labels=[1, 0]),
        ValueError,
        r"The dataset has label columns \['labels', 'label'\]: one would be used and the other silently ignored",
    ),
    BadInput(
        "data-search-label-and-label-ids",
        "data",
        _search_data(label=[0, 1], label_ids=[1, 0]),
        ValueError,
        r"The search data has label columns \['label', 'label_ids'\]",
    ),
    # ---- a model searched with a metric of the other kind, or a multi-label model
    BadInput(
        "data-regression-model-classification-metric",
        "data",
        _search({"num_labels": 1}, "sst2", [0.0, 1.0, 1.0, 0.0]),
        ValueError,
        r"The metric 'accuracy' of task 'sst2' scores single-label classification .* given one score per example "
        r"\(num_labels=1\)",
    ),
    BadInput(
        "data-classification-model-regression-metric",
        "data",
        _search({}, "stsb", [0, 1, 1, 0]),
        ValueError,
        r"The metric 'pearson_spearman_mean' of task 'stsb' scores regression .* given logits of 2 classes",
    ),
    BadInput(
        "data-classification-model-float-scores",
        "data",
        _search({}, "sst2", [3.8, 1.2, 0.5, 4.0]),
        ValueError,
        r"float labels \(e\.g\. 3\.8\) for a model of num_labels=2 classes: .* scores \(STS-B\) need num_labels=1",
    ),
    BadInput(
        "data-metric-given-regression-scores",
        "data",
        lambda tmp_path: get_task_metric("mrpc").score(np.array([0.2, 0.9]), np.array([0, 1])),
        ValueError,
        r"'accuracy' of task 'mrpc' scores single-label classification .* one score per example",
    ),
    BadInput(
        "data-multi-label-model",
        "data",
        _search({"problem_type": "multi_label_classification"}, "sst2", [0, 1, 1, 0]),
        ValueError,
        r"problem_type='multi_label_classification'; .* load it with problem_type='single_label_classification'",
    ),
    BadInput(
        "data-multi-label-labels",
        "data",
        lambda tmp_path: get_task_metric("sst2").score(np.zeros((2, 2)), np.array([[0, 1], [1, 0]])),
        ValueError,
        r"given labels of shape \(2, 2\) \(problem_type='multi_label_classification'\)",
    ),
    # ---- layers sharing one module
    BadInput(
        "data-model-layers-share-a-module",
        "data",
        _shared_layers,
        ValueError,
        r"`layer\.0\.attention\.self\.query\.weight` and `layer\.1\.attention\.self\.query\.weight` are one "
        r"parameter .* Give every layer its own modules",
    ),
    BadInput(
        "data-model-layers-share-a-weight",
        "data",
        _shared_query,
        ValueError,
        r"`layer\.0\.attention\.self\.query\.weight` and `layer\.1\.attention\.self\.query\.weight` are one",
    ),
    # ---- files that are not UTF-8
    BadInput(
        "data-tsv-not-utf8",
        "data",
        lambda tmp_path: _sst2_bytes(tmp_path, SST2_HEADER.encode() + b"fine\t1\ncaf\xe9 au lait\t0\n"),
        ValueError,
        r"dev\.tsv, line 3: byte 0xe9 is not UTF-8 text\. Re-save the file as UTF-8",
    ),
    BadInput(
        "data-users-csv-not-utf8",
        "data",
        _users_file("train.csv", b"sentence,label\n" + b"ok,pos\n" * 5000 + b"\xff\xfe,neg\n"),
        ValueError,
        r"train\.csv, line 5002: byte 0xff is not UTF-8 text",
    ),
]


def _sst2_bytes(tmp_path, dev: bytes):
    (tmp_path / "train.tsv").write_text(SST2_HEADER + "good film\t1\n", encoding="utf-8")
    (tmp_path / "dev.tsv").write_bytes(dev)
    return load_glue("sst2", tmp_path)
