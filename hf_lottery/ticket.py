"""`LotteryTicket`: head, MLP and weight masks of one BERT subnetwork, with the metadata that makes them portable."""

from __future__ import annotations

import math
import os
import re
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import torch

from .files import TICKET_CONFIG_NAME, TICKET_MASKS_NAME  # noqa: F401  (re-exported)
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
                setattr(self, name, value)
        if self.model_dims is not None:
            dims = {k: int(v) for k, v in self.model_dims.items()}
            if (dims.get("num_layers"), dims.get("num_heads")) != tuple(self.head_mask.shape):
                raise ValueError(
                    f"`model_dims` {dims} disagree with `head_mask` of shape {tuple(self.head_mask.shape)}."
                )
            self.model_dims = dims

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
