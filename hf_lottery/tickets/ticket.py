"""`LotteryTicket`, the masks of one BERT subnetwork with their metadata. Hub push, the paper's ``.npy`` masks,
compaction and plots live in modules that import this one, never the reverse."""

from __future__ import annotations

import math
import os
from copy import deepcopy
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any, Literal

import torch
from torch import nn

from .._version import __version__
from ..downloads import check_subfolder, download_files
from ..files import CONFIG_TICKET_KEY, TICKET_CONFIG_NAME, TICKET_FILES, TICKET_MASKS_NAME
from ..provenance import base_model_of, is_hub_id, library_versions, same_hub_model
from ..structure import (
    ATTENTION_OUTPUT,
    INTERMEDIATE,
    KEY,
    MAGNITUDE_WEIGHT_SET,
    MLP_OUTPUT,
    QUERY,
    VALUE,
    EncoderStructure,
)
from .fields import KINDS, LAYER_NAME, METHODS, as_bool_mask, check_metadata, check_scores
from .serialization import (
    FORMAT_VERSION,
    SCORE_NAMES,
    check_format_version,
    read_ticket_files,
    recover_weight_masks,
    true_runs,
    weight_masks_sha256,
    write_ticket_files,
)


__all__ = ["FORMAT_VERSION", "TICKET_CONFIG_NAME", "TICKET_MASKS_NAME", "LotteryTicket", "weight_masks_sha256"]


@dataclass(eq=False)
class LotteryTicket:
    """Masks of one BERT subnetwork (a "lottery ticket") plus the metadata that makes it portable.

    A ticket switches off attention heads (`head_mask`, ``[num_layers, num_heads]``), whole MLPs (`mlp_mask`,
    ``[num_layers]``) and individual weights (`weight_masks`, keyed by parameter name relative to the encoder such as
    ``layer.0.attention.self.query.weight``, so the same ticket fits `BertModel` and `BertForSequenceClassification`).
    ``True`` means kept. Every field is checked here: a bad value raises a `ValueError` / `TypeError` naming it.

    Example:

    ```python
    >>> import tempfile, torch
    >>> ticket = LotteryTicket(head_mask=torch.ones(2, 4, dtype=torch.bool), mlp_mask=torch.tensor([True, False]))
    >>> ticket.summary()["kept_mlps"]
    1
    >>> folder = ticket.save_pretrained(tempfile.mkdtemp())
    >>> LotteryTicket.from_pretrained(folder) == ticket
    True

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
    library_versions: dict[str, str] = field(default_factory=library_versions)

    def __post_init__(self):
        self.head_mask = as_bool_mask("head_mask", self.head_mask, ndim=2)
        self.mlp_mask = as_bool_mask("mlp_mask", self.mlp_mask, ndim=1)
        if self.mlp_mask.shape[0] != self.head_mask.shape[0]:
            raise ValueError(
                f"`mlp_mask` must have one entry per layer ({self.head_mask.shape[0]}, from `head_mask` "
                f"{tuple(self.head_mask.shape)}); got {tuple(self.mlp_mask.shape)}."
            )
        if not isinstance(self.weight_masks, dict):
            raise TypeError(
                "`weight_masks` must be a dict of parameter name -> bool tensor; got "
                f"{type(self.weight_masks).__name__}."
            )
        masks = {}
        for name, mask in self.weight_masks.items():
            if not isinstance(name, str) or not LAYER_NAME.match(name):
                raise ValueError(
                    f"Weight-mask key {name!r} is not an encoder parameter name such as "
                    "'layer.0.attention.self.query.weight'."
                )
            masks[name] = as_bool_mask(f"weight_masks[{name!r}]", mask)
        self.weight_masks = dict(sorted(masks.items(), key=lambda kv: _param_sort_key(kv[0])))
        if self.method not in METHODS:
            raise ValueError(f"`method` must be one of {METHODS}; got {self.method!r}.")
        if self.kind not in KINDS:
            raise ValueError(f"`kind` must be one of {KINDS}; got {self.kind!r}.")
        for name, shape in (("head_importance", self.head_mask.shape), ("mlp_importance", self.mlp_mask.shape)):
            setattr(self, name, check_scores(name, getattr(self, name), tuple(shape)))
        check_metadata(self)

    @classmethod
    def full(cls, model_or_structure: nn.Module | EncoderStructure, **metadata: Any) -> LotteryTicket:
        """A ticket keeping all of `model` (a search's start); `base_model` defaults to `base_model_of(model)`.

        Example:

        ```python
        >>> model = tiny_bert()
        >>> LotteryTicket.full(model).summary()["kept_heads"]
        8

        ```
        """
        structure = _structure(model_or_structure)
        defaults = {"kind": "full", "model_dims": structure.dims(), "base_model": base_model_of(structure.model)}
        return cls(
            head_mask=torch.ones(structure.num_layers, structure.num_heads, dtype=torch.bool),
            mlp_mask=torch.ones(structure.num_layers, dtype=torch.bool),
            **(defaults | metadata),
        )

    def to_config_entry(self, model: nn.Module | None = None) -> dict[str, Any]:
        """This ticket as a JSON-ready dict for a model's ``config.json`` (under ``files.CONFIG_TICKET_KEY``).

        Masks and scores are nested lists. Weight masks are too large for a config: per parameter the entry records
        its shape, kept count and the runs of kept entries that are exactly zero (``kept_zeros``; given `model`, the
        one the ticket is baked into or applied to, also those zero there now, such as zero-initialised biases), plus
        the sha256 of all weight masks, so `from_config_entry` recovers them exactly from the model's zeros.

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
        masks = {"head_mask": self.head_mask.int().tolist(), "mlp_mask": self.mlp_mask.int().tolist()}
        scores = {name: None if getattr(self, name) is None else getattr(self, name).tolist() for name in SCORE_NAMES}
        entry = {**self._record(), **masks, **scores, "weight_masks": {}}
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
            runs = true_runs(kept_zero.reshape(-1))
            entry["weight_masks"][name] = {"shape": list(mask.shape), "kept": int(mask.sum()), "kept_zeros": runs}
        entry["weight_masks_sha256"] = weight_masks_sha256(self.weight_masks)
        return entry

    @classmethod
    def from_config_entry(cls, entry: dict[str, Any], model: nn.Module | None = None) -> LotteryTicket:
        """Rebuild a ticket from `to_config_entry`'s dict; weight masks are recovered from `model`'s exact zeros.

        A `ValueError` names a missing or malformed field, weight masks without `model`, or model weights that no
        longer match the recorded ticket (shape, kept count or sha256 of the recovered masks).
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
        tensors = {name: entry.get(name) for name in ("head_mask", "mlp_mask", *SCORE_NAMES)}
        records = entry.get("weight_masks", {})
        if not isinstance(records, dict):
            raise ValueError(
                f"{where}: `weight_masks` must be a dict of parameter name -> record; got {records!r:.80}."
            )
        weight_masks = {}
        if records:
            if model is None:
                raise ValueError(
                    f"{where} records weight masks ({len(records)} parameters) by the model's exact zeros; pass the "
                    "model: `LotteryTicket.from_config_entry(entry, model)`."
                )
            params = _structure(model).named_encoder_parameters()
            weight_masks = recover_weight_masks(records, entry.get("weight_masks_sha256"), params, where)
        try:
            return cls(weight_masks=weight_masks, **tensors, **metadata_from_config(entry))
        except (TypeError, ValueError) as err:
            raise type(err)(f"{where}: {err}") from err

    def save_pretrained(self, save_directory: str | os.PathLike) -> Path:
        """Write ``ticket_config.json`` and ``ticket_masks.safetensors`` into `save_directory` atomically; return it.

        Example:

        ```python
        >>> import tempfile, torch
        >>> ticket = LotteryTicket(head_mask=torch.tensor([[1, 0]]), mlp_mask=torch.tensor([1]), seed=1)
        >>> folder = ticket.save_pretrained(tempfile.mkdtemp())
        >>> sorted(p.name for p in folder.iterdir())
        ['ticket_config.json', 'ticket_masks.safetensors']

        ```
        """
        scores = {name: getattr(self, name) for name in SCORE_NAMES if getattr(self, name) is not None}
        tensors = {"head_mask": self.head_mask, "mlp_mask": self.mlp_mask, **scores, **self.weight_masks}
        config = {**self._record(), "sparsity": self.sparsity, "has_scores": bool(scores)}
        return write_ticket_files(save_directory, config, tensors)

    def _record(self) -> dict[str, Any]:
        """The metadata and version stamp that ``ticket_config.json`` and the config entry both start with."""
        record = {name: deepcopy(getattr(self, name)) for name in METADATA_FIELDS}
        return {**record, "format_version": FORMAT_VERSION, "library": "hf-lottery", "library_version": __version__}

    @classmethod
    def from_pretrained(
        cls,
        path: str | os.PathLike,
        *,
        revision: str | None = None,
        token: str | bool | None = None,
        subfolder: str | None = None,
        cache_dir: str | os.PathLike | None = None,
    ) -> LotteryTicket:
        """Load a ticket saved with `save_pretrained` from a local folder or, when not a folder, a Hub repo id.

        `revision`, `token` and `cache_dir` are for the Hub download; `subfolder` applies to a folder too.

        Raises:
            FileNotFoundError: no such folder, no ticket files in it, or (Hub) no such repo / revision / ticket.
            ConnectionError: offline or no connection to the Hub, and the files are not cached.
            ValueError: a damaged ticket (the message names the file, what is wrong and the way out).

        Example:

        ```python
        >>> from huggingface_hub import constants
        >>> online, constants.HF_HUB_OFFLINE = constants.HF_HUB_OFFLINE, True  # as with HF_HUB_OFFLINE=1
        >>> LotteryTicket.from_pretrained("user/never-downloaded")
        Traceback (most recent call last):
        hf_lottery.downloads.HubConnectionError: Could not download ticket_config.json, ticket_masks.safetensors of 'user/never-downloaded': offline mode is on (HF_HUB_OFFLINE=1), ...
        >>> constants.HF_HUB_OFFLINE = online

        ```
        """
        subfolder = check_subfolder(subfolder)
        folder = Path(path) / subfolder if subfolder else Path(path)
        if not folder.is_dir():
            if Path(path).exists():
                raise NotADirectoryError(f"{Path(path)} is a file; a ticket is a folder holding {TICKET_CONFIG_NAME}.")
            folder = download_files(
                path, TICKET_FILES, revision=revision, token=token, subfolder=subfolder, cache_dir=cache_dir
            )
        config, tensors = read_ticket_files(folder)
        named = {name: tensors.pop(name) for name in ("head_mask", "mlp_mask", *SCORE_NAMES) if name in tensors}
        try:
            return cls(weight_masks=tensors, **named, **metadata_from_config(config))
        except (TypeError, ValueError) as err:
            raise type(err)(f"{folder / TICKET_CONFIG_NAME}: {err}") from err

    @property
    def num_layers(self) -> int:
        return int(self.head_mask.shape[0])

    @property
    def num_heads(self) -> int:
        return int(self.head_mask.shape[1])

    def validate(self, model: nn.Module | EncoderStructure) -> None:
        """Check that this ticket fits `model`; raise `ValueError` naming the expected and the found shapes/names.

        Example:

        ```python
        >>> model = tiny_bert()
        >>> LotteryTicket.full(model).validate(model)
        >>> LotteryTicket(head_mask=torch.ones(3, 4), mlp_mask=torch.ones(3)).validate(model)
        Traceback (most recent call last):
        ValueError: Ticket does not fit the model: head_mask has shape (3, 4) (layers × heads) but the model has 2 layers × 4 heads.

        ```
        """
        structure = _structure(model)
        if structure.is_compacted:
            raise ValueError(
                "This model was physically compacted (heads or MLP neurons removed); a ticket applies to the dense "
                f"architecture only. Heads per layer found: {structure.heads_per_layer}."
            )
        if (self.num_layers, self.num_heads) != (structure.num_layers, structure.num_heads):
            raise ValueError(
                f"Ticket does not fit the model: head_mask has shape {tuple(self.head_mask.shape)} (layers × heads) "
                f"but the model has {structure.num_layers} layers × {structure.num_heads} heads."
            )
        if diff := self._dims_diff(structure.dims()):
            raise ValueError(f"Ticket does not fit the model: {', '.join(diff)}.")
        params = structure.named_encoder_parameters()
        if unknown := [name for name in self.weight_masks if name not in params]:
            raise ValueError(
                f"Ticket weight masks name parameters the model's encoder does not have: {unknown[:5]}"
                f"{' …' if len(unknown) > 5 else ''}. Names are relative to the encoder, e.g. "
                f"{', '.join(list(params)[:3])}."
            )
        for name, mask in self.weight_masks.items():
            if tuple(mask.shape) != tuple(params[name].shape):
                raise ValueError(
                    f"Weight mask {name!r} has shape {tuple(mask.shape)}; the model's parameter has shape "
                    f"{tuple(params[name].shape)}."
                )

    def compatibility_problems(self, model: nn.Module | EncoderStructure) -> list[str]:
        """What makes this ticket doubtful for `model`, as sentences to warn with (empty when nothing is).

        Lists other dimensions than `model_dims` (or none recorded) and, when both are Hub ids, a base model other
        than the model's own (`base_model_of`). `validate` raises for the shape problems; this method only reports.

        Example:

        ```python
        >>> model = tiny_bert()
        >>> ticket = LotteryTicket.full(model, base_model="google-bert/bert-base-uncased")
        >>> ticket.compatibility_problems(model)
        []
        >>> model.config._name_or_path = "google/electra-small-discriminator"
        >>> ticket.compatibility_problems(model)
        ["The ticket was found on 'google-bert/bert-base-uncased' but the model comes from 'google/electra-small-discriminator'."]

        ```
        """
        structure = _structure(model)
        found = structure.dims()
        problems = []
        if self.model_dims is None:
            problems.append(
                "The ticket records no `model_dims`, so it cannot be checked that it was found on a model of this "
                f"size (hidden_size={found['hidden_size']}, intermediate_size={found['intermediate_size']})."
            )
        elif diff := self._dims_diff(found):
            problems.append(f"The ticket was found on a model of other dimensions ({'; '.join(diff)}).")
        source = base_model_of(structure.model)
        both_hub_ids = bool(self.base_model and source and is_hub_id(self.base_model) and is_hub_id(source))
        if both_hub_ids and not same_hub_model(self.base_model, source):
            problems.append(f"The ticket was found on {self.base_model!r} but the model comes from {source!r}.")
        return problems

    def _dims_diff(self, found: dict[str, int]) -> list[str]:
        return [f"{k}: ticket {v}, model {found[k]}" for k, v in (self.model_dims or {}).items() if found[k] != v]

    def structural_mask(self, name: str) -> torch.Tensor:
        """The kept-entries mask that `head_mask` / `mlp_mask` imply for one weight-set parameter (broadcastable).

        Example:

        ```python
        >>> model = tiny_bert()
        >>> ticket = LotteryTicket.full(model).copy(head_mask=torch.tensor([[1, 0, 1, 1], [1, 1, 1, 1]]))
        >>> ticket.structural_mask("layer.0.attention.self.query.weight").flatten()[:16].int().tolist()
        [1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0]

        ```
        """
        if self.model_dims is None:
            raise ValueError(
                "This ticket has no `model_dims`; create it with `LotteryTicket.full(model)` or pass them."
            )
        if (match := LAYER_NAME.match(name)) is None:
            raise ValueError(
                f"{name!r} is not an encoder parameter name such as 'layer.0.attention.self.query.weight'."
            )
        layer, path, kind = int(match.group(1)), match.group(2), match.group(3)
        heads = self.head_mask[layer].repeat_interleave(self.model_dims["head_size"])
        mlp = self.mlp_mask[layer].reshape(1)
        if path in (QUERY, KEY, VALUE):
            return heads[:, None] if kind == "weight" else heads
        if path == ATTENTION_OUTPUT:
            return heads[None, :] if kind == "weight" else torch.ones(1, dtype=torch.bool)
        if path in (INTERMEDIATE, MLP_OUTPUT):
            return mlp[:, None] if kind == "weight" else mlp
        return torch.ones(1, dtype=torch.bool)

    def kept_weight_counts(self) -> tuple[int, int] | None:
        """(kept, total) entries of the paper's magnitude weight set under this ticket, or None without dims.

        Example:

        ```python
        >>> model = tiny_bert()
        >>> ticket = LotteryTicket.full(model).copy(mlp_mask=torch.tensor([1, 0]))
        >>> ticket.kept_weight_counts(), round(ticket.sparsity, 4)
        ((10853, 13258), 0.1814)

        ```
        """
        if (dims := self.model_dims) is None:
            return None
        hidden, inter, heads = dims["hidden_size"], dims["intermediate_size"], dims["num_heads"] * dims["head_size"]
        out_in = {QUERY: (heads, hidden), KEY: (heads, hidden), VALUE: (heads, hidden)}
        out_in.update({ATTENTION_OUTPUT: (hidden, heads), INTERMEDIATE: (inter, hidden), MLP_OUTPUT: (hidden, inter)})
        kept = total = 0
        for layer in range(self.num_layers):
            for path, kind in MAGNITUDE_WEIGHT_SET:
                name = f"layer.{layer}.{path}.{kind}"
                shape = out_in[path] if kind == "weight" else out_in[path][:1]
                kept += int((self.structural_mask(name).expand(shape) & self.weight_masks.get(name, True)).sum())
                total += math.prod(shape)
        return kept, total

    @property
    def sparsity(self) -> float | None:
        """Share of the paper's magnitude weight set that this ticket prunes (None when `model_dims` is unknown)."""
        counts = self.kept_weight_counts()
        return None if counts is None else 1.0 - counts[0] / counts[1]

    def summary(self) -> dict[str, Any]:
        """Kept heads, kept MLPs and the share of encoder weights (the paper's weight set) kept.

        Example:

        ```python
        >>> summary = LotteryTicket(head_mask=torch.tensor([[1, 0], [1, 1]]), mlp_mask=torch.tensor([1, 0])).summary()
        >>> summary["kept_heads"], summary["heads_kept_per_layer"], summary["kept_mlps"], summary["weights_kept"]
        (3, [1, 2], 1, None)

        ```
        """
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
        scores = [(getattr(self, name), getattr(other, name)) for name in SCORE_NAMES]
        if any((a is None) != (b is None) or (a is not None and not torch.equal(a, b)) for a, b in scores):
            return False
        return self.masks_equal(other) and all(getattr(self, n) == getattr(other, n) for n in METADATA_FIELDS)

    def masks_equal(self, other: LotteryTicket) -> bool:
        """True when both tickets keep exactly the same heads, MLPs and weights (metadata ignored).

        Example:

        ```python
        >>> ticket = LotteryTicket(head_mask=torch.ones(2, 2), mlp_mask=torch.ones(2))
        >>> ticket.masks_equal(ticket.copy(seed=1, kind="random")), ticket == ticket.copy(seed=1)
        (True, False)

        ```
        """
        return (
            torch.equal(self.head_mask, other.head_mask)
            and torch.equal(self.mlp_mask, other.mlp_mask)
            and self.weight_masks.keys() == other.weight_masks.keys()
            and all(torch.equal(self.weight_masks[k], other.weight_masks[k]) for k in self.weight_masks)
        )

    @torch.no_grad()
    def bake(self, model: nn.Module) -> nn.Module:
        """Write this ticket into `model`'s weights as zeros, in place, and return `model`.

        A pruned head zeroes its columns of ``attention.output.dense.weight``, a pruned MLP ``output.dense`` weight
        and bias, weight masks their entries; the saved weights then load pruned with a plain ``from_pretrained``.

        Example:

        ```python
        >>> model = tiny_bert()
        >>> ticket = LotteryTicket.full(model).copy(mlp_mask=torch.tensor([1, 0]))
        >>> _ = ticket.bake(model)
        >>> model.bert.encoder.layer[1].output.dense.weight.abs().sum().item()
        0.0

        ```
        """
        structure = _structure(model)
        self.validate(structure)
        params = structure.named_encoder_parameters()
        for name, keep in kept_entries(structure, self.head_mask, self.mlp_mask, self.weight_masks).items():
            params[name].masked_fill_(~keep.to(params[name].device), 0)
        return model

    def copy(self, **changes: Any) -> LotteryTicket:
        """A deep copy with some fields replaced (checked like a new ticket).

        Example:

        ```python
        >>> ticket = LotteryTicket(head_mask=torch.ones(2, 2), mlp_mask=torch.ones(2))
        >>> ticket.copy(seed=7, task="sst2").seed
        7
        >>> ticket.copy(seed="seven")
        Traceback (most recent call last):
        TypeError: `seed` must be an integer or None; got str 'seven'.

        ```
        """
        return replace(self, **changes)  # __post_init__ copies every tensor and JSON container


# The metadata fields, as ticket_config.json and a model config's ticket entry record them: all but masks and scores.
METADATA_FIELDS = tuple(
    f.name for f in fields(LotteryTicket) if f.name not in ("head_mask", "mlp_mask", "weight_masks", *SCORE_NAMES)
)


def metadata_from_config(config: dict[str, Any]) -> dict[str, Any]:
    """The constructor's metadata keywords from a ticket config or entry (an old ``importance_source`` included).

    Example:

    ```python
    >>> metadata_from_config({"importance_source": "held-out", "seed": 3})["search_data"]
    'held-out'

    ```
    """
    defaults = dict(method="structured", kind="good", history=[], metrics={}, extra={}, library_versions={})
    metadata = {name: defaults.get(name) if config.get(name) is None else config[name] for name in METADATA_FIELDS}
    if metadata["search_data"] is None:
        metadata["search_data"] = config.get("importance_source")
    return metadata


def _param_sort_key(name: str) -> tuple[int, int, str]:
    match = LAYER_NAME.match(name)
    order = {f"{p}.{k}": i for i, (p, k) in enumerate(MAGNITUDE_WEIGHT_SET)}
    return (int(match.group(1)), order.get(f"{match.group(2)}.{match.group(3)}", 99), name)


def kept_entries(
    structure: EncoderStructure, head_mask: torch.Tensor, mlp_mask: torch.Tensor, weight_masks: dict[str, torch.Tensor]
) -> dict[str, torch.Tensor]:
    """Kept-entry bool masks (CPU) of the encoder parameters of which these masks prune entries (see `bake`)."""
    params = structure.named_encoder_parameters()
    keep: dict[str, torch.Tensor] = {}

    def add(name: str, mask: torch.Tensor) -> None:
        mask = mask.expand(params[name].shape).cpu()
        keep[name] = keep[name] & mask if name in keep else mask.clone()

    for layer in structure.layers:
        prefix = f"layer.{layer.index}."
        heads = head_mask[layer.index].cpu()
        if not bool(heads.all()):
            add(f"{prefix}{ATTENTION_OUTPUT}.weight", heads.repeat_interleave(structure.head_size)[None, :])
        if not bool(mlp_mask[layer.index]):
            add(f"{prefix}{MLP_OUTPUT}.weight", torch.zeros(1, 1, dtype=torch.bool))
            if layer.mlp_output.bias is not None:
                add(f"{prefix}{MLP_OUTPUT}.bias", torch.zeros(1, dtype=torch.bool))
    for name, mask in weight_masks.items():
        add(name, mask)
    return {name: mask for name, mask in keep.items() if not bool(mask.all())}


def _structure(model: nn.Module | EncoderStructure) -> EncoderStructure:
    return model if isinstance(model, EncoderStructure) else EncoderStructure(model)
