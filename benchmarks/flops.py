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


# Element-wise work per token and hidden unit of the embeddings: three lookups summed (2 adds) and a LayerNorm (~8).
EMBEDDING_FLOPS_PER_ELEMENT = 10


def model_flops(model: nn.Module, seq_len: int, batch_size: int = 1) -> int:
    """FLOPs of one forward of the whole classifier: the encoder (`encoder_flops`), embeddings, pooler and classifier.

    The embeddings cost element-wise work per token (`EMBEDDING_FLOPS_PER_ELEMENT` per hidden unit); the pooler and
    the classifier are matrix products on the first token of each sequence. These parts do not shrink with pruning,
    so counting them makes the predicted speedup of a compacted model honest.
    """
    structure = EncoderStructure(model)
    hidden = structure.hidden_size
    total = encoder_flops(model, seq_len, batch_size) + EMBEDDING_FLOPS_PER_ELEMENT * batch_size * seq_len * hidden
    base = getattr(structure.model, "base_model", structure.model)
    pooler = getattr(getattr(base, "pooler", None), "dense", None)
    if isinstance(pooler, nn.Linear):
        total += 2 * batch_size * pooler.weight.numel()
    for module in structure.model.modules():
        if module is not pooler and isinstance(module, nn.Linear) and not _inside(module, base):
            total += 2 * batch_size * module.weight.numel()  # classifier head(s)
    return total


def training_flops(model: nn.Module, seq_len: int, batch_size: int = 1) -> int:
    """Forward + backward of the whole model: the backward costs about twice the forward (input and weight grads)."""
    return 3 * model_flops(model, seq_len, batch_size)


def _inside(module: nn.Module, parent: nn.Module) -> bool:
    return any(m is module for m in parent.modules())
