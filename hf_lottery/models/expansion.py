"""A compacted model made dense again: `expand_compact_model`, the way a re-fine-tuned compacted model is saved.

Training a ticket compacted (`rewind(..., compact=True)`) is faster, but a compact folder needs hf-lottery to load.
`expand_compact_model` puts the trained weights back into the original architecture with every pruned slot (a head's
rows of Q/K/V and columns of ``attention.output.dense``, an MLP's weights and biases) zero: the ticket baked into the
weights, so a plain ``from_pretrained`` of the saved folder gives the compacted model's outputs (to float precision).
"""

from __future__ import annotations

import copy

import torch
from torch import nn
from transformers.utils import logging

from ..files import CONFIG_TICKET_KEY
from ..gates import applied_ticket
from ..structure import EncoderStructure, LayerModules
from ..tickets.ticket import LotteryTicket
from .compaction import SPEC_KEY, CompactModelMixin, ticket_from_spec


logger = logging.get_logger(__name__)


def _grow(linear: nn.Linear, rows: torch.Tensor | None, cols: torch.Tensor | None, out_f: int, in_f: int) -> None:
    """Replace `linear`'s parameters by zero ones of shape [out_f, in_f] holding the old values at rows x cols."""
    old = linear.weight.detach()
    weight = old.new_zeros(out_f, in_f)
    weight[slice(None) if rows is None else rows, slice(None) if cols is None else cols] = old
    linear.weight = nn.Parameter(weight)
    if linear.bias is not None:
        bias = linear.bias.detach()
        if rows is not None:
            bias = bias.new_zeros(out_f).index_copy_(0, rows, bias)
        linear.bias = nn.Parameter(bias.clone())
    linear.in_features, linear.out_features = in_f, out_f


@torch.no_grad()
def _expand_layer(layer: LayerModules, heads_kept: list[int], num_heads: int, head_size: int, inter: int) -> None:
    device = layer.query.weight.device
    hidden = layer.attention_output.out_features
    width = num_heads * head_size
    if layer.query.out_features != width:
        kept = torch.arange(width, device=device).view(num_heads, head_size)[heads_kept].flatten()  # kept heads' rows
        for linear in (layer.query, layer.key, layer.value):
            _grow(linear, kept, None, width, hidden)
        _grow(layer.attention_output, None, kept, hidden, width)
        layer.attention_self.num_attention_heads = num_heads
        layer.attention_self.all_head_size = width
    if layer.intermediate.out_features == 0:
        none = torch.zeros(0, dtype=torch.long, device=device)
        _grow(layer.intermediate, none, None, inter, hidden)
        bias = layer.mlp_output.bias
        if bias is not None and bool(bias.ne(0).any()):
            logger.warning(
                "Layer %d: the removed MLP's output bias is not zero (was it trained?); it is kept so the dense model "
                "gives the compacted model's outputs, but the ticket's MLP gate would zero it.",
                layer.index,
            )
        _grow(layer.mlp_output, None, none, hidden, inter)  # a new, trainable bias parameter
    elif layer.intermediate.out_features != inter:
        raise ValueError(
            f"Layer {layer.index}: an MLP of width {layer.intermediate.out_features} is neither whole ({inter}) "
            "nor removed (0); only whole MLPs are compacted."
        )


def expand_compact_model(
    compact_model: nn.Module, ticket: LotteryTicket | None = None, *, inplace: bool = False
) -> nn.Module:
    """The dense model of the original architecture holding `compact_model`'s weights, pruned slots zero.

    `compact_model` comes from `compact_model`, `rewind(..., compact=True)` or `load_pruned_model` of a compact folder
    (another model is a `ValueError`); ``inplace=True`` grows it instead of a copy. The ticket (`ticket`, which must
    keep the heads / MLPs the model kept, else `applied_ticket(compact_model)`, else the one the compaction spec
    records) is stored as ``model.hf_lottery_ticket`` and in ``model.config`` under `CONFIG_TICKET_KEY`.

    Example:

    ```python
    >>> import tempfile, torch
    >>> from transformers import AutoModelForSequenceClassification, BertForSequenceClassification
    >>> from hf_lottery import LotteryTicket, compact_model
    >>> from hf_lottery.models.expansion import expand_compact_model
    >>> model = tiny_bert().eval()
    >>> ticket = LotteryTicket(head_mask=torch.tensor([[1, 1, 0, 0], [0, 0, 0, 0]]), mlp_mask=torch.tensor([1, 0]))
    >>> small = compact_model(model, ticket)
    >>> dense = expand_compact_model(small)
    >>> dense.bert.encoder.layer[1].attention.self.query.weight.shape, type(dense).__name__
    (torch.Size([32, 32]), 'BertForSequenceClassification')
    >>> folder = tempfile.mkdtemp()
    >>> dense.save_pretrained(folder)
    >>> plain = AutoModelForSequenceClassification.from_pretrained(folder).eval()
    >>> ids = torch.tensor([[2, 7, 9, 4]])
    >>> bool(torch.allclose(plain(input_ids=ids).logits, small(input_ids=ids).logits, atol=1e-5))
    True

    ```
    """
    spec = getattr(getattr(compact_model, "config", None), SPEC_KEY, None)
    if not isinstance(spec, dict):
        raise ValueError(
            f"expand_compact_model needs a model made by compact_model / rewind(compact=True) / load_pruned_model of "
            f"a compact folder; the config of this {type(compact_model).__name__} has no `{SPEC_KEY}` entry."
        )
    recorded = ticket_from_spec(spec)
    ticket = ticket if ticket is not None else applied_ticket(compact_model)
    if ticket is None:
        ticket = recorded
    elif not recorded.masks_equal(ticket.copy(weight_masks={})):
        raise ValueError(
            "The ticket given to expand_compact_model keeps other heads / MLPs than the model's "
            f"`{SPEC_KEY}` records: heads kept {spec['heads_kept']}, MLPs kept {spec['mlps_kept']}."
        )
    model = compact_model if inplace else copy.deepcopy(compact_model)
    structure = EncoderStructure(model)
    num_heads = int(spec["num_attention_heads"])
    for layer, heads_kept in zip(structure.layers, spec["heads_kept"]):
        _expand_layer(layer, heads_kept, num_heads, structure.head_size, int(structure.config.intermediate_size))
    delattr(model.config, SPEC_KEY)
    model.config.num_attention_heads = num_heads
    model.__class__ = next(cls for cls in type(model).__mro__ if not issubclass(cls, CompactModelMixin))  # dense
    setattr(model.config, CONFIG_TICKET_KEY, ticket.to_config_entry(model))
    model.hf_lottery_ticket = ticket
    return model
