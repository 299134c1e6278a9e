"""Physical removal of pruned heads and MLP neurons (`compact_model`), and saving / reloading compacted models.

Heads and MLP neurons are removed with torch-pruning's pruning functions on explicit indices: a pruned head drops
its rows of Q/K/V (weights and biases) and its columns of ``attention.output.dense``; a pruned MLP drops every
neuron of ``intermediate.dense`` / ``output.dense`` (width zero). Each attention module's head count and all-head size
are updated, and the pruning spec is recorded in the config (``config.hf_lottery_pruning``). A layer with no head left
and an MLP of width zero both run in eager and sdpa attention. A pruned MLP's output bias is zeroed, as its gate
does. Weight (magnitude) masks cannot remove whole rows: they are written into the weights as zeros (dense).

`save_pretrained` of a compacted model writes ``config.json`` with ``model_type: "hf_lottery_compact"`` (and, since
the head count varies per layer, ``num_attention_heads`` holding a loading hint) and the weights as
``hf_lottery_compact.safetensors`` — there is deliberately no ``model.safetensors``. A plain ``from_pretrained`` fails
loudly, naming `load_pruned_model`, instead of silently re-initialising mismatched weights. Load it with
``hf_lottery.load_pruned_model(path)``, or with ``AutoModelForSequenceClassification.from_pretrained(path)`` after
``import hf_lottery`` (which registers the type).
"""

from __future__ import annotations

import copy
import json
import os
from pathlib import Path
from typing import Any

import torch
import torch_pruning as tp
from torch import nn
from transformers import AutoConfig, AutoModelForSequenceClassification, PretrainedConfig
from transformers.utils import logging

from .atomic import write_json
from .files import COMPACT_MODEL_TYPE, COMPACT_SPEC_KEY, COMPACT_WEIGHTS_NAME
from .structure import EncoderStructure
from .ticket import LotteryTicket


logger = logging.get_logger(__name__)
SPEC_KEY = COMPACT_SPEC_KEY
SPEC_VERSION = 1
LOAD_HINT = "varies per layer in this hf-lottery compact model: load it with hf_lottery.load_pruned_model(path)"


def pruning_spec(ticket: LotteryTicket, model_type: str, architecture: str) -> dict[str, Any]:
    """The per-layer record a compacted model carries: which heads and MLPs it kept, and what it was before."""
    return {
        "format_version": SPEC_VERSION,
        "base_model_type": model_type,
        "architecture": architecture,
        "heads_kept": [torch.nonzero(row).flatten().tolist() for row in ticket.head_mask],
        "mlps_kept": ticket.mlp_mask.tolist(),
        "num_attention_heads": ticket.num_heads,
    }


def ticket_from_spec(spec: dict[str, Any]) -> LotteryTicket:
    if spec.get("format_version", 0) > SPEC_VERSION:
        raise ValueError(f"Compaction spec version {spec['format_version']} is newer than this hf-lottery reads.")
    head_mask = torch.zeros(len(spec["heads_kept"]), spec["num_attention_heads"], dtype=torch.bool)
    for layer, heads in enumerate(spec["heads_kept"]):
        head_mask[layer, heads] = True
    return LotteryTicket(head_mask=head_mask, mlp_mask=torch.tensor(spec["mlps_kept"]), kind="custom")


@torch.no_grad()
def _compact_layers(structure: EncoderStructure, ticket: LotteryTicket) -> None:
    size = structure.head_size
    for layer in structure.layers:
        pruned = torch.nonzero(~ticket.head_mask[layer.index]).flatten().tolist()
        if pruned:
            idxs = [h * size + i for h in pruned for i in range(size)]
            for linear in (layer.query, layer.key, layer.value):
                tp.prune_linear_out_channels(linear, idxs)
            tp.prune_linear_in_channels(layer.attention_output, idxs)
            kept = structure.num_heads - len(pruned)
            layer.attention_self.num_attention_heads = kept
            layer.attention_self.all_head_size = kept * size
        if not bool(ticket.mlp_mask[layer.index]):
            idxs = list(range(layer.intermediate.out_features))
            tp.prune_linear_out_channels(layer.intermediate, idxs)
            tp.prune_linear_in_channels(layer.mlp_output, idxs)
            if layer.mlp_output.bias is not None:
                layer.mlp_output.bias.zero_()  # the MLP gate zeroes the whole output, bias included
        for linear in (
            layer.query,
            layer.key,
            layer.value,
            layer.attention_output,
            layer.intermediate,
            layer.mlp_output,
        ):
            linear.weight.data = linear.weight.data.contiguous()


class CompactModelMixin:
    """Mixed into a compacted model's class: `save_pretrained` writes the compact folder format."""

    def save_pretrained(self, save_directory: str | os.PathLike, **kwargs: Any) -> None:
        folder = Path(save_directory)
        kwargs.setdefault("max_shard_size", "1000GB")  # one weights file, renamed below
        super().save_pretrained(folder, **kwargs)
        saved = folder / "model.safetensors"
        if not saved.is_file():
            raise OSError(f"Expected {saved} after save_pretrained; compact models are saved as one safetensors file.")
        os.replace(saved, folder / COMPACT_WEIGHTS_NAME)
        config = json.loads((folder / "config.json").read_text())
        config["model_type"] = COMPACT_MODEL_TYPE
        # Heads differ per layer, so no single count is right; the value is the message a plain from_pretrained
        # shows when the config's type check rejects it (the real per-layer heads are in the spec).
        config["num_attention_heads"] = LOAD_HINT
        write_json(folder / "config.json", config)
        (folder / "README_LOADING.txt").write_text(
            "This folder holds a model compacted by hf-lottery (pruned heads and MLP neurons removed).\n"
            "Load it with:\n\n    from hf_lottery import load_pruned_model\n    model = load_pruned_model(path)\n\n"
            "(or AutoModelForSequenceClassification.from_pretrained(path) after `import hf_lottery`).\n"
        )


def _compact_class(cls: type) -> type:
    if issubclass(cls, CompactModelMixin):
        return cls
    return type(f"Compact{cls.__name__}", (CompactModelMixin, cls), {"__module__": __name__})


def _drop_ticket_hooks(model: nn.Module) -> None:
    """Remove hf-lottery gate hooks a deep copy carried over (they belong to the original model's handle)."""
    for module in model.modules():
        for hooks in (module._forward_pre_hooks, module._forward_hooks):
            for key in [k for k, fn in hooks.items() if getattr(fn, "__qualname__", "").startswith("TicketHandle.")]:
                del hooks[key]
    # parameter hooks (gradient masking) are not deep-copied: nn.Parameter.__deepcopy__ makes fresh parameters


def compact_model(model: nn.Module, ticket: LotteryTicket, *, inplace: bool = False) -> nn.Module:
    """A physically smaller copy of `model` without the heads and MLPs `ticket` prunes (see the module docstring).

    Example:

    ```python
    >>> small = compact_model(model, ticket)           # doctest: +SKIP
    >>> small.save_pretrained("compact")               # reload with hf_lottery.load_pruned_model("compact")
    ```
    """
    structure = EncoderStructure(model)
    ticket.validate(structure)
    if inplace:
        target = structure.model
    else:
        target = copy.deepcopy(structure.model)
        _drop_ticket_hooks(target)
    if ticket.weight_masks:
        ticket.bake(target)
    structure = EncoderStructure(target)
    _compact_layers(structure, ticket)
    config = getattr(target, "config", None)
    if config is not None:
        setattr(config, SPEC_KEY, pruning_spec(ticket, config.model_type, type(target).__name__))
    target.__class__ = _compact_class(type(target))
    return target


def is_compact_folder(folder: str | os.PathLike) -> bool:
    path = Path(folder) / "config.json"
    return path.is_file() and SPEC_KEY in json.loads(path.read_text())


def load_compact_folder(folder: str | os.PathLike, model_class: type | None = None) -> nn.Module:
    """Rebuild the dense architecture from the config, re-prune it by the recorded spec, then load the weights."""
    from safetensors.torch import load_file

    folder = Path(folder)
    config_dict = json.loads((folder / "config.json").read_text())
    spec = config_dict.pop(SPEC_KEY)
    config_dict["model_type"] = spec["base_model_type"]
    config_dict["num_attention_heads"] = spec["num_attention_heads"]
    base_type = config_dict.pop("model_type")
    config = AutoConfig.for_model(base_type, **{k: v for k, v in config_dict.items() if k != "transformers_version"})
    weights = folder / COMPACT_WEIGHTS_NAME
    if not weights.is_file():
        raise FileNotFoundError(f"{folder} holds a compact config but no {COMPACT_WEIGHTS_NAME}.")
    cls = model_class or AutoModelForSequenceClassification
    model = cls.from_config(config) if hasattr(cls, "from_config") else cls(config)
    compact = compact_model(model, ticket_from_spec(spec), inplace=True)
    try:
        compact.load_state_dict(load_file(str(weights)), strict=True)
    except RuntimeError as err:
        raise ValueError(f"{weights} does not match the compact architecture its config describes: {err}") from err
    return compact.eval()


class CompactConfig(PretrainedConfig):
    """Config of a saved compact folder (``model_type: "hf_lottery_compact"``); see `load_compact_folder`."""

    model_type = COMPACT_MODEL_TYPE


class CompactAutoModel(nn.Module):
    """Lets ``AutoModelForSequenceClassification.from_pretrained(compact_folder)`` work once hf_lottery is imported."""

    config_class = CompactConfig

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path: str | os.PathLike, *args: Any, **kwargs: Any) -> nn.Module:
        from .hub import load_pruned_model

        return load_pruned_model(
            pretrained_model_name_or_path, revision=kwargs.get("revision"), token=kwargs.get("token")
        )


def register_auto_classes() -> None:
    """Register the compact model type with transformers' Auto classes (idempotent)."""
    try:
        AutoConfig.register(COMPACT_MODEL_TYPE, CompactConfig, exist_ok=True)
        AutoModelForSequenceClassification.register(CompactConfig, CompactAutoModel, exist_ok=True)
    except (ValueError, TypeError) as err:  # a transformers without exist_ok, or a stricter check
        logger.warning(
            "Could not register the %s model type with transformers' Auto classes: %s", COMPACT_MODEL_TYPE, err
        )
