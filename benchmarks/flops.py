"""A FLOP model of a (possibly compacted) BERT encoder forward, read from the modules' real shapes."""

from __future__ import annotations

from torch import nn

from hf_lottery import EncoderStructure


def encoder_flops(model: nn.Module, seq_len: int, batch_size: int = 1) -> int:
    """Multiply-accumulates ×2 of the encoder layers for one forward, from each layer's actual weight tensors.

    Per layer: Q/K/V and attention-output projections, the attention scores and the weighted sum of values (both
    ``heads × T × T × head_size``), and the two MLP projections. Embeddings, LayerNorms, softmax, pooler and
    classifier are left out (they do not change with pruning and are small).
    """
    structure = EncoderStructure(model)
    total = 0
    for layer in structure.layers:
        tokens = batch_size * seq_len
        qkv = sum(m.weight.numel() for m in (layer.query, layer.key, layer.value))
        heads_width = layer.value.weight.shape[0]  # kept heads × head size
        attention = 2 * batch_size * seq_len * seq_len * heads_width
        out = layer.attention_output.weight.numel()
        mlp = layer.intermediate.weight.numel() + layer.mlp_output.weight.numel()
        total += 2 * (tokens * (qkv + out + mlp) + attention)
    return total
