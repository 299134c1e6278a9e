"""A ticket folder's two files, written atomically as a pair and read back with every check: ``ticket_config.json``
(sorted JSON: format version, metadata, the masks' summary counts and sha256) and ``ticket_masks.safetensors``
(masks and scores, byte-identical for the same ticket). It knows the format, not the `LotteryTicket` class.

Saving keeps the current masks under their content address (``.ticket_masks.<sha256>.safetensors``, a hard link),
renames the new masks over the masks file, then renames the config naming their sha256 over the config file: the
commit. A failure before it puts the previous masks back; after a kill between the renames the previous config still
loads the kept masks (with a warning). The next save removes what is stale; other files are never touched.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save
from transformers.utils import logging

from .._version import __version__
from ..atomic import sha256_file, write_bytes, write_text
from ..files import TICKET_CONFIG_NAME, TICKET_MASKS_NAME


logger = logging.get_logger(__name__)

FORMAT_VERSION = 1
SCORE_NAMES = ("head_importance", "mlp_importance")
_KEPT_PREFIX = "." + TICKET_MASKS_NAME.rsplit(".", 1)[0] + "."  # .ticket_masks.<sha256>.safetensors
_KEPT_SUFFIX = "." + TICKET_MASKS_NAME.rsplit(".", 1)[1]


def check_format_version(version: Any, where: str) -> int:
    """The ticket format version of a config or entry, or a `ValueError` naming `where` and the readable range.

    Example:

    ```python
    >>> check_format_version(1, "ticket_config.json")
    1
    >>> check_format_version("1", "ticket_config.json")
    Traceback (most recent call last):
    ValueError: ticket_config.json has `format_version` '1'; an hf-lottery ticket has an integer format version ...

    ```
    """
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise ValueError(
            f"{where} has `format_version` {version!r}; an hf-lottery ticket has an integer format version from 1 to "
            f"{FORMAT_VERSION}."
        )
    if version > FORMAT_VERSION:
        raise ValueError(
            f"{where} has ticket format version {version}; this hf-lottery ({__version__}) reads up to "
            f"{FORMAT_VERSION}. Upgrade hf-lottery."
        )
    return version


def masks_file_bytes(tensors: dict[str, torch.Tensor]) -> bytes:
    """The masks file's bytes: safetensors with its header (metadata included) in sorted order, so deterministic.

    Example:

    ```python
    >>> import torch
    >>> tensors = {"mlp_mask": torch.ones(2, dtype=torch.bool), "head_mask": torch.ones(2, 2, dtype=torch.bool)}
    >>> masks_file_bytes(tensors) == masks_file_bytes(dict(reversed(tensors.items())))
    True

    ```
    """
    metadata = {"format": "pt", "hf_lottery_format_version": str(FORMAT_VERSION), "library": "hf-lottery"}
    raw = save({name: t.detach().cpu().contiguous() for name, t in tensors.items()}, metadata=metadata)
    size = int.from_bytes(raw[:8], "little")
    header = json.dumps(json.loads(raw[8 : 8 + size]), sort_keys=True, separators=(",", ":")).encode()
    header += b" " * (-len(header) % 8)  # safetensors pads its header with spaces to 8 bytes
    return len(header).to_bytes(8, "little") + header + raw[8 + size :]


def _kept_masks_path(folder: Path, digest: str) -> Path:
    return folder / f"{_KEPT_PREFIX}{digest}{_KEPT_SUFFIX}"


def _remove_stale(folder: Path) -> None:
    for path in folder.iterdir():
        name = path.name
        digest = name[len(_KEPT_PREFIX) : -len(_KEPT_SUFFIX)]
        stale_kept = name.startswith(_KEPT_PREFIX) and name.endswith(_KEPT_SUFFIX) and len(digest) == 64
        stale_tmp = name.startswith((f".{TICKET_MASKS_NAME}.", f".{TICKET_CONFIG_NAME}.")) and name.endswith(".tmp")
        if stale_kept or stale_tmp:
            with contextlib.suppress(OSError):
                path.unlink()


@contextlib.contextmanager
def _locked(folder: Path, exclusive: bool) -> Iterator[None]:
    """Run concurrent saves and loads of one ticket folder one at a time, by an flock of the folder (no lock file;
    none where flock is unavailable: Windows, some network file systems)."""
    with contextlib.ExitStack() as stack:
        with contextlib.suppress(OSError, ImportError):
            import fcntl  # not on Windows

            descriptor = os.open(folder, os.O_RDONLY)
            stack.callback(os.close, descriptor)  # closing releases the lock
            fcntl.flock(descriptor, fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH)
        yield


def write_ticket_files(folder: str | os.PathLike, config: dict[str, Any], tensors: dict[str, torch.Tensor]) -> Path:
    """Write ``ticket_config.json`` (`config`, `mask_counts`, ``masks_sha256``) and the masks file as one commit.

    `NotADirectoryError` when `folder` is a file; `TypeError` (nothing changed) when JSON cannot write `config`.

    Example:

    ```python
    >>> import tempfile, torch
    >>> from pathlib import Path
    >>> folder = Path(tempfile.mkdtemp())
    >>> _ = (folder / "model.safetensors").write_bytes(b"weights")  # other files are kept
    >>> tensors = {"head_mask": torch.ones(1, 2, dtype=torch.bool), "mlp_mask": torch.ones(1, dtype=torch.bool)}
    >>> _ = write_ticket_files(folder, {"format_version": 1}, tensors)
    >>> sorted(p.name for p in folder.iterdir())
    ['model.safetensors', 'ticket_config.json', 'ticket_masks.safetensors']

    ```
    """
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise NotADirectoryError(f"Cannot save a ticket into {folder}: it is a file, not a folder.")
    data = masks_file_bytes(tensors)
    digest = hashlib.sha256(data).hexdigest()
    config = {**mask_counts(tensors), **config, "masks_sha256": digest}
    text = json.dumps(config, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
    folder.mkdir(parents=True, exist_ok=True)
    with _locked(folder, exclusive=True):
        masks_path = folder / TICKET_MASKS_NAME
        current = sha256_file(masks_path) if masks_path.is_file() else None
        kept = None if current in (None, digest) else _kept_masks_path(folder, current)
        if kept is not None and not kept.exists():  # keep the current masks under their content address
            try:
                os.link(masks_path, kept)
            except OSError:  # no hard links on this file system
                shutil.copy2(masks_path, kept)
        replaced = False
        try:
            if current != digest:
                write_bytes(masks_path, data)
                replaced = True
            write_text(folder / TICKET_CONFIG_NAME, text)  # the commit point
        except BaseException:
            if replaced:  # put the previous masks back (or remove masks no config names)
                with contextlib.suppress(OSError):
                    if kept is not None:
                        os.replace(kept, masks_path)
                    elif not (folder / TICKET_CONFIG_NAME).is_file():
                        masks_path.unlink()
            raise
        _remove_stale(folder)
    return folder


def _checked_masks_file(config: dict[str, Any], config_file: Path, masks_file: Path) -> Path:
    """The masks file the config's checksum names: the masks file, or the one a cut-off save kept."""
    expected = config.get("masks_sha256")
    if expected is None:
        return masks_file
    if not isinstance(expected, str) or len(expected) != 64 or expected.strip("0123456789abcdef"):  # names a file
        raise ValueError(f"{config_file} has `masks_sha256` {expected!r}; expected a sha256 hex digest.")
    if sha256_file(masks_file) == expected:
        return masks_file
    kept = _kept_masks_path(masks_file.parent, expected)
    if kept.is_file() and sha256_file(kept) == expected:
        logger.warning(
            f"{masks_file} holds the masks of an unfinished save; loading the ticket {config_file.name} records (its "
            f"masks were kept as {kept.name}). Save the ticket again to finish."
        )
        return kept
    raise ValueError(
        f"{masks_file} does not match the checksum recorded in {config_file.name}: a save was cut off between the "
        "two files, or the masks file was replaced, truncated or corrupted. The way out: save the ticket again, or "
        f"delete {masks_file.parent} and re-run the step that wrote it (a resumed search then redoes that step)."
    )


def _is_count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _count(config: dict[str, Any], key: str, config_file: Path) -> Any:
    value = config.get(key)
    if value is not None and not all(map(_is_count, value if isinstance(value, list) else [value])):
        raise ValueError(f"{config_file} has `{key}` {value!r}; expected a non-negative integer count (or a list).")
    return value


def mask_counts(tensors: dict[str, torch.Tensor]) -> dict[str, Any]:
    """The summary counts ``ticket_config.json`` records of the masks in `tensors` (None where a mask is misshapen).

    Example:

    ```python
    >>> mask_counts({"head_mask": torch.tensor([[1, 0]]), "mlp_mask": torch.tensor([1])})["heads_kept_per_layer"]
    [1]

    ```
    """
    head, mlp = tensors["head_mask"] != 0, tensors["mlp_mask"] != 0
    weight_masks = {name: t != 0 for name, t in tensors.items() if name not in ("head_mask", "mlp_mask", *SCORE_NAMES)}
    return {
        "num_layers": int(head.shape[0]) if head.ndim == 2 else None,
        "num_heads": int(head.shape[1]) if head.ndim == 2 else None,
        "kept_heads": int(head.sum()),
        "heads_kept_per_layer": head.sum(dim=1).tolist() if head.ndim == 2 else None,
        "kept_mlps": int(mlp.sum()),
        "mlps_kept": mlp.int().tolist() if mlp.ndim == 1 else None,
        "weight_mask_names": list(weight_masks),
        "weight_masks_kept": {name: int(mask.sum()) for name, mask in weight_masks.items()},
    }


def check_counts(config: dict[str, Any], tensors: dict[str, torch.Tensor], config_file: Path) -> None:
    """Refuse masks that contradict the `mask_counts` their config records (masks replaced, checksum removed).

    Example:

    ```python
    >>> import torch
    >>> from pathlib import Path
    >>> tensors = {"head_mask": torch.tensor([[True, False]]), "mlp_mask": torch.tensor([True])}
    >>> check_counts({"kept_heads": 1, "kept_mlps": 1}, tensors, Path("ticket_config.json"))
    >>> check_counts({"kept_heads": 2}, tensors, Path("ticket_config.json"))
    Traceback (most recent call last):
    ValueError: ticket_config.json records `kept_heads` = 2 but the masks file holds 1: the two files are from different tickets (masks replaced or damaged).

    ```
    """
    found = mask_counts(tensors)
    names, found_kept = found.pop("weight_mask_names"), found.pop("weight_masks_kept")
    for key, value in found.items():
        recorded = _count(config, key, config_file)
        if recorded is not None and recorded != value:
            raise ValueError(
                f"{config_file.name} records `{key}` = {recorded} but the masks file holds {value}: the two files "
                "are from different tickets (masks replaced or damaged)."
            )
    listed = config.get("weight_mask_names")
    if listed is not None and (not isinstance(listed, list) or sorted(map(str, listed)) != sorted(names)):
        raise ValueError(
            f"{config_file.name} lists weight masks {str(listed)[:120]} but the masks file holds "
            f"{sorted(names)[:5]}: the two files are from different tickets."
        )
    kept = config.get("weight_masks_kept")
    if kept is not None and not isinstance(kept, dict):
        raise ValueError(f"{config_file} has `weight_masks_kept` {kept!r:.80}; expected parameter name -> count.")
    for name in kept or {}:
        if _count(kept, name, config_file) != found_kept.get(name):
            raise ValueError(
                f"{config_file.name} records {kept[name]} kept entries of {name} but the masks file holds "
                f"{found_kept.get(name)}: the two files are from different tickets (masks replaced or damaged)."
            )


def read_ticket_files(folder: str | os.PathLike) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    """Read a ticket folder's config and tensors with every check: a `FileNotFoundError` for a missing file, else a
    `ValueError` naming the damage (JSON, format version, checksum, safetensors, a missing mask or wrong counts).

    Example:

    ```python
    >>> import tempfile
    >>> read_ticket_files(tempfile.mkdtemp())
    Traceback (most recent call last):
    FileNotFoundError: ... is not a ticket folder: missing ticket_config.json, ticket_masks.safetensors (a ticket folder holds ticket_config.json and ticket_masks.safetensors).

    ```
    """
    folder = Path(folder)
    with _locked(folder, exclusive=False):
        config_file, masks_file = folder / TICKET_CONFIG_NAME, folder / TICKET_MASKS_NAME
        if missing := [p.name for p in (config_file, masks_file) if not p.is_file()]:
            raise FileNotFoundError(
                f"{folder} is not a ticket folder: missing {', '.join(missing)} "
                f"(a ticket folder holds {TICKET_CONFIG_NAME} and {TICKET_MASKS_NAME})."
            )
        try:
            config = json.loads(config_file.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as err:
            raise ValueError(f"{config_file} is not valid JSON ({err}); the ticket is damaged.") from err
        if not isinstance(config, dict):
            raise ValueError(f"{config_file} must hold a JSON object; got {type(config).__name__}.")
        check_format_version(config.get("format_version"), str(config_file))
        masks_file = _checked_masks_file(config, config_file, masks_file)
        try:
            tensors = load_file(str(masks_file))
        except (SafetensorError, OSError, ValueError, RuntimeError) as err:
            raise ValueError(f"{masks_file} is corrupted or truncated, unreadable as safetensors: {err}") from err
        for required in ("head_mask", "mlp_mask"):
            if required not in tensors:
                raise ValueError(f"{masks_file} has no `{required}` tensor; found {sorted(tensors)}.")
        check_counts(config, tensors, config_file)
        return config, tensors


# ---------------------------------------------------------------- weight masks in a model config's ticket entry
def weight_masks_sha256(weight_masks: dict[str, torch.Tensor]) -> str:
    """sha256 of weight masks: names, shapes and bits, in name order (independent of any file layout).

    Example:

    ```python
    >>> import torch
    >>> weight_masks_sha256({"layer.0.output.dense.weight": torch.ones(2, 2, dtype=torch.bool)})[:12]
    '839ad45350dd'

    ```
    """
    digest = hashlib.sha256()
    for name in sorted(weight_masks):
        mask = torch.as_tensor(weight_masks[name]).detach().cpu().bool()
        digest.update(f"{name}:{','.join(str(n) for n in mask.shape)};".encode())
        digest.update(np.packbits(mask.reshape(-1).numpy().astype(np.uint8)).tobytes())
    return digest.hexdigest()


def true_runs(flat: torch.Tensor) -> list[list[int]]:
    """``[start, stop)`` runs of True in a 1-D bool tensor.

    Example:

    ```python
    >>> import torch
    >>> true_runs(torch.tensor([True, True, False, True]))
    [[0, 2], [3, 4]]

    ```
    """
    edge = flat.new_zeros(1, dtype=torch.int8)
    return torch.diff(flat.to(torch.int8), prepend=edge, append=edge).nonzero().reshape(-1, 2).tolist()


def recover_weight_masks(
    records: dict[str, Any], expected_sha: Any, params: dict[str, torch.Tensor], where: str
) -> dict[str, torch.Tensor]:
    """Weight masks from the exact zeros of `params` (encoder parameters by name) and a config entry's records.

    Each record has the parameter's ``shape``, ``kept`` count and ``kept_zeros`` (``[start, stop)`` runs of flat
    indices kept although zero); recovered masks off the counts or `expected_sha` raise a `ValueError`.

    Example:

    ```python
    >>> import torch
    >>> weight = torch.tensor([[0.0, 1.5], [0.0, -2.0]])  # [0, 0] pruned; [1, 0] kept although zero
    >>> mask = torch.tensor([[False, True], [True, True]])
    >>> records = {"layer.0.output.dense.weight": {"shape": [2, 2], "kept": 3, "kept_zeros": [[2, 3]]}}
    >>> sha = weight_masks_sha256({"layer.0.output.dense.weight": mask})
    >>> recover_weight_masks(records, sha, {"layer.0.output.dense.weight": weight}, "entry")["layer.0.output.dense.weight"]
    tensor([[False,  True],
            [ True,  True]])

    ```
    """
    if not isinstance(expected_sha, str):
        raise ValueError(f"{where} has weight masks but no `weight_masks_sha256` string; it cannot be checked.")
    mismatch = "The model's weights no longer match the recorded ticket"
    masks = {}
    for name, record in records.items():
        field = f"{where}: `weight_masks[{name!r}]"
        if not isinstance(record, dict) or not {"shape", "kept", "kept_zeros"} <= set(record):
            raise ValueError(f"{field}` must be a dict with `shape`, `kept`, `kept_zeros`.")
        shape, kept, runs = record["shape"], record["kept"], record["kept_zeros"]
        if not isinstance(shape, list) or not all(_is_count(n) and n > 0 for n in shape):
            raise ValueError(f"{field}.shape` must be a list of positive integers; got {shape!r}.")
        size = math.prod(shape)
        if not _is_count(kept) or kept > size:
            raise ValueError(f"{field}.kept` must be an integer in [0, {size}]; got {kept!r}.")
        if not isinstance(runs, list) or not all(
            isinstance(r, list) and len(r) == 2 and all(isinstance(i, int) for i in r) and 0 <= r[0] < r[1] <= size
            for r in runs
        ):
            raise ValueError(f"{field}.kept_zeros` must be a list of [start, stop) runs within {size}.")
        if name not in params or list(params[name].shape) != shape:
            found = "absent" if name not in params else f"of shape {list(params[name].shape)}"
            raise ValueError(f"{mismatch}: parameter {name!r} of shape {shape} is {found} in the model.")
        mask = (params[name].detach().cpu() != 0).reshape(-1)
        for start, stop in runs:
            mask[start:stop] = True
        if int(mask.sum()) != kept:
            raise ValueError(
                f"{mismatch}: {name} has {int(mask.sum())} kept (non-zero) entries, the ticket recorded {kept}. Its "
                "pruned weights were changed after the ticket was applied."
            )
        masks[name] = mask.reshape(shape)
    if weight_masks_sha256(masks) != expected_sha:
        raise ValueError(
            f"{mismatch}: the weight masks recovered from its exact zeros differ from the recorded ones (sha256 "
            "mismatch)."
        )
    return masks
