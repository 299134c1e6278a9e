"""Import of the paper's own mask folders (``head_mask.npy`` / ``mlp_mask.npy``) into tickets."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch

from .ticket import BERT_BASE_DIMS, _as_bool_mask


if TYPE_CHECKING:
    from .ticket import LotteryTicket


def load_legacy(
    cls: type[LotteryTicket],
    path: str | os.PathLike,
    *,
    base_model: str | None,
    model_dims: dict[str, int] | None,
    task: str | None,
    seed: int | None,
) -> LotteryTicket:
    """See `LotteryTicket.from_legacy`."""
    folder = Path(path)
    if not folder.is_dir():
        raise FileNotFoundError(f"No legacy mask folder at {folder} (expected head_mask.npy and mlp_mask.npy).")
    head_file = folder / "head_mask.npy"
    if not head_file.is_file():
        raise FileNotFoundError(f"{folder} has no head_mask.npy; a legacy mask folder needs at least that file.")

    def load(name: str):
        try:
            return np.load(folder / name, allow_pickle=False)
        except (ValueError, OSError, EOFError) as err:
            raise ValueError(f"{folder / name} is not a readable .npy array: {err}") from err

    head_mask = load("head_mask.npy")
    mlp_mask = load("mlp_mask.npy") if (folder / "mlp_mask.npy").is_file() else np.ones(head_mask.shape[0])
    scores = {}
    for name in ("head_importance", "mlp_importance"):
        if (folder / f"{name}.npy").is_file():
            scores[name] = torch.from_numpy(np.asarray(load(f"{name}.npy"), dtype=np.float32))
    match = re.fullmatch(r"seed_(\d+)", folder.name)
    if seed is None and match:
        seed = int(match.group(1))
    if task is None and match:
        task = folder.parent.name or None
    if model_dims is None and tuple(head_mask.shape) == (12, 12):
        model_dims = dict(BERT_BASE_DIMS)
    return cls(
        head_mask=_as_bool_mask(str(head_file), head_mask, ndim=2),
        mlp_mask=_as_bool_mask(str(folder / "mlp_mask.npy"), mlp_mask, ndim=1),
        method="structured",
        kind="good",
        base_model=base_model,
        task=task,
        seed=seed,
        model_dims=model_dims,
        extra={"imported_from": "legacy-npy"},
        **scores,
    )
