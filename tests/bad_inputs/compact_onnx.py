"""Bad inputs to compacted re-fine-tuning (`rewind(compact=True)`, `expand_compact_model`) and `export_onnx`."""

from __future__ import annotations

import torch

from hf_lottery import LotteryTicket, export_onnx, rewind
from hf_lottery.models.expansion import expand_compact_model

from ..conftest import tiny_bert
from . import BadInput


def _magnitude_ticket(tmp_path):
    model = tiny_bert()
    ticket = LotteryTicket.full(model, kind="custom", method="magnitude", base_model=str(tmp_path))
    name = "layer.0.attention.self.query.weight"
    return ticket.copy(weight_masks={name: torch.ones(32, 32, dtype=torch.bool)})


def _text_file(tmp_path):
    (tmp_path / "model.txt").write_text("not a model")
    return tmp_path / "model.txt"


CASES = [
    BadInput(
        "rewind-compact-magnitude-ticket",
        "training",
        lambda tmp_path: rewind(_magnitude_ticket(tmp_path), num_labels=2, compact=True),
        ValueError,
        r"compact=True.*`weight_masks`",
    ),  # fmt: skip
    BadInput(
        "expand-dense-model",
        "compaction",
        lambda tmp_path: expand_compact_model(tiny_bert()),
        ValueError,
        r"no `hf_lottery_pruning` entry",
    ),  # fmt: skip
    BadInput(
        "onnx-missing-folder",
        "models",
        lambda tmp_path: export_onnx(tmp_path / "nope", tmp_path / "out"),
        FileNotFoundError,
        r"nope is not a local model folder",
    ),  # fmt: skip
    BadInput(
        "onnx-file-not-folder",
        "models",
        lambda tmp_path: export_onnx(_text_file(tmp_path), tmp_path / "out"),
        FileNotFoundError,
        r"model.txt is not a local model folder",
    ),  # fmt: skip
    BadInput(
        "onnx-folder-without-config",
        "models",
        lambda tmp_path: export_onnx(tmp_path, tmp_path / "out"),
        FileNotFoundError,
        r"has no config.json",
    ),  # fmt: skip
    BadInput(
        "onnx-not-a-model",
        "models",
        lambda tmp_path: export_onnx({"input_ids": 1}, tmp_path / "out"),
        TypeError,
        r"model_or_folder must be a torch model or a folder path; got dict",
    ),  # fmt: skip
    BadInput(
        "onnx-compact-without-ticket",
        "models",
        lambda tmp_path: export_onnx(tiny_bert(), tmp_path, compact=True),
        ValueError,
        r"compact=True needs a ticket",
    ),  # fmt: skip
]
