"""Import of the paper's own mask folders (``head_mask.npy`` / ``mlp_mask.npy``) into tickets: `load_legacy_ticket`."""

from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np

from .fields import BERT_BASE_DIMS, as_bool_mask
from .serialization import SCORE_NAMES
from .ticket import LotteryTicket


def load_legacy_ticket(
    path: str | os.PathLike,
    *,
    base_model: str | os.PathLike | None = "bert-base-uncased",
    model_dims: dict[str, int] | None = None,
    task: str | None = None,
    seed: int | None = None,
) -> LotteryTicket:
    """Import a folder of the paper's code: ``head_mask.npy`` [L,H] and ``mlp_mask.npy`` [L] (1 = kept).

    ``head_importance.npy`` / ``mlp_importance.npy`` are imported when present. The task and seed are read from
    folder names such as ``CoLA/seed_1337`` unless given. The files carry no model identity; `base_model` defaults
    to the paper's ``bert-base-uncased`` and `model_dims` to bert-base when the mask is 12×12. The arrays are read
    with ``allow_pickle=False``.

    Raises:
        FileNotFoundError: no folder, or no ``head_mask.npy`` in it.
        ValueError: an unreadable ``.npy`` file or a mask of values other than 0 and 1 (the message names the file).

    Example:

    ```python
    >>> import tempfile, numpy as np
    >>> from pathlib import Path
    >>> folder = Path(tempfile.mkdtemp()) / "CoLA" / "seed_1337"
    >>> folder.mkdir(parents=True)
    >>> np.save(folder / "head_mask.npy", np.ones((12, 12)))
    >>> np.save(folder / "mlp_mask.npy", np.array([1.0] * 11 + [0.0]))
    >>> ticket = load_legacy_ticket(folder)
    >>> ticket.task, ticket.seed, ticket.summary()["kept_mlps"], ticket.base_model
    ('CoLA', 1337, 11, 'bert-base-uncased')

    ```
    """
    folder = Path(path)
    if not folder.is_dir():
        raise FileNotFoundError(f"No legacy mask folder at {folder} (expected head_mask.npy and mlp_mask.npy).")
    head_file = folder / "head_mask.npy"
    if not head_file.is_file():
        raise FileNotFoundError(f"{folder} has no head_mask.npy; a legacy mask folder needs at least that file.")

    def load(name: str) -> np.ndarray:
        try:
            array = np.load(folder / name, allow_pickle=False)
        except (ValueError, OSError, EOFError) as err:
            raise ValueError(f"{folder / name} is not a readable .npy array: {err}") from err
        return array.astype(array.dtype.newbyteorder("="))  # e.g. big-endian '>f4' arrays, in native byte order

    head_mask = load("head_mask.npy")
    mlp_mask = load("mlp_mask.npy") if (folder / "mlp_mask.npy").is_file() else np.ones(head_mask.shape[0])
    scores = {name: load(f"{name}.npy") for name in SCORE_NAMES if (folder / f"{name}.npy").is_file()}
    if match := re.fullmatch(r"seed_(\d+)", folder.name):
        seed = int(match.group(1)) if seed is None else seed
        task = (folder.parent.name or None) if task is None else task
    if model_dims is None and tuple(head_mask.shape) == (12, 12):
        model_dims = dict(BERT_BASE_DIMS)
    return LotteryTicket(
        head_mask=as_bool_mask(str(head_file), head_mask, ndim=2),
        mlp_mask=as_bool_mask(str(folder / "mlp_mask.npy"), mlp_mask, ndim=1),
        base_model=base_model,
        task=task,
        seed=seed,
        model_dims=model_dims,
        extra={"imported_from": "legacy-npy"},
        library_versions={},
        **scores,
    )
