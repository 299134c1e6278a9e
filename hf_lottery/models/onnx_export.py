"""ONNX export of pruned models: `export_onnx(model_or_folder, output_dir)` writes ``output_dir/model.onnx``.

* A dense model with a ticket applied is exported from a copy with the ticket baked in as zeros (exact for 0/1
  gates), so the graph holds no hooks and the user's model is not touched; ``compact=True`` compacts the copy instead.
* A compacted model (`compact_model`, `rewind(compact=True)`, a compact folder) exports as it is, compacted.
* A folder or Hub id is loaded by `load_pruned_model` (without a ticket: ``AutoModelForSequenceClassification``); its
  config, ticket and tokenizer files are copied beside ``model.onnx`` for ONNX runtimes (e.g. optimum's).

The graph takes ``input_ids``, ``attention_mask`` (and ``token_type_ids`` where the model has more than one token
type, as BERT does) with dynamic batch and sequence axes, and returns ``logits``. It is written with the TorchScript
exporter (``dynamo=False``), which handles the per-layer head counts of compacted models. Needs ``pip install
hf-lottery[onnx]`` (onnx, onnxscript, onnxruntime)."""

from __future__ import annotations

import copy
import importlib.util
import inspect
import os
import tempfile
import warnings
from pathlib import Path

import torch
from torch import nn
from transformers import AutoModelForSequenceClassification
from transformers.utils import logging

from ..atomic import atomic_path, write_bytes
from ..downloads import TicketNotFoundError, snapshot
from ..files import COMPACT_WEIGHTS_NAME
from ..gates import active_handles, applied_ticket, copy_without_hooks
from ..provenance import is_hub_id
from ..structure import EncoderStructure, check_materialized
from ..tickets.ticket import LotteryTicket
from .compaction import SPEC_KEY, compact_model, read_config
from .loading import MODEL_FILES, load_pruned_model


logger = logging.get_logger(__name__)
ONNX_MODEL_NAME = "model.onnx"
# config, ticket and tokenizer files copied beside model.onnx when a folder is exported (not the torch weights)
SIDE_FILES = [name for name in MODEL_FILES if name not in ("model.safetensors", COMPACT_WEIGHTS_NAME)]
SIDE_FILES += ["generation_config.json", "added_tokens.json"]


class _FirstOutput(nn.Module):
    """Named tensor inputs in, the model's first output (the logits) out: what the ONNX graph computes."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, token_type_ids=None) -> torch.Tensor:
        types = {} if token_type_ids is None else {"token_type_ids": token_type_ids}
        return self.model(input_ids=input_ids, attention_mask=attention_mask, **types, return_dict=True).to_tuple()[0]


def uses_token_type_ids(model: nn.Module) -> bool:
    """True when the model takes ``token_type_ids`` and has more than one token type (BERT, not RoBERTa)."""
    takes = "token_type_ids" in inspect.signature(model.forward).parameters
    return takes and int(getattr(getattr(model, "config", None), "type_vocab_size", 0) or 0) > 1


def _ready_for_export(model: nn.Module, compact: bool) -> nn.Module:
    """An eval-mode copy of `model` with its applied ticket baked in (or compacted), and no ticket hooks."""
    model = check_materialized(model)
    handles = active_handles(model)
    if any(not bool(((g == 0) | (g == 1)).all()) for h in handles for g in (h.head_gates, h.mlp_gates)):
        if compact:
            raise ValueError("compact=True needs 0/1 gates; the applied ticket has fractional head / MLP gates.")
        logger.info("Exporting fractional gates as traced hooks (they cannot be baked into the weights).")
        return copy.deepcopy(model).eval()
    ready = copy_without_hooks(model)
    ticket = None
    if handles:  # weight masks already hold zeros in the weights; the gates are written as zeros here
        head_mask = torch.stack([h.head_gates.detach().cpu() != 0 for h in handles]).all(0)
        mlp_mask = torch.stack([h.mlp_gates.detach().cpu() != 0 for h in handles]).all(0)
        ticket = LotteryTicket(head_mask=head_mask, mlp_mask=mlp_mask, kind="custom")
        ticket.bake(ready)
    if compact and not EncoderStructure(ready).is_compacted:
        ticket = ticket or applied_ticket(model)
        if ticket is None:
            raise ValueError(
                "compact=True needs a ticket: apply one to the model (apply_ticket) or load it with load_pruned_model."
            )
        ready = compact_model(ready, ticket.copy(weight_masks={}), inplace=True)
    return ready.eval()


def _dummy_inputs(model: nn.Module) -> dict[str, torch.Tensor]:
    device = next(model.parameters()).device
    vocab = int(getattr(model.config, "vocab_size", 100) or 100)
    input_ids = torch.randint(1, max(2, vocab), (2, 8), generator=torch.Generator().manual_seed(0)).to(device)
    attention_mask = torch.ones_like(input_ids)
    attention_mask[1, -3:] = 0  # padding, so the traced graph keeps the masking branch
    types = {"token_type_ids": torch.zeros_like(input_ids)} if uses_token_type_ids(model) else {}
    return {"input_ids": input_ids, "attention_mask": attention_mask} | types


def export_onnx(
    model_or_folder: nn.Module | str | os.PathLike,
    output_dir: str | os.PathLike,
    *,
    opset: int = 17,
    compact: bool = False,
    tokenizer: object | None = None,
    verify: bool | None = None,
) -> Path:
    """Export a model, model folder or Hub id to ``output_dir/model.onnx`` (see the module docstring); return its path.

    Args:
        output_dir: created if needed; ``model.onnx`` is written atomically.
        opset: the ONNX opset, 10 (BERT's dynamic slices) up to torch's newest (17 is today's runtimes' default).
        compact: remove the ticket's pruned heads / MLPs first (a smaller, faster graph with the same outputs).
        tokenizer: saved beside ``model.onnx`` when a model is given.
        verify: run the graph with onnxruntime on the export inputs (as optimum's exporter validates), log the largest
            logit difference to torch and raise `ValueError` above 1e-4; by default when onnxruntime is installed.

    Raises:
        FileNotFoundError: neither a model folder nor a Hub repo id.
        ValueError: ``compact=True`` without a ticket, or a `verify` mismatch.
        ImportError: ``onnx`` is not installed (``pip install hf-lottery[onnx]``).

    Example:

    ```python
    >>> import tempfile, torch
    >>> from hf_lottery import LotteryTicket, apply_ticket, export_onnx
    >>> model = tiny_bert().eval()
    >>> handle = apply_ticket(model, LotteryTicket(head_mask=torch.tensor([[1, 1, 0, 0], [1, 0, 0, 0]]),
    ...                                            mlp_mask=torch.tensor([1, 0])))
    >>> export_onnx(model, tempfile.mkdtemp(), compact=True, verify=True).name
    'model.onnx'

    ```
    """
    newest = getattr(getattr(torch.onnx, "_constants", None), "ONNX_MAX_OPSET", 20)
    if isinstance(opset, bool) or not isinstance(opset, int) or not 10 <= opset <= newest:
        raise ValueError(f"`opset` {opset!r} cannot be exported: pass one of 10 to {newest} (torch's range), e.g. 17.")
    output_dir = Path(output_dir)
    folder = None
    if isinstance(model_or_folder, (str, os.PathLike)):
        folder = Path(model_or_folder)
        if not folder.is_dir() and is_hub_id(os.fspath(model_or_folder)):  # the files load_pruned_model fetches
            folder = snapshot(os.fspath(model_or_folder), allow_patterns=MODEL_FILES, what="a model to export")
        if not folder.is_dir():
            raise FileNotFoundError(f"{folder} is not a local model folder, nor a Hub repo id ('user/name').")
        config = read_config(folder)
        compact = compact or SPEC_KEY in config or bool(config.get("pruned_heads"))  # stored compacted: stays so
        try:
            model = load_pruned_model(folder, compact=compact)
        except TicketNotFoundError:
            if compact:
                raise ValueError(f"{folder} holds no hf-lottery ticket: compact=True has nothing to remove.") from None
            model = AutoModelForSequenceClassification.from_pretrained(folder)
    elif isinstance(model_or_folder, nn.Module):
        model = model_or_folder
    else:
        raise TypeError(
            f"model_or_folder must be a torch model or a folder path; got {type(model_or_folder).__name__}."
        )
    ready = _ready_for_export(model, compact)
    inputs = _dummy_inputs(ready)
    wrapper = _FirstOutput(ready).eval()
    axes = {name: {0: "batch", 1: "sequence"} for name in inputs} | {"logits": {0: "batch"}}
    output_dir.mkdir(parents=True, exist_ok=True)
    target = output_dir / ONNX_MODEL_NAME
    try:
        with atomic_path(target) as tmp, warnings.catch_warnings(), torch.no_grad():
            warnings.filterwarnings("ignore", category=torch.jit.TracerWarning)
            warnings.filterwarnings("ignore", message=".*legacy TorchScript-based ONNX export.*")
            warnings.filterwarnings("ignore", message=".*aten::index operator of advanced indexing.*")  # no negatives
            torch.onnx.export(wrapper, tuple(inputs.values()), str(tmp), input_names=list(inputs), dynamo=False,
                              output_names=["logits"], dynamic_axes=axes, opset_version=opset)  # fmt: skip
    except ModuleNotFoundError as err:
        raise ImportError(f"ONNX export needs {err.name}: pip install 'hf-lottery[onnx]'.") from err
    if verify or (verify is None and importlib.util.find_spec("onnxruntime") is not None):
        import onnxruntime

        session = onnxruntime.InferenceSession(str(target), providers=["CPUExecutionProvider"])
        got = session.run(None, {n: t.cpu().numpy() for n, t in inputs.items()})[0]
        with torch.no_grad():
            expected = wrapper(**inputs).float().cpu().numpy()
        error = float(abs(got - expected).max())
        if error > 1e-4:
            raise ValueError(f"{target}: onnxruntime's logits differ from torch's by {error:.2e} (more than 1e-4).")
        logger.info("Verified with onnxruntime: largest logit difference to torch %.1e (tolerance 1e-4).", error)
    with tempfile.TemporaryDirectory() as staging:
        if folder is None:
            ready.config.save_pretrained(staging)
            if tokenizer is not None:
                tokenizer.save_pretrained(staging)
        source = folder or Path(staging)
        for path in (source / name for name in (SIDE_FILES if folder else os.listdir(staging))):
            if path.is_file() and source.resolve() != output_dir.resolve():
                write_bytes(output_dir / path.name, path.read_bytes())  # atomic: never through a symlink out
    logger.info("Exported %s to %s (inputs %s).", type(ready).__name__, target, ", ".join(inputs))
    return target
