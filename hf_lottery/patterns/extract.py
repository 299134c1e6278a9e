"""Per-head attention maps of a BERT-style model for a few examples: raw softmax maps and norm-based maps.

Norm-based maps (Kobayashi et al., 2020) weight each attention edge by how much the attended token's transformed
value moves the output: ``‖α_ij · f_h(x_j)‖ = α_ij · ‖(x_j W_V^h + b_V^h) W_O^h‖``, with ``W_O^h`` the head's columns
of the attention output projection (the shared output bias is left out).

Head gates of an applied ticket act after the softmax, so raw maps are the same with and without a ticket
(norm-based maps of pruned heads are not zeroed either: use the ticket's mask to drop them).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator

import torch
from torch import nn

from ..evaluation import eval_mode, model_device, progress_bar
from ..structure import EncoderStructure, unwrap_model


@contextlib.contextmanager
def eager_attention(model: nn.Module) -> Iterator[None]:
    """Temporarily use eager attention (the only implementation in transformers that returns attention maps)."""
    model = unwrap_model(model)
    previous = getattr(model.config, "_attn_implementation", None)
    if previous != "eager":
        model.set_attn_implementation("eager")
    try:
        yield
    finally:
        if previous not in (None, "eager"):
            model.set_attn_implementation(previous)


def _value_norms(structure: EncoderStructure, values: dict[nn.Module, torch.Tensor]) -> torch.Tensor:
    """``[B, L, H, T]``: ‖v_j^h W_O^h‖ per layer, head and token."""
    norms = []
    for layer in structure.layers:
        value = values[layer.value]  # [B, T, H*D]
        heads, size = layer.num_heads, structure.head_size
        weight = layer.attention_output.weight.detach()  # [hidden, H*D]
        per_head = value.unflatten(-1, (heads, size))  # [B, T, H, D]
        w = weight.view(weight.shape[0], heads, size).permute(1, 2, 0)  # [H, D, hidden]
        transformed = torch.einsum("bthd,hdo->btho", per_head, w)
        norms.append(transformed.norm(dim=-1).permute(0, 2, 1))  # [B, H, T]
    return torch.stack(norms, dim=1)


@torch.no_grad()
def extract_attention_maps(
    model: nn.Module,
    dataloader: Iterable,
    *,
    num_examples: int | None = None,
    norm_based: bool = False,
    progress: bool = True,
) -> list[torch.Tensor]:
    """Attention maps ``[layers, heads, T, T]`` per example (T = its real tokens), raw or norm-based.

    Example:

    ```python
    >>> model = tiny_bert(vocab_size=50)
    >>> batch = {"input_ids": torch.tensor([[2, 7, 9, 3, 0]]), "attention_mask": torch.tensor([[1, 1, 1, 1, 0]])}
    >>> maps = extract_attention_maps(model, [batch], progress=False)
    >>> maps[0].shape   # layers, heads, real tokens, real tokens
    torch.Size([2, 4, 4, 4])

    ```
    """
    structure = EncoderStructure(model)
    device = model_device(model)
    results: list[torch.Tensor] = []
    values: dict[nn.Module, torch.Tensor] = {}  # each layer's value vectors, for norm-based maps
    handles = [
        layer.value.register_forward_hook(lambda module, args, output: values.update({module: output.detach()}))
        for layer in (structure.layers if norm_based else [])
    ]
    try:
        with eval_mode(model), eager_attention(model):
            for batch in progress_bar(dataloader, "attention maps", progress):
                inputs = {k: v.to(device) for k, v in batch.items() if k not in ("labels", "label", "label_ids")}
                outputs = model(**inputs, output_attentions=True)
                attentions = torch.stack(outputs.attentions, dim=1)  # [B, L, H, T, T]
                if norm_based:
                    attentions = attentions * _value_norms(structure, values).unsqueeze(-2)
                mask = inputs.get("attention_mask")
                for row in range(attentions.shape[0]):
                    maps = attentions[row]
                    if mask is not None:  # keep the real tokens, wherever the padding sits
                        keep = mask[row].bool()
                        maps = maps[:, :, keep][:, :, :, keep]
                    results.append(maps.float().cpu())
                    if num_examples is not None and len(results) >= num_examples:
                        return results
    finally:
        for handle in handles:
            handle.remove()
    return results
