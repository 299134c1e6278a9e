"""Physical removal of pruned heads and MLP neurons (`compact_model`), and saving / reloading compacted models.

torch-pruning removes a pruned head's rows of Q/K/V (weights and biases) and its columns of ``attention.output.dense``,
and every neuron of a pruned MLP (width zero; its output bias is zeroed, as its gate does); each attention module's
head count and all-head size are updated. Layers with no head or no MLP left run in eager and sdpa attention. Weight
(magnitude) masks cannot remove whole rows: they are written into the weights as zeros, which neither shrinks nor
speeds up the model.

The config keeps the dense sizes and records the per-layer sizes in ``config.hf_lottery_pruning`` (`pruning_spec`;
read back by `ticket_from_spec`):

* ``heads_kept``: per layer, the indices of the heads kept (each ``hidden_size / num_attention_heads`` wide);
* ``mlps_kept``: per layer, ``true`` for a whole MLP, ``false`` for a removed one (width 0);
* ``num_attention_heads``: the dense head count the indices refer to;
* ``base_model_type`` and ``architecture``: the dense model type and class (e.g. ``"bert"``, ``"BertForMaskedLM"``);
* ``format_version``: 1.

transformers 5's ``per_layer_config`` is not used: it makes ``config.num_attention_heads`` raise for every reader, and
BERT's head size is ``hidden_size / num_attention_heads``, so a per-layer head count there means other shapes.

`save_pretrained` of a compacted model writes ``config.json`` with the model type `SAVED_MODEL_TYPE` and the weights
as ``hf_lottery_compact.safetensors``, deliberately no ``model.safetensors``: a plain ``from_pretrained`` fails loudly
(naming that type, which says how to load it) instead of silently re-initialising mismatched weights. Load it with
``hf_lottery.load_pruned_model(path, compact=True)``, or with the Auto classes after ``register_auto_classes()``."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import torch
import transformers
from torch import nn
from transformers import AutoConfig

from ..atomic import write_json
from ..files import COMPACT_MODEL_TYPE, COMPACT_SPEC_KEY, COMPACT_WEIGHTS_NAME
from ..gates import copy_without_hooks
from ..structure import EncoderStructure
from ..tickets.ticket import LotteryTicket


SPEC_KEY = COMPACT_SPEC_KEY
SPEC_VERSION = 1
# transformers 5.24 answers an unknown model type with a fixed text ("... update Transformers") that quotes only the
# type, and offers no public route to another message (`auto_map` would ask for trust_remote_code): the type says it.
SAVED_MODEL_TYPE = (
    f"{COMPACT_MODEL_TYPE} (load it with hf_lottery.load_pruned_model, or after hf_lottery.register_auto_classes())"
)


def pruning_spec(ticket: LotteryTicket, model_type: str, architecture: str) -> dict[str, Any]:
    """The per-layer record a compacted model carries: which heads and MLPs it kept, and what it was before.

    Example:

    ```python
    >>> import torch
    >>> ticket = LotteryTicket(head_mask=torch.tensor([[1, 0], [0, 0]]), mlp_mask=torch.tensor([1, 0]))
    >>> pruning_spec(ticket, "bert", "BertModel")["heads_kept"]
    [[0], []]

    ```
    """
    return {
        "format_version": SPEC_VERSION,
        "base_model_type": model_type,
        "architecture": architecture,
        "heads_kept": [torch.nonzero(row).flatten().tolist() for row in ticket.head_mask],
        "mlps_kept": ticket.mlp_mask.tolist(),
        "num_attention_heads": ticket.num_heads,
    }


def _int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def ticket_from_spec(spec: Any, num_layers: int | None = None, source: str = "config.json") -> LotteryTicket:
    """The structured ticket a compact spec describes; `ValueError` naming the field for a malformed spec.

    Example:

    ```python
    >>> ticket_from_spec({"heads_kept": [[0], []], "mlps_kept": [True, False], "num_attention_heads": 2}).head_mask
    tensor([[ True, False],
            [False, False]])

    ```
    """
    where = f"{source}: {SPEC_KEY}"
    if not isinstance(spec, dict):
        raise ValueError(f"{where} must be an object with heads_kept, mlps_kept and num_attention_heads.")
    version = spec.get("format_version", SPEC_VERSION)
    if not _int(version) or version < 1:
        raise ValueError(f"{where}.format_version must be a positive integer; got {version!r}.")
    if version > SPEC_VERSION:
        raise ValueError(f"{where}.format_version {version} is newer than this hf-lottery reads ({SPEC_VERSION}).")
    for key in ("heads_kept", "mlps_kept", "num_attention_heads"):
        if key not in spec:
            raise ValueError(f"{where} has no `{key}` (expected heads_kept, mlps_kept and num_attention_heads).")
    heads, kept, mlps = spec["num_attention_heads"], spec["heads_kept"], spec["mlps_kept"]
    if not _int(heads) or heads < 1:
        raise ValueError(f"{where}.num_attention_heads must be an integer ≥ 1; got {heads!r}.")
    if not isinstance(kept, list) or not kept or not all(isinstance(row, list) for row in kept):
        raise ValueError(f"{where}.heads_kept must be a non-empty list (one list of head indices per layer).")
    if num_layers is not None and len(kept) != num_layers:
        raise ValueError(f"{where}.heads_kept has {len(kept)} layers; num_hidden_layers is {num_layers}.")
    head_mask = torch.zeros(len(kept), heads, dtype=torch.bool)
    for layer, row in enumerate(kept):
        bad = [h for h in row if not _int(h) or not 0 <= h < heads]
        if bad or len(set(row)) != len(row):
            raise ValueError(
                f"{where}.heads_kept[{layer}] = {row} must hold distinct head indices in [0, {heads - 1}]"
                f"{f'; {bad[0]!r} is not' if bad else ''}."
            )
        head_mask[layer, row] = True
    if not isinstance(mlps, list) or len(mlps) != len(kept) or not all(isinstance(m, bool) for m in mlps):
        raise ValueError(f"{where}.mlps_kept must be a list of {len(kept)} booleans (one per layer); got {mlps!r}.")
    return LotteryTicket(head_mask=head_mask, mlp_mask=torch.tensor(mlps), kind="custom")


@torch.no_grad()
def _compact_layers(structure: EncoderStructure, ticket: LotteryTicket) -> None:
    import torch_pruning as tp

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
        for linear in (layer.query, layer.key, layer.value, layer.attention_output, layer.intermediate,
                       layer.mlp_output):  # fmt: skip
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
        config["model_type"] = SAVED_MODEL_TYPE
        config["architectures"] = [config[SPEC_KEY]["architecture"]]  # the dense class, not Compact<class>
        write_json(folder / "config.json", config)
        (folder / "README_LOADING.txt").write_text(
            "This folder holds a model compacted by hf-lottery (pruned heads and MLP neurons removed).\n"
            "Load it with:\n\n    from hf_lottery import load_pruned_model\n"
            "    model = load_pruned_model(path, compact=True)\n\n"
            "(or AutoModelForSequenceClassification.from_pretrained(path) after hf_lottery.register_auto_classes()).\n"
        )


def compact_model(model: nn.Module, ticket: LotteryTicket, *, inplace: bool = False) -> nn.Module:
    """A physically smaller copy of `model` without the heads and MLPs `ticket` prunes (see the module docstring).

    Example:

    ```python
    >>> import tempfile, torch
    >>> model = tiny_bert(vocab_size=50)
    >>> ticket = LotteryTicket.full(model).copy(head_mask=torch.tensor([[1, 1, 0, 0], [1, 0, 0, 0]]))
    >>> small = compact_model(model, ticket)
    >>> [layer.attention.self.num_attention_heads for layer in small.bert.encoder.layer]
    [2, 1]
    >>> small.save_pretrained(tempfile.mkdtemp())  # reload with hf_lottery.load_pruned_model(folder, compact=True)

    ```
    """
    structure = EncoderStructure(model)
    ticket.validate(structure)
    target = structure.model if inplace else copy_without_hooks(structure.model)
    if ticket.weight_masks:
        ticket.bake(target)
    _compact_layers(EncoderStructure(target), ticket)
    config = getattr(target, "config", None)
    if config is not None:
        setattr(config, SPEC_KEY, pruning_spec(ticket, config.model_type, type(target).__name__))
    if not isinstance(target, CompactModelMixin):
        cls = type(target)
        target.__class__ = type(f"Compact{cls.__name__}", (CompactModelMixin, cls), {"__module__": __name__})
    return target


def read_config(folder: str | os.PathLike) -> dict[str, Any]:
    """The folder's ``config.json`` as a dict; `FileNotFoundError` / `ValueError` naming a missing or bad file."""
    path = Path(folder) / "config.json"
    if not path.is_file():
        raise FileNotFoundError(f"{folder} has no config.json: give a model folder saved with save_pretrained.")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise ValueError(f"{path} is not valid JSON (line {err.lineno}): {err.msg}.") from err
    if not isinstance(data, dict):
        raise ValueError(f"{path} must hold a JSON object; got {type(data).__name__}.")
    return data


def model_class_for(architecture: Any, field_name: str, default: type | None = None) -> type:
    """The transformers model class named `architecture` (e.g. ``"BertForMaskedLM"``), or `default` when None."""
    if architecture is None and default is not None:
        return default
    cls = getattr(transformers, architecture, None) if isinstance(architecture, str) else None
    if not (isinstance(cls, type) and issubclass(cls, transformers.PreTrainedModel)):
        raise ValueError(
            f"{field_name} must name a transformers model class such as 'BertForSequenceClassification'; "
            f"got {architecture!r}."
        )
    return cls


def _load_weights(model: nn.Module, files: list[Path]) -> None:
    """Load safetensors `files` into `model` strictly, except for tied parameters (e.g. an MLM decoder) they omit."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    state: dict[str, torch.Tensor] = {}
    for path in files:
        try:
            state.update(load_file(str(path)))
        except (SafetensorError, OSError, ValueError) as err:
            raise ValueError(f"{path} is not a readable safetensors file (truncated or corrupt?): {err}") from err
    aliases: dict[int, list[str]] = {}
    for name, param in model.named_parameters(remove_duplicate=False):
        aliases.setdefault(id(param), []).append(name)
    tied = {name for names in aliases.values() if len(names) > 1 for name in names}
    own = model.state_dict()
    shapes = [f"{k}: file {tuple(v.shape)}, model {tuple(own[k].shape)}" for k, v in state.items()
              if k in own and tuple(v.shape) != tuple(own[k].shape)]  # fmt: skip
    missing = [k for k in own if k not in state and not (k in tied and any(t in state for t in tied))]
    missing = [k for k in missing if not k.endswith("position_ids")]  # a buffer, not always saved
    unexpected = [k for k in state if k not in own and not k.endswith("position_ids")]
    if shapes or missing or unexpected:
        problems = "; ".join(
            f"{label} {items[:4]}{' …' if len(items) > 4 else ''}"
            for label, items in (("shape mismatch", shapes), ("missing", missing), ("unexpected", unexpected))
            if items
        )
        names = ", ".join(map(str, files))
        raise ValueError(f"{names} does not match the architecture its config describes: {problems}.")
    model.load_state_dict({k: v for k, v in state.items() if k in own}, strict=False)


def rebuild_compacted(
    config_dict: dict[str, Any], ticket: LotteryTicket, model_type: Any, cls: type, files: list[Path], source: str
) -> nn.Module:
    """Build the dense `cls` (a model or Auto class) of `config_dict`, compact it by `ticket`, load `files` into it.

    Serves compact folders and transformers-4 head-pruned checkpoints: the config describes the dense model, the
    weights the compacted one; a misfit raises `ValueError` naming the file."""
    skip = ("transformers_version", "model_type", "pruned_heads", SPEC_KEY)
    values = {k: v for k, v in config_dict.items() if k not in skip} | {"num_attention_heads": ticket.num_heads}
    try:
        config = AutoConfig.for_model(model_type, **values)
    except (ValueError, KeyError, TypeError) as err:
        raise ValueError(f"{source}: cannot rebuild a {model_type!r} config from it: {err}") from err
    model = cls.from_config(config) if hasattr(cls, "from_config") else cls(config)
    ticket = ticket.copy(model_dims=EncoderStructure(model).dims())
    model = compact_model(model, ticket, inplace=True)
    _load_weights(model, files)
    model.hf_lottery_ticket = ticket
    return model.eval()


def load_compact_folder(folder: str | os.PathLike, model_class: type | None = None) -> nn.Module:
    """The compacted model of a compact folder: the spec's architecture (or `model_class`), see `rebuild_compacted`."""
    folder = Path(folder)
    source = str(folder / "config.json")
    config_dict = read_config(folder)
    spec = config_dict.get(SPEC_KEY)
    ticket = ticket_from_spec(spec, config_dict.get("num_hidden_layers"), source)
    model_type = spec.get("base_model_type")
    if not isinstance(model_type, str):
        raise ValueError(f"{source}: {SPEC_KEY}.base_model_type must be a model type such as 'bert'.")
    weights = folder / COMPACT_WEIGHTS_NAME
    if not weights.is_file():
        raise FileNotFoundError(f"{folder} holds a compact config but no {COMPACT_WEIGHTS_NAME}.")
    cls = model_class or model_class_for(spec.get("architecture"), f"{source}: {SPEC_KEY}.architecture")
    return rebuild_compacted(config_dict, ticket, model_type, cls, [weights], source)
