"""`LotteryTicket`: head, MLP and weight masks of one BERT subnetwork, with the metadata that makes them portable."""

from __future__ import annotations

import hashlib
import math
import numbers
import os
import re
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import torch

from ._version import __version__
from .files import CONFIG_TICKET_KEY, TICKET_CONFIG_NAME, TICKET_MASKS_NAME  # noqa: F401  (re-exported)
from .structure import (
    ATTENTION_OUTPUT,
    INTERMEDIATE,
    KEY,
    MAGNITUDE_WEIGHT_SET,
    MLP_OUTPUT,
    QUERY,
    VALUE,
    EncoderStructure,
)


if TYPE_CHECKING:
    from torch import nn

METHODS = ("structured", "magnitude")
KINDS = ("good", "random", "bad", "super-good", "super-random", "super-bad", "full", "custom")
FORMAT_VERSION = 1

# bert-base dimensions, used for tickets imported from the paper's legacy .npy masks.
BERT_BASE_DIMS = {"num_layers": 12, "num_heads": 12, "head_size": 64, "hidden_size": 768, "intermediate_size": 3072}
_LAYER_NAME = re.compile(r"^layer\.(\d+)\.(.+)\.(weight|bias)$")
DIM_KEYS = ("num_layers", "num_heads", "head_size", "hidden_size", "intermediate_size")
# The metadata fields of a ticket, as they appear in ticket_config.json and in a model config's ticket entry.
METADATA_FIELDS = (
    "method",
    "kind",
    "base_model",
    "base_model_revision",
    "task",
    "seed",
    "threshold",
    "search_data",
    "model_dims",
    "history",
    "metrics",
    "extra",
)


def _as_bool_mask(name: str, value: Any, ndim: int | None = None) -> torch.Tensor:
    """Turn a 0/1 tensor or array into a bool tensor, or raise naming the offending mask."""
    tensor = torch.as_tensor(value).detach().cpu()
    if ndim is not None and tensor.ndim != ndim:
        raise ValueError(f"`{name}` must have {ndim} dimension(s); got shape {tuple(tensor.shape)}.")
    if tensor.dtype == torch.bool:
        return tensor.clone()
    if tensor.is_floating_point() and not torch.isfinite(tensor).all():
        raise ValueError(f"`{name}` must contain only 0 and 1; it contains NaN or infinite values.")
    bad = (tensor != 0) & (tensor != 1)
    if bad.any():
        examples = sorted({float(v) for v in tensor[bad].flatten()[:5].tolist()})
        raise ValueError(f"`{name}` must contain only 0 and 1 (or be bool); found values such as {examples}.")
    return tensor != 0


@dataclass(eq=False)
class LotteryTicket:
    """Masks of one BERT subnetwork (a "lottery ticket") plus the metadata that makes it portable.

    A ticket switches off attention heads (`head_mask`, ``[num_layers, num_heads]``), whole MLPs (`mlp_mask`,
    ``[num_layers]``) and individual weights (`weight_masks`, keyed by parameter name relative to the encoder such as
    ``layer.0.attention.self.query.weight``, so the same ticket fits `BertModel` and `BertForSequenceClassification`).
    ``True`` means kept. It is saved as ``ticket_config.json`` + ``ticket_masks.safetensors``.

    Example:

    ```python
    >>> import torch
    >>> ticket = LotteryTicket(head_mask=torch.ones(2, 4, dtype=torch.bool), mlp_mask=torch.tensor([True, False]))
    >>> ticket.summary()["kept_mlps"]
    1
    >>> ticket.save_pretrained("my-ticket")          # doctest: +SKIP
    >>> LotteryTicket.from_pretrained("my-ticket")   # doctest: +SKIP
    ```
    """

    head_mask: torch.Tensor
    mlp_mask: torch.Tensor
    weight_masks: dict[str, torch.Tensor] = field(default_factory=dict)
    method: Literal["structured", "magnitude"] = "structured"
    kind: str = "good"
    base_model: str | None = None
    base_model_revision: str | None = None
    task: str | None = None
    seed: int | None = None
    threshold: float | None = None
    search_data: str | None = None
    model_dims: dict[str, int] | None = None
    history: list[dict[str, Any]] = field(default_factory=list)
    metrics: dict[str, Any] = field(default_factory=dict)
    head_importance: torch.Tensor | None = None
    mlp_importance: torch.Tensor | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self):
        self.head_mask = _as_bool_mask("head_mask", self.head_mask, ndim=2)
        self.mlp_mask = _as_bool_mask("mlp_mask", self.mlp_mask, ndim=1)
        if self.mlp_mask.shape[0] != self.head_mask.shape[0]:
            raise ValueError(
                f"`mlp_mask` must have one entry per layer ({self.head_mask.shape[0]}, from `head_mask` "
                f"{tuple(self.head_mask.shape)}); got {tuple(self.mlp_mask.shape)}."
            )
        if not isinstance(self.weight_masks, dict):
            raise TypeError(
                f"`weight_masks` must be a dict of parameter name -> bool tensor; got {type(self.weight_masks).__name__}."
            )
        masks = {}
        for name, mask in self.weight_masks.items():
            if not isinstance(name, str) or not _LAYER_NAME.match(name):
                raise ValueError(
                    f"Weight-mask key {name!r} is not an encoder parameter name such as "
                    "'layer.0.attention.self.query.weight'."
                )
            masks[name] = _as_bool_mask(f"weight_masks[{name!r}]", mask)
        self.weight_masks = dict(sorted(masks.items(), key=lambda kv: _param_sort_key(kv[0])))
        if self.method not in METHODS:
            raise ValueError(f"`method` must be one of {METHODS}; got {self.method!r}.")
        if self.kind not in KINDS:
            raise ValueError(f"`kind` must be one of {KINDS}; got {self.kind!r}.")
        for name, shape in (("head_importance", self.head_mask.shape), ("mlp_importance", self.mlp_mask.shape)):
            value = getattr(self, name)
            if value is not None:
                value = torch.as_tensor(value, dtype=torch.float32).detach().cpu()
                if value.shape != shape:
                    raise ValueError(f"`{name}` must have shape {tuple(shape)}; got {tuple(value.shape)}.")
                if not torch.isfinite(value).all():
                    raise ValueError(
                        f"`{name}` must hold finite scores; it holds {int((~torch.isfinite(value)).sum())} NaN or "
                        "infinite value(s) (a damaged importance pass or file)."
                    )
                setattr(self, name, value)
        self._check_metadata()

    def _check_metadata(self) -> None:
        """Type and range checks of the metadata fields, so that a bad value fails here, naming the field."""
        for name in ("base_model", "base_model_revision"):
            value = getattr(self, name)
            if isinstance(value, os.PathLike):
                value = os.fspath(value)
            if value is not None and not isinstance(value, str):
                raise TypeError(f"`{name}` must be a Hub id, a local path or None; got {type(value).__name__}.")
            setattr(self, name, value or None)
        for name in ("task", "search_data"):
            value = getattr(self, name)
            if value is not None and not isinstance(value, str):
                raise TypeError(f"`{name}` must be a string or None; got {type(value).__name__} {value!r}.")
        if self.seed is not None:
            if isinstance(self.seed, bool) or not isinstance(self.seed, numbers.Integral):
                raise TypeError(f"`seed` must be an integer or None; got {type(self.seed).__name__} {self.seed!r}.")
            self.seed = int(self.seed)
        if self.threshold is not None:
            if isinstance(self.threshold, bool) or not isinstance(self.threshold, numbers.Real):
                raise TypeError(f"`threshold` must be a number in (0, 1] or None; got {self.threshold!r}.")
            if not 0 < float(self.threshold) <= 1:
                raise ValueError(
                    f"`threshold` must be in (0, 1] (a share of the full model's metric); got {self.threshold!r}."
                )
            self.threshold = float(self.threshold)
        if isinstance(self.history, tuple):
            self.history = list(self.history)
        if not isinstance(self.history, list) or not all(isinstance(step, dict) for step in self.history):
            raise TypeError(f"`history` must be a list of dicts (one per search step); got {self.history!r:.80}.")
        for name in ("metrics", "extra"):
            value = getattr(self, name)
            if not isinstance(value, dict) or not all(isinstance(k, str) for k in value):
                raise TypeError(f"`{name}` must be a dict with string keys; got {value!r:.80}.")
        if self.model_dims is not None:
            self.model_dims = _check_dims(self.model_dims, tuple(self.head_mask.shape))

    # ------------------------------------------------------------------ constructors
    @classmethod
    def full(cls, model_or_structure: nn.Module | EncoderStructure, **metadata: Any) -> LotteryTicket:
        """A ticket that keeps everything in `model` (the starting point of a search)."""
        structure = _structure(model_or_structure)
        metadata.setdefault("kind", "full")
        metadata.setdefault("model_dims", structure.dims())
        metadata.setdefault("base_model", _model_id(structure.model))
        return cls(
            head_mask=torch.ones(structure.num_layers, structure.num_heads, dtype=torch.bool),
            mlp_mask=torch.ones(structure.num_layers, dtype=torch.bool),
            **metadata,
        )

    # ------------------------------------------------------------------ record in a model's config
    def to_config_entry(self, model: nn.Module | None = None) -> dict[str, Any]:
        """This ticket as a JSON-ready dict for a model's ``config.json`` (under ``files.CONFIG_TICKET_KEY``).

        The entry holds the metadata, ``head_mask`` / ``mlp_mask`` as nested 0/1 lists, the importance scores and the
        format version. Weight masks (magnitude tickets) are too large for a config: the entry records, per
        parameter, its shape, its kept count and the runs of kept entries that are nevertheless exactly zero
        (``kept_zeros``), plus the sha256 of all weight masks; `from_config_entry` recovers the masks from the
        exact zeros of the model's weights (which a baked or applied ticket holds at zero) and checks that sha256.

        Args:
            model: the model the ticket is baked into or applied to. With it, kept weights that are exactly zero
                now (e.g. zero-initialised biases) are recorded too, so the recovery is exact.

        Example:

        ```python
        >>> import json, torch
        >>> ticket = LotteryTicket(head_mask=torch.tensor([[1, 0], [1, 1]]), mlp_mask=torch.tensor([1, 0]))
        >>> entry = ticket.to_config_entry()
        >>> entry["head_mask"], entry["mlp_mask"], entry["format_version"]
        ([[1, 0], [1, 1]], [1, 0], 1)
        >>> LotteryTicket.from_config_entry(json.loads(json.dumps(entry))) == ticket
        True

        ```
        """
        entry: dict[str, Any] = {name: getattr(self, name) for name in METADATA_FIELDS}
        entry.update(
            format_version=FORMAT_VERSION,
            library="hf-lottery",
            library_version=__version__,
            head_mask=self.head_mask.int().tolist(),
            mlp_mask=self.mlp_mask.int().tolist(),
            head_importance=None if self.head_importance is None else self.head_importance.tolist(),
            mlp_importance=None if self.mlp_importance is None else self.mlp_importance.tolist(),
            weight_masks={},
        )
        if not self.weight_masks:
            return entry
        params = {}
        if model is not None:
            self.validate(model)
            params = _structure(model).named_encoder_parameters()
        for name, mask in self.weight_masks.items():
            kept_zero = torch.zeros_like(mask)
            if self.model_dims is not None:  # entries a head / MLP pruning zeroes when baked
                kept_zero |= mask & ~self.structural_mask(name).expand(mask.shape)
            if name in params:
                kept_zero |= mask & (params[name].detach().cpu() == 0)
            entry["weight_masks"][name] = {
                "shape": list(mask.shape),
                "kept": int(mask.sum()),
                "kept_zeros": _true_runs(kept_zero.reshape(-1)),
            }
        entry["weight_masks_sha256"] = weight_masks_sha256(self.weight_masks)
        return entry

    @classmethod
    def from_config_entry(cls, entry: dict[str, Any], model: nn.Module | None = None) -> LotteryTicket:
        """Rebuild a ticket from `to_config_entry`'s dict; weight masks are recovered from `model`'s exact zeros.

        Raises:
            ValueError: a field is missing or malformed (the message names it), the entry has weight masks and no
                `model` was given, or the model's weights no longer match the recorded ticket (shape, kept count or
                sha256 of the recovered masks differ).

        Example:

        ```python
        >>> import torch
        >>> ticket = LotteryTicket(head_mask=torch.ones(2, 2), mlp_mask=torch.ones(2), seed=3)
        >>> LotteryTicket.from_config_entry(ticket.to_config_entry()).seed
        3

        ```
        """
        where = f"The model config's `{CONFIG_TICKET_KEY}` entry"
        if not isinstance(entry, dict):
            raise TypeError(
                f"{where} must be a dict (from `LotteryTicket.to_config_entry`); got {type(entry).__name__}."
            )
        check_format_version(entry.get("format_version"), where)
        for required in ("head_mask", "mlp_mask"):
            if required not in entry:
                raise ValueError(f"{where} has no `{required}` field; it is not a ticket record.")
        tensors = {}
        for name in ("head_mask", "mlp_mask", "head_importance", "mlp_importance"):
            value = entry.get(name)
            if value is not None:
                tensors[name] = _list_to_tensor(value, name, where)
        records = entry.get("weight_masks", {})
        if not isinstance(records, dict):
            raise ValueError(
                f"{where}: `weight_masks` must be a dict of parameter name -> record; got {records!r:.80}."
            )
        weight_masks = (
            _recover_weight_masks(records, entry.get("weight_masks_sha256"), model, where) if records else {}
        )
        try:
            return cls(weight_masks=weight_masks, **tensors, **metadata_from_config(entry))
        except (TypeError, ValueError) as err:
            raise type(err)(f"{where}: {err}") from err

    @classmethod
    def from_legacy(
        cls,
        path: str | os.PathLike,
        *,
        base_model: str | None = "bert-base-uncased",
        model_dims: dict[str, int] | None = None,
        task: str | None = None,
        seed: int | None = None,
    ) -> LotteryTicket:
        """Import a folder of the paper's code: ``head_mask.npy`` [L,H] and ``mlp_mask.npy`` [L] (1 = kept).

        ``head_importance.npy`` / ``mlp_importance.npy`` are imported when present. The task and seed are read from
        folder names such as ``CoLA/seed_1337`` unless given. The files carry no model identity; `base_model` defaults
        to the paper's ``bert-base-uncased`` and `model_dims` to bert-base when the mask is 12×12.

        Example:

        ```python
        >>> ticket = LotteryTicket.from_legacy("seed_masks/heads_mlps/CoLA/seed_1337")  # doctest: +SKIP
        >>> ticket.summary()["kept_heads"], ticket.summary()["kept_mlps"]                 # doctest: +SKIP
        (95, 11)

        ```
        """
        from .legacy import load_legacy

        return load_legacy(cls, path, base_model=base_model, model_dims=model_dims, task=task, seed=seed)

    # ------------------------------------------------------------------ persistence
    def save_pretrained(self, save_directory: str | os.PathLike) -> Path:
        """Write ``ticket_config.json`` and ``ticket_masks.safetensors`` atomically into `save_directory`."""
        from .serialization import save_ticket

        return save_ticket(self, save_directory)

    @classmethod
    def from_pretrained(cls, path: str | os.PathLike, **kwargs: Any) -> LotteryTicket:
        """Load a ticket saved with `save_pretrained` from a local folder or, when not a folder, a Hub repo id.

        Keyword arguments (`revision`, `token`, `subfolder`, `cache_dir`) are passed to the Hub download.
        """
        from .serialization import load_ticket

        return load_ticket(path, **kwargs)

    def push_to_hub(self, repo_id: str, **kwargs: Any) -> str:
        """Push the ticket files and a model card to a Hub repo (masks only, like an adapter); return the commit URL.

        Keyword arguments (`private`, `revision`, `token`, `commit_message`, `create_pr`) go to
        `hf_lottery.hub.push_ticket_to_hub`.
        """
        from .hub import push_ticket_to_hub

        return push_ticket_to_hub(self, repo_id, **kwargs)

    # ------------------------------------------------------------------ checks and views
    @property
    def num_layers(self) -> int:
        return int(self.head_mask.shape[0])

    @property
    def num_heads(self) -> int:
        return int(self.head_mask.shape[1])

    def validate(self, model: nn.Module | EncoderStructure) -> None:
        """Check that this ticket fits `model`; raise `ValueError` naming the expected and the found shapes/names."""
        structure = _structure(model)
        if structure.is_compacted:
            raise ValueError(
                "This model was physically compacted (heads or MLP neurons removed); a ticket applies to the dense "
                f"architecture only. Heads per layer found: {structure.heads_per_layer}."
            )
        expected = (structure.num_layers, structure.num_heads)
        if tuple(self.head_mask.shape) != expected:
            raise ValueError(
                f"Ticket does not fit the model: head_mask has shape {tuple(self.head_mask.shape)} (layers × heads) "
                f"but the model has {expected[0]} layers × {expected[1]} heads."
            )
        if self.model_dims is not None:
            found = structure.dims()
            diff = {k: (v, found.get(k)) for k, v in self.model_dims.items() if found.get(k) != v}
            if diff:
                details = ", ".join(f"{k}: ticket {a}, model {b}" for k, (a, b) in diff.items())
                raise ValueError(f"Ticket does not fit the model: {details}.")
        params = structure.named_encoder_parameters()
        unknown = [name for name in self.weight_masks if name not in params]
        if unknown:
            examples = ", ".join(list(params)[:3])
            raise ValueError(
                f"Ticket weight masks name parameters the model's encoder does not have: {unknown[:5]}"
                f"{' …' if len(unknown) > 5 else ''}. Names are relative to the encoder, e.g. {examples}."
            )
        for name, mask in self.weight_masks.items():
            if tuple(mask.shape) != tuple(params[name].shape):
                raise ValueError(
                    f"Weight mask {name!r} has shape {tuple(mask.shape)}; the model's parameter has shape "
                    f"{tuple(params[name].shape)}."
                )

    def structural_mask(self, name: str) -> torch.Tensor:
        """The kept-entries mask that `head_mask` / `mlp_mask` imply for one weight-set parameter (broadcastable)."""
        if self.model_dims is None:
            raise ValueError(
                "This ticket has no `model_dims`; create it with `LotteryTicket.full(model)` or pass them."
            )
        match = _LAYER_NAME.match(name)
        if match is None:
            raise ValueError(
                f"{name!r} is not an encoder parameter name such as 'layer.0.attention.self.query.weight'."
            )
        layer, path, kind = int(match.group(1)), match.group(2), match.group(3)
        head_size = self.model_dims["head_size"]
        heads = self.head_mask[layer].repeat_interleave(head_size)
        mlp = self.mlp_mask[layer].reshape(1)
        if path in (QUERY, KEY, VALUE):
            return heads[:, None] if kind == "weight" else heads
        if path == ATTENTION_OUTPUT:
            return heads[None, :] if kind == "weight" else torch.ones(1, dtype=torch.bool)
        if path in (INTERMEDIATE, MLP_OUTPUT):
            return mlp[:, None] if kind == "weight" else mlp
        return torch.ones(1, dtype=torch.bool)

    def kept_weight_counts(self) -> tuple[int, int] | None:
        """(kept, total) entries of the paper's magnitude weight set under this ticket, or None without dims."""
        if self.model_dims is None:
            return None
        dims = self.model_dims
        kept = total = 0
        for layer in range(self.num_layers):
            for path, kind in MAGNITUDE_WEIGHT_SET:
                name = f"layer.{layer}.{path}.{kind}"
                shape = _weight_shape(path, kind, dims)
                mask = self.structural_mask(name).expand(shape)
                if name in self.weight_masks:
                    mask = mask & self.weight_masks[name]
                kept += int(mask.sum())
                total += math.prod(shape)
        return kept, total

    @property
    def sparsity(self) -> float | None:
        """Share of the paper's magnitude weight set that this ticket prunes (None when `model_dims` is unknown)."""
        counts = self.kept_weight_counts()
        return None if counts is None else 1.0 - counts[0] / counts[1]

    def summary(self) -> dict[str, Any]:
        """Kept heads, kept MLPs and the share of encoder weights (the paper's weight set) kept."""
        counts = self.kept_weight_counts()
        return {
            "method": self.method,
            "kind": self.kind,
            "kept_heads": int(self.head_mask.sum()),
            "total_heads": self.head_mask.numel(),
            "heads_kept_per_layer": self.head_mask.sum(dim=1).tolist(),
            "kept_mlps": int(self.mlp_mask.sum()),
            "total_mlps": self.mlp_mask.numel(),
            "weights_kept": None if counts is None else counts[0],
            "weights_total": None if counts is None else counts[1],
            "encoder_weights_kept": None if counts is None else counts[0] / counts[1],
        }

    def __repr__(self) -> str:
        s = self.summary()
        share = "" if s["encoder_weights_kept"] is None else f", encoder weights kept={s['encoder_weights_kept']:.1%}"
        return (
            f"LotteryTicket(method={self.method!r}, kind={self.kind!r}, heads={s['kept_heads']}/{s['total_heads']}, "
            f"mlps={s['kept_mlps']}/{s['total_mlps']}, weight_masks={len(self.weight_masks)}{share}, "
            f"base_model={self.base_model!r}, task={self.task!r}, seed={self.seed})"
        )

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, LotteryTicket):
            return NotImplemented
        for f in fields(self):
            a, b = getattr(self, f.name), getattr(other, f.name)
            if isinstance(a, torch.Tensor) or isinstance(b, torch.Tensor):
                if a is None or b is None or a.dtype != b.dtype or not torch.equal(a, b):
                    return False
            elif f.name == "weight_masks":
                if a.keys() != b.keys() or any(not torch.equal(a[k], b[k]) for k in a):
                    return False
            elif a != b:
                return False
        return True

    def masks_equal(self, other: LotteryTicket) -> bool:
        """True when both tickets keep exactly the same heads, MLPs and weights (metadata ignored)."""
        return (
            torch.equal(self.head_mask, other.head_mask)
            and torch.equal(self.mlp_mask, other.mlp_mask)
            and self.weight_masks.keys() == other.weight_masks.keys()
            and all(torch.equal(self.weight_masks[k], other.weight_masks[k]) for k in self.weight_masks)
        )

    # ------------------------------------------------------------------ writing into weights
    @torch.no_grad()
    def bake(self, model: nn.Module) -> nn.Module:
        """Write this ticket into `model`'s weights as zeros, in place, and return `model`.

        A pruned head zeroes its columns of ``attention.output.dense.weight``; a pruned MLP zeroes ``output.dense``
        weight and bias; weight masks zero their entries. A plain ``from_pretrained`` of the saved weights then gives
        the pruned outputs without hf-lottery installed.
        """
        structure = _structure(model)
        self.validate(structure)
        head_size = structure.head_size
        for layer in structure.layers:
            for head in torch.nonzero(~self.head_mask[layer.index]).flatten().tolist():
                layer.attention_output.weight[:, head * head_size : (head + 1) * head_size] = 0
            if not bool(self.mlp_mask[layer.index]):
                layer.mlp_output.weight.zero_()
                if layer.mlp_output.bias is not None:
                    layer.mlp_output.bias.zero_()
        params = structure.named_encoder_parameters()
        for name, mask in self.weight_masks.items():
            params[name].masked_fill_(~mask.to(params[name].device), 0)
        return model

    def copy(self, **changes: Any) -> LotteryTicket:
        """A deep copy with some fields replaced."""
        values = {f.name: getattr(self, f.name) for f in fields(self)}
        values["weight_masks"] = {k: v.clone() for k, v in self.weight_masks.items()}
        values["history"] = [dict(step) for step in self.history]
        values["metrics"] = dict(self.metrics)
        values["extra"] = dict(self.extra)
        values.update(changes)
        return LotteryTicket(**values)


def check_format_version(version: Any, where: str) -> int:
    """The ticket format version of a config or entry, or a `ValueError` naming `where` and the readable range."""
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


def metadata_from_config(config: dict[str, Any]) -> dict[str, Any]:
    """The constructor's metadata keywords from a ticket config / entry (old ``importance_source`` included)."""
    metadata = {name: config.get(name) for name in METADATA_FIELDS}
    if metadata["search_data"] is None and config.get("importance_source") is not None:
        metadata["search_data"] = config["importance_source"]
    for name, default in (("history", []), ("metrics", {}), ("extra", {}), ("method", "structured"), ("kind", "good")):
        if metadata[name] is None:
            metadata[name] = default
    return metadata


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


def _true_runs(flat: torch.Tensor) -> list[list[int]]:
    """``[start, stop)`` runs of True in a 1-D bool tensor."""
    index = torch.nonzero(flat).flatten()
    if index.numel() == 0:
        return []
    breaks = torch.nonzero(index[1:] != index[:-1] + 1).flatten()
    starts = torch.cat([index[:1], index[breaks + 1]]).tolist()
    stops = (torch.cat([index[breaks], index[-1:]]) + 1).tolist()
    return [[int(a), int(b)] for a, b in zip(starts, stops)]


def _list_to_tensor(value: Any, name: str, where: str) -> torch.Tensor:
    try:
        return torch.tensor(value, dtype=torch.float32)
    except (TypeError, ValueError, RuntimeError) as err:
        raise ValueError(f"{where}: `{name}` must be a (nested) list of numbers of one shape; {err}") from err


def _recover_weight_masks(
    records: dict[str, Any], expected_sha: Any, model: nn.Module | None, where: str
) -> dict[str, torch.Tensor]:
    if model is None:
        raise ValueError(
            f"{where} records weight masks ({len(records)} parameters) by the model's exact zeros; pass the model: "
            "`LotteryTicket.from_config_entry(entry, model)`."
        )
    if not isinstance(expected_sha, str):
        raise ValueError(f"{where} has weight masks but no `weight_masks_sha256` string; it cannot be checked.")
    params = _structure(model).named_encoder_parameters()
    masks = {}
    for name, record in records.items():
        if not isinstance(record, dict) or not {"shape", "kept", "kept_zeros"} <= set(record):
            raise ValueError(f"{where}: `weight_masks[{name!r}]` must be a dict with `shape`, `kept`, `kept_zeros`.")
        shape, kept, runs = record["shape"], record["kept"], record["kept_zeros"]
        if not isinstance(shape, list) or not all(
            isinstance(n, int) and not isinstance(n, bool) and n > 0 for n in shape
        ):
            raise ValueError(
                f"{where}: `weight_masks[{name!r}].shape` must be a list of positive integers; got {shape!r}."
            )
        if isinstance(kept, bool) or not isinstance(kept, int) or not 0 <= kept <= math.prod(shape):
            raise ValueError(
                f"{where}: `weight_masks[{name!r}].kept` must be an integer in [0, {math.prod(shape)}]; got {kept!r}."
            )
        size = math.prod(shape)
        if not isinstance(runs, list) or not all(
            isinstance(r, list) and len(r) == 2 and all(isinstance(i, int) for i in r) and 0 <= r[0] < r[1] <= size
            for r in runs
        ):
            raise ValueError(
                f"{where}: `weight_masks[{name!r}].kept_zeros` must be a list of [start, stop) runs within {size}."
            )
        if name not in params or list(params[name].shape) != shape:
            found = "absent" if name not in params else f"of shape {list(params[name].shape)}"
            raise ValueError(
                f"The model's weights no longer match the recorded ticket: parameter {name!r} of shape {shape} is "
                f"{found} in the model."
            )
        mask = (params[name].detach().cpu() != 0).reshape(-1)
        for start, stop in runs:
            mask[start:stop] = True
        if int(mask.sum()) != kept:
            raise ValueError(
                f"The model's weights no longer match the recorded ticket: {name} has {int(mask.sum())} kept (non-zero) "
                f"entries, the ticket recorded {kept}. Its pruned weights were changed after the ticket was applied."
            )
        masks[name] = mask.reshape(shape)
    if weight_masks_sha256(masks) != expected_sha:
        raise ValueError(
            "The model's weights no longer match the recorded ticket: the weight masks recovered from its exact zeros "
            "differ from the recorded ones (sha256 mismatch)."
        )
    return masks


def _check_dims(dims: Any, head_shape: tuple[int, ...]) -> dict[str, int]:
    if not isinstance(dims, dict):
        raise ValueError(
            f"`model_dims` must be a dict with the keys {list(DIM_KEYS)} (see `EncoderStructure.dims()`); got "
            f"{type(dims).__name__} {dims!r:.80}."
        )
    if set(dims) != set(DIM_KEYS):
        raise ValueError(
            f"`model_dims` must have exactly the keys {list(DIM_KEYS)}; missing {sorted(set(DIM_KEYS) - set(dims))}, "
            f"unknown {sorted(map(str, set(dims) - set(DIM_KEYS)))}."
        )
    for key in DIM_KEYS:
        value = dims[key]
        if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value <= 0:
            raise ValueError(f"`model_dims[{key!r}]` must be a positive integer; got {value!r}.")
    result = {key: int(dims[key]) for key in DIM_KEYS}
    if (result["num_layers"], result["num_heads"]) != head_shape:
        raise ValueError(f"`model_dims` {result} disagree with `head_mask` of shape {head_shape}.")
    return result


def _param_sort_key(name: str) -> tuple[int, int, str]:
    match = _LAYER_NAME.match(name)
    if match is None:
        return (1 << 30, 0, name)
    order = {f"{p}.{k}": i for i, (p, k) in enumerate(MAGNITUDE_WEIGHT_SET)}
    return (int(match.group(1)), order.get(f"{match.group(2)}.{match.group(3)}", 99), name)


def _weight_shape(path: str, kind: str, dims: dict[str, int]) -> tuple[int, ...]:
    hidden, inter, heads = dims["hidden_size"], dims["intermediate_size"], dims["num_heads"] * dims["head_size"]
    out_in = {QUERY: (heads, hidden), KEY: (heads, hidden), VALUE: (heads, hidden)}
    out_in.update({ATTENTION_OUTPUT: (hidden, heads), INTERMEDIATE: (inter, hidden), MLP_OUTPUT: (hidden, inter)})
    shape = out_in[path]
    return shape if kind == "weight" else (shape[0],)


def _structure(model: nn.Module | EncoderStructure) -> EncoderStructure:
    return model if isinstance(model, EncoderStructure) else EncoderStructure(model)


def _model_id(model: nn.Module) -> str | None:
    config = getattr(model, "config", None)
    name = getattr(config, "_name_or_path", None) or None
    return name
