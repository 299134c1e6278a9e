"""`load_pruned_model`: every pruned-model folder hf-lottery writes (and transformers-4 head-pruned checkpoints).

A folder (or Hub repo) is recognised by what it holds:

(a) a **compact folder** (``config.json`` with ``hf_lottery_pruning``, weights in ``hf_lottery_compact.safetensors``),
    written by ``compact_model(...).save_pretrained``;
(b) a **dense folder whose config records the ticket** (``config.json`` entry ``hf_lottery_ticket``), written by any
    ``save_pretrained`` of a model trained with a ticket attached (the ticket is baked into the weights, so a plain
    ``from_pretrained`` already gives the pruned outputs);
(c) a **dense folder with the ticket files beside the weights** (``ticket_config.json`` + ``ticket_masks.safetensors``,
    as `push_to_hub` writes);
(d) a **transformers-4 head-pruned checkpoint** (``config.json`` with ``pruned_heads`` ``{"layer": [heads]}``, Q/K/V
    rows and attention-output columns removed), which transformers 5 fails to load; here the ticket is derived
    (`ticket_from_pruned_heads`) and the weights load into the compacted architecture.

``compact=False`` (the default) always returns the dense architecture with the ticket applied as gates
(``model.hf_lottery_handle``); for (a) and (d) the removed heads / MLP neurons come back as exact zeros, so the dense
model gives the same outputs with or without the gates. ``compact=True`` always returns the physically compacted
model. Either way ``model.hf_lottery_ticket`` holds the ticket, which can be saved, pushed or compared."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import torch
from torch import nn
from transformers import AutoModelForSequenceClassification
from transformers.utils import logging

from ..atomic import inside
from ..downloads import TicketNotFoundError, check_subfolder, snapshot
from ..files import COMPACT_WEIGHTS_NAME, CONFIG_TICKET_KEY, TICKET_CONFIG_NAME, TICKET_MASKS_NAME
from ..gates import apply_ticket
from ..tickets.ticket import LotteryTicket
from .auto import register_auto_classes
from .compaction import SPEC_KEY, compact_model, load_compact_folder, model_class_for, read_config, rebuild_compacted
from .expansion import expand_compact_model


logger = logging.get_logger(__name__)
MODEL_FILES = ["config.json", "model.safetensors", "model.safetensors.index.json", "model-*.safetensors",
               COMPACT_WEIGHTS_NAME, TICKET_CONFIG_NAME, TICKET_MASKS_NAME, "tokenizer.json", "tokenizer_config.json",
               "vocab.txt", "special_tokens_map.json", "merges.txt", "vocab.json", "sentencepiece.bpe.model",
               "spm.model"]  # fmt: skip


def _resolve(repo_id_or_path: str | os.PathLike, subfolder: str | None, **hub_options: Any) -> Path:
    """A local folder as is, else a snapshot of the repo's model, ticket and tokenizer files (in `subfolder`)."""
    path, subfolder = Path(repo_id_or_path), check_subfolder(subfolder)
    if path.is_dir():
        return inside(path, subfolder) if subfolder else path  # a symlink out of the folder is refused
    if path.exists():
        raise NotADirectoryError(f"{path} is a file; give a model folder or a Hub repo id.")
    files = [f"{subfolder}/{name}" for name in MODEL_FILES] if subfolder else MODEL_FILES
    return snapshot(repo_id_or_path, allow_patterns=files, subfolder=subfolder, what="a pruned model", **hub_options)


def ticket_from_pruned_heads(config: Any) -> LotteryTicket:
    """The structured ticket of a transformers-4 head-pruned checkpoint (``config.pruned_heads``).

    `config` is a ``config.json`` dict or a config object with ``pruned_heads`` (``{layer: [heads]}``, layer keys as
    ints or strings), ``num_hidden_layers``, ``num_attention_heads`` and ``hidden_size``. MLPs are all kept.

    Example:

    ```python
    >>> config = {"pruned_heads": {"0": [1, 2], "1": [0]}, "num_hidden_layers": 2, "num_attention_heads": 4,
    ...           "hidden_size": 32, "intermediate_size": 37}
    >>> ticket_from_pruned_heads(config).head_mask.int().tolist()
    [[1, 0, 0, 1], [0, 1, 1, 1]]

    ```
    """
    values = config if isinstance(config, dict) else config.to_dict()
    layers, heads, hidden = (values.get(k) for k in ("num_hidden_layers", "num_attention_heads", "hidden_size"))
    for key, value in (("num_hidden_layers", layers), ("num_attention_heads", heads), ("hidden_size", hidden)):
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise ValueError(f"config `{key}` must be an integer ≥ 1 to read `pruned_heads`; got {value!r}.")
    pruned = values.get("pruned_heads")
    if not isinstance(pruned, dict):
        raise ValueError(f"config `pruned_heads` must be an object {{layer: [heads]}}; got {pruned!r}.")
    head_mask = torch.ones(layers, heads, dtype=torch.bool)
    for layer, row in pruned.items():
        index = int(layer) if str(layer).isdigit() else -1
        if not 0 <= index < layers:
            raise ValueError(f"config `pruned_heads` names layer {layer!r}; layers are 0..{layers - 1}.")
        if not isinstance(row, list) or any(not isinstance(h, int) or not 0 <= h < heads for h in row):
            raise ValueError(f"config `pruned_heads[{layer!r}]` = {row!r} must list head indices in [0, {heads - 1}].")
        head_mask[index, row] = False
    dims = {"num_layers": layers, "num_heads": heads, "head_size": hidden // heads, "hidden_size": hidden,
            "intermediate_size": int(values.get("intermediate_size") or 4 * hidden)}  # fmt: skip
    return LotteryTicket(head_mask=head_mask, mlp_mask=torch.ones(layers, dtype=torch.bool), kind="custom",
                         model_dims=dims, extra={"source": "transformers-4 pruned_heads"})  # fmt: skip


def _weight_files(folder: Path) -> list[Path]:
    index = folder / "model.safetensors.index.json"
    if index.is_file():
        try:
            shards = sorted(set(json.loads(index.read_text())["weight_map"].values()))
        except (json.JSONDecodeError, KeyError, TypeError, AttributeError) as err:
            raise ValueError(f"{index} is not a safetensors index (expected a 'weight_map' object).") from err
        for shard in shards:  # the model's own files only: no path out of its folder
            if not isinstance(shard, str) or shard in ("", ".", "..") or Path(shard).name != shard or "\\" in shard:
                raise ValueError(
                    f"{index}: `weight_map` names {shard!r}; shards must be file names inside {folder} (no folder, "
                    "'..' or absolute path). The index is damaged or hostile: save the model again (save_pretrained)."
                )
        return [folder / shard for shard in shards]
    if (folder / "model.safetensors").is_file():
        return [folder / "model.safetensors"]
    if (folder / "pytorch_model.bin").is_file():
        raise ValueError(
            f"{folder} holds pytorch_model.bin only; hf-lottery never unpickles weights. Convert it to "
            "model.safetensors first (e.g. with transformers 4: model.save_pretrained(folder, safe_serialization=True))."
        )
    raise FileNotFoundError(f"{folder} has no model.safetensors.")


def _architecture(config_dict: dict[str, Any], source: str) -> type:
    names = config_dict.get("architectures")
    name = names[0] if isinstance(names, list) and names else None
    return model_class_for(name, f"{source}: architectures[0]", default=AutoModelForSequenceClassification)


def load_pruned_model(
    repo_id_or_path: str | os.PathLike,
    *,
    compact: bool = False,
    revision: str | None = None,
    token: str | bool | None = None,
    model_class: type | None = None,
    **from_pretrained_kwargs: Any,
) -> nn.Module:
    """Load a pruned model from a local folder or the Hub, dense with gates (default) or physically compacted.

    See the module docstring for the four folder kinds recognised. The model class is `model_class`, else the one the
    folder records (the compact spec's ``architecture`` or ``config.architectures[0]``), else
    `AutoModelForSequenceClassification`; `from_pretrained_kwargs` go to its ``from_pretrained`` (dense folders).
    Also calls `register_auto_classes`, so the Auto classes load compact folders afterwards.

    Raises:
        TicketNotFoundError: the repo or folder holds no ticket in any form.
        ValueError: the ticket does not fit the model, or a config / weights file is malformed (named).
        ConnectionError: the Hub could not be reached (nothing local is touched).

    Example:

    ```python
    >>> import tempfile, torch
    >>> from hf_lottery import LotteryTicket
    >>> model = tiny_bert(vocab_size=50)
    >>> ticket = LotteryTicket.full(model).copy(head_mask=torch.tensor([[1, 1, 0, 0], [1, 0, 0, 0]]))
    >>> folder = tempfile.mkdtemp()
    >>> model.save_pretrained(folder); _ = ticket.save_pretrained(folder)
    >>> load_pruned_model(folder).hf_lottery_ticket.head_mask.sum().item()
    3
    >>> small = load_pruned_model(folder, compact=True)
    >>> small.bert.encoder.layer[1].attention.self.num_attention_heads
    1
    >>> load_pruned_model("you/bert-sst2-lottery", compact=True)   # doctest: +SKIP
    ```
    """
    register_auto_classes()
    folder = _resolve(repo_id_or_path, from_pretrained_kwargs.pop("subfolder", None), revision=revision, token=token)
    if not (folder / "config.json").is_file() and (folder / TICKET_CONFIG_NAME).is_file():
        raise FileNotFoundError(
            f"{repo_id_or_path} holds a lottery ticket only (no config.json or weights): apply it (apply_ticket) to a "
            f"model fine-tuned from its base model {LotteryTicket.from_pretrained(folder).base_model}, or rewind it."
        )
    config_dict = read_config(folder)
    source = str(folder / "config.json")
    if SPEC_KEY in config_dict or config_dict.get("pruned_heads"):
        if from_pretrained_kwargs:
            raise TypeError(
                f"{sorted(from_pretrained_kwargs)} apply to dense folders only; {repo_id_or_path} holds a compacted "
                "model."
            )
        if SPEC_KEY in config_dict:
            model = load_compact_folder(folder, model_class)
        else:  # (d) a transformers-4 head-pruned checkpoint
            ticket = ticket_from_pruned_heads(config_dict)
            cls = model_class or _architecture(config_dict, source)
            model_type = config_dict.get("model_type", "bert")
            model = rebuild_compacted(config_dict, ticket, model_type, cls, _weight_files(folder), source)
        ticket = model.hf_lottery_ticket  # the spec's, unless the config records a matching one (with its metadata)
        if (entry := config_dict.get(CONFIG_TICKET_KEY)) is not None:
            try:
                recorded = LotteryTicket.from_config_entry(entry)
            except ValueError as err:  # e.g. a magnitude entry: its masks live in the dense weights' zeros
                logger.info("Using the compact spec's ticket; the recorded one cannot be rebuilt here: %s", err)
            else:
                ticket = recorded if recorded.masks_equal(ticket) else ticket
        if not compact:
            model = expand_compact_model(model, ticket, inplace=True)
    else:
        has_files, entry = (folder / TICKET_CONFIG_NAME).is_file(), config_dict.get(CONFIG_TICKET_KEY)
        if not has_files and entry is None:
            raise TicketNotFoundError(
                f"{repo_id_or_path} holds no hf-lottery ticket (no {TICKET_CONFIG_NAME} + {TICKET_MASKS_NAME}, no "
                f"`{CONFIG_TICKET_KEY}` entry in config.json, no `{SPEC_KEY}` or `pruned_heads`): it is not a pruned "
                "model. Load it with from_pretrained, or apply a ticket from another folder with apply_ticket."
            )
        cls = model_class or _architecture(config_dict, source)
        _weight_files(folder)  # see its checks
        model = cls.from_pretrained(folder, **from_pretrained_kwargs)
        ticket = LotteryTicket.from_pretrained(folder) if has_files else LotteryTicket.from_config_entry(entry, model)
        ticket.validate(model)
        if compact:
            model = compact_model(model, ticket, inplace=True)
    if not compact:
        model.hf_lottery_handle = apply_ticket(model, ticket)
    model.hf_lottery_ticket = ticket
    return model.eval()
