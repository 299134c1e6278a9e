"""`LotteryTicket`: head, MLP and weight masks of one BERT subnetwork, with the metadata that makes them portable.

The ticket reads and writes its own two files (``ticket_config.json`` + ``ticket_masks.safetensors``, through
`hf_lottery.tickets.serialization`, from a local folder or the Hub through `hf_lottery.downloads`) and its record in a
model's ``config.json`` (`LotteryTicket.to_config_entry`). Pushing to the Hub (`hf_lottery.hub.push.push_ticket_to_hub`),
the paper's ``.npy`` masks (`hf_lottery.tickets.legacy.load_legacy_ticket`), compaction and plots live in modules that
import this one, never the reverse.
"""

from __future__ import annotations

import math
import os
from copy import deepcopy
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import torch

from .._version import __version__
from ..downloads import download_files
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
from .fields import (
    KINDS,
    LAYER_NAME,
    METADATA_FIELDS,
    METHODS,
    as_bool_mask,
    check_metadata,
    check_scores,
    list_to_tensor,
    metadata_from_config,
)
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


if TYPE_CHECKING:
    from torch import nn

__all__ = ["FORMAT_VERSION", "TICKET_CONFIG_NAME", "TICKET_MASKS_NAME", "LotteryTicket", "weight_masks_sha256"]


@dataclass(eq=False)
class LotteryTicket:
    """Masks of one BERT subnetwork (a "lottery ticket") plus the metadata that makes it portable.

    A ticket switches off attention heads (`head_mask`, ``[num_layers, num_heads]``), whole MLPs (`mlp_mask`,
    ``[num_layers]``) and individual weights (`weight_masks`, keyed by parameter name relative to the encoder such as
    ``layer.0.attention.self.query.weight``, so the same ticket fits `BertModel` and `BertForSequenceClassification`).
    ``True`` means kept. It is saved as ``ticket_config.json`` + ``ticket_masks.safetensors``. Every field is checked
    here: a bad value raises a `ValueError` / `TypeError` naming the field.

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

    # ------------------------------------------------------------------ constructors
    @classmethod
    def full(cls, model_or_structure: nn.Module | EncoderStructure, **metadata: Any) -> LotteryTicket:
        """A ticket that keeps everything in `model` (the starting point of a search).

        The base model defaults to the model config's ``hf_lottery_base_model`` entry (the pre-trained model a
        fine-tune started from), else its ``_name_or_path``.

        Example:

        ```python
        >>> model = tiny_bert()
        >>> LotteryTicket.full(model).summary()["kept_heads"]
        8

        ```
        """
        structure = _structure(model_or_structure)
        metadata.setdefault("kind", "full")
        metadata.setdefault("model_dims", structure.dims())
        metadata.setdefault("base_model", base_model_of(structure.model))
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
        entry: dict[str, Any] = {name: deepcopy(getattr(self, name)) for name in METADATA_FIELDS}
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
                "kept_zeros": true_runs(kept_zero.reshape(-1)),
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
                tensors[name] = list_to_tensor(value, name, where)
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

    # ------------------------------------------------------------------ its two files
    def save_pretrained(self, save_directory: str | os.PathLike) -> Path:
        """Write ``ticket_config.json`` and ``ticket_masks.safetensors`` into `save_directory` as one atomic commit.

        Other files in the folder (model weights, a card) are kept. The config records the ticket's metadata, summary
        counts (checked again at load), the library versions and the masks' sha256; the masks file is
        byte-identical for the same ticket. An interrupted save leaves the previous ticket loadable (see
        `hf_lottery.tickets.serialization`). Returns the folder.

        Example:

        ```python
        >>> import tempfile, torch
        >>> ticket = LotteryTicket(head_mask=torch.tensor([[1, 0]]), mlp_mask=torch.tensor([1]), seed=1)
        >>> folder = ticket.save_pretrained(tempfile.mkdtemp())
        >>> sorted(p.name for p in folder.iterdir())
        ['ticket_config.json', 'ticket_masks.safetensors']

        ```
        """
        return write_ticket_files(save_directory, self._file_config(), self._file_tensors())

    def _file_config(self) -> dict[str, Any]:
        """The JSON half of the ticket (everything but the tensors), with summary counts for people and checks."""
        summary = self.summary()
        config: dict[str, Any] = {name: getattr(self, name) for name in METADATA_FIELDS}
        config.update(
            format_version=FORMAT_VERSION,
            library="hf-lottery",
            library_version=__version__,
            num_layers=self.num_layers,
            num_heads=self.num_heads,
            kept_heads=summary["kept_heads"],
            heads_kept_per_layer=summary["heads_kept_per_layer"],
            kept_mlps=summary["kept_mlps"],
            mlps_kept=self.mlp_mask.int().tolist(),
            sparsity=self.sparsity,
            weight_mask_names=list(self.weight_masks),
            weight_masks_kept={name: int(mask.sum()) for name, mask in self.weight_masks.items()},
            has_scores=self.head_importance is not None or self.mlp_importance is not None,
        )
        return config

    def _file_tensors(self) -> dict[str, torch.Tensor]:
        tensors = {"head_mask": self.head_mask, "mlp_mask": self.mlp_mask}
        for name in SCORE_NAMES:
            if getattr(self, name) is not None:
                tensors[name] = getattr(self, name)
        tensors.update(self.weight_masks)
        return tensors

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

        Args:
            path: a ticket folder, or a Hub repo id (``"user/name"``).
            revision, token, subfolder, cache_dir: for the Hub download (`subfolder` also applies to a folder).

        Raises:
            FileNotFoundError: no such folder, no ticket files in it, or (Hub) no such repo / revision / ticket.
            ConnectionError: offline or no connection to the Hub, and the files are not cached ("offline / no
                connection" in the message).
            ValueError: a damaged ticket (the message names the file and what is wrong, and for a save that was cut
                off, the way out).

        Example:

        ```python
        >>> import tempfile, torch
        >>> folder = LotteryTicket(head_mask=torch.ones(1, 2), mlp_mask=torch.ones(1)).save_pretrained(tempfile.mkdtemp())
        >>> LotteryTicket.from_pretrained(folder).summary()["kept_heads"]
        2
        >>> from huggingface_hub import constants
        >>> online, constants.HF_HUB_OFFLINE = constants.HF_HUB_OFFLINE, True  # as with HF_HUB_OFFLINE=1
        >>> LotteryTicket.from_pretrained("user/never-downloaded")
        Traceback (most recent call last):
        hf_lottery.downloads.HubConnectionError: Could not download ticket_config.json, ticket_masks.safetensors of 'user/never-downloaded': offline mode is on (HF_HUB_OFFLINE=1), ...
        >>> constants.HF_HUB_OFFLINE = online

        ```
        """
        folder = Path(path)
        local = folder / subfolder if subfolder else folder
        if local.is_dir():
            return cls._from_folder(local)
        if folder.exists():
            raise NotADirectoryError(f"{folder} is a file; a ticket is a folder holding {TICKET_CONFIG_NAME}.")
        folder = download_files(
            path, TICKET_FILES, revision=revision, token=token, subfolder=subfolder, cache_dir=cache_dir
        )
        return cls._from_folder(folder)

    @classmethod
    def _from_folder(cls, folder: Path) -> LotteryTicket:
        config, tensors = read_ticket_files(folder)
        scores = {name: tensors[name] for name in SCORE_NAMES if name in tensors}
        weight_masks = {name: t for name, t in tensors.items() if name not in ("head_mask", "mlp_mask", *SCORE_NAMES)}
        try:
            return cls(
                head_mask=tensors["head_mask"],
                mlp_mask=tensors["mlp_mask"],
                weight_masks=weight_masks,
                **scores,
                **metadata_from_config(config),
            )
        except (TypeError, ValueError) as err:
            raise type(err)(f"{folder / TICKET_CONFIG_NAME}: {err}") from err

    # ------------------------------------------------------------------ checks and views
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

    def compatibility_problems(self, model: nn.Module | EncoderStructure) -> list[str]:
        """What makes this ticket doubtful for `model`, as sentences to warn with (empty when nothing is).

        Lists: dimensions that differ from the ticket's `model_dims` (or a head mask of another shape); a ticket
        without `model_dims`, which cannot be checked against the model's size; and a base model that differs from
        the model's own (its config's ``hf_lottery_base_model``, else ``_name_or_path``) when both are Hub ids.
        `validate` raises for the shape problems; this method only reports.

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
        if (structure.num_layers, structure.num_heads) != tuple(self.head_mask.shape):
            problems.append(
                f"The ticket's head mask is {self.num_layers} layers × {self.num_heads} heads but the model has "
                f"{structure.num_layers} × {structure.num_heads}."
            )
        if self.model_dims is None:
            problems.append(
                "The ticket records no `model_dims`, so it cannot be checked that it was found on a model of this "
                f"size (hidden_size={found['hidden_size']}, intermediate_size={found['intermediate_size']})."
            )
        else:
            diff = [f"{k}: ticket {v}, model {found[k]}" for k, v in self.model_dims.items() if found[k] != v]
            if diff:
                problems.append(f"The ticket was found on a model of other dimensions ({'; '.join(diff)}).")
        source = base_model_of(structure.model)
        if (
            self.base_model
            and source
            and is_hub_id(self.base_model)
            and is_hub_id(source)
            and not same_hub_model(self.base_model, source)
        ):
            problems.append(f"The ticket was found on {self.base_model!r} but the model comes from {source!r}.")
        return problems

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
        match = LAYER_NAME.match(name)
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
        """(kept, total) entries of the paper's magnitude weight set under this ticket, or None without dims.

        Example:

        ```python
        >>> model = tiny_bert()
        >>> ticket = LotteryTicket.full(model).copy(mlp_mask=torch.tensor([1, 0]))
        >>> ticket.kept_weight_counts(), round(ticket.sparsity, 4)
        ((10853, 13258), 0.1814)

        ```
        """
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

    # ------------------------------------------------------------------ writing into weights
    @torch.no_grad()
    def bake(self, model: nn.Module) -> nn.Module:
        """Write this ticket into `model`'s weights as zeros, in place, and return `model`.

        A pruned head zeroes its columns of ``attention.output.dense.weight``; a pruned MLP zeroes ``output.dense``
        weight and bias; weight masks zero their entries. A plain ``from_pretrained`` of the saved weights then gives
        the pruned outputs without hf-lottery installed.

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
        values = {f.name: getattr(self, f.name) for f in fields(self)}
        values["weight_masks"] = {k: v.clone() for k, v in self.weight_masks.items()}
        values["history"] = [dict(step) for step in self.history]
        values["metrics"] = dict(self.metrics)
        values["extra"] = dict(self.extra)
        values.update(changes)
        return LotteryTicket(**values)


def _param_sort_key(name: str) -> tuple[int, int, str]:
    match = LAYER_NAME.match(name)
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
