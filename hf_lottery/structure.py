"""Where the heads, MLPs and prunable weights of a BERT-style encoder live.

Every module-name pattern of the supported architecture is in this one file. A model is supported when its base
model (``model.base_model``) has ``encoder.layer[i]`` with ``attention.self.{query,key,value}``,
``attention.output.dense``, ``intermediate.dense`` and ``output.dense``: BERT, RoBERTa, XLM-RoBERTa, CamemBERT and
ELECTRA encoders, with any task head on top.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from accelerate.utils import extract_model_from_parallel
from torch import nn


SUPPORTED_ARCHITECTURES = (
    "BertModel, RobertaModel, XLMRobertaModel, CamembertModel, ElectraModel, and any model whose `base_model` is "
    "one of these (e.g. BertForSequenceClassification)"
)

# Module paths inside one encoder layer.
QUERY, KEY, VALUE = "attention.self.query", "attention.self.key", "attention.self.value"
ATTENTION_OUTPUT = "attention.output.dense"
INTERMEDIATE = "intermediate.dense"
MLP_OUTPUT = "output.dense"

# The paper's magnitude-pruning weight set, per layer: (module path, parameter) pairs. The MLP output bias is
# deliberately absent, as are embeddings, LayerNorms, the pooler and the classifier.
MAGNITUDE_WEIGHT_SET: tuple[tuple[str, str], ...] = (
    *((path, kind) for path in (QUERY, KEY, VALUE, ATTENTION_OUTPUT, INTERMEDIATE) for kind in ("weight", "bias")),
    (MLP_OUTPUT, "weight"),
)
DIM_KEYS = ("num_layers", "num_heads", "head_size", "hidden_size", "intermediate_size")


@dataclass(frozen=True)
class LayerModules:
    """The linear maps of one encoder layer that tickets act on (see `EncoderStructure.layers`).

    Example:

    ```python
    >>> model = tiny_bert()
    >>> layer = EncoderStructure(model).layers[1]
    >>> layer.index, layer.num_heads, layer.mlp_output is model.bert.encoder.layer[1].output.dense
    (1, 4, True)

    ```
    """

    index: int
    attention_self: nn.Module
    query: nn.Linear
    key: nn.Linear
    value: nn.Linear
    attention_output: nn.Linear
    intermediate: nn.Linear
    mlp_output: nn.Linear

    @property
    def num_heads(self) -> int:
        return int(self.attention_self.num_attention_heads)


def unwrap_model(model: nn.Module) -> nn.Module:
    """The module inside `DistributedDataParallel` / `DataParallel` / FSDP / DeepSpeed / `torch.compile` wrappers
    (accelerate's `extract_model_from_parallel`).

    Example:

    ```python
    >>> model = torch.nn.Linear(2, 2)
    >>> unwrap_model(torch.nn.DataParallel(model)) is model, unwrap_model(torch.compile(model)) is model
    (True, True)

    ```
    """
    return extract_model_from_parallel(model, keep_torch_compile=False)


def check_materialized(model: nn.Module) -> nn.Module:
    """`model` unwrapped, or a `ValueError` naming a weight on the meta device or reparametrized by torch's prune."""
    model = unwrap_model(model)
    for name, param in model.named_parameters():
        module, _, tensor = name[:-5].rpartition(".")
        pruned = name.endswith("_orig") and hasattr(model.get_submodule(module), f"{tensor}_mask")
        if param.is_meta or pruned:
            how = f"call torch.nn.utils.prune.remove(model.{module}, {tensor!r}) for each pruned module"
            how = how if pruned else "load the real weights (from_pretrained without a meta device_map)"
            what = "reparametrized by torch.nn.utils.prune" if pruned else "on the meta device (no data)"
            raise ValueError(f"`{name}` is {what}; hf-lottery needs plain weights: first {how}.")
    return model


class EncoderStructure:
    """Adapter that finds the encoder layers, heads, head size and MLPs of a supported `model` (see the module
    docstring; wrappers are unwrapped); a `TypeError` when it does not have the BERT encoder layer structure.

    Example:

    ```python
    >>> model = tiny_bert()
    >>> structure = EncoderStructure(model)
    >>> structure.num_layers, structure.num_heads, structure.head_size, structure.encoder_prefix
    (2, 4, 8, 'bert.encoder')

    ```
    """

    def __init__(self, model: nn.Module):
        if not isinstance(model, nn.Module):
            raise TypeError(f"Expected a torch.nn.Module ({SUPPORTED_ARCHITECTURES}); got {type(model).__name__}.")
        self.model = check_materialized(model)
        base = getattr(self.model, "base_model", self.model)
        encoder = getattr(base, "encoder", None)
        layers = getattr(encoder, "layer", None)
        if not isinstance(layers, nn.ModuleList) or len(layers) == 0:
            raise TypeError(
                f"hf-lottery supports {SUPPORTED_ARCHITECTURES}; {type(self.model).__name__} has no "
                "`base_model.encoder.layer` list of BERT layers."
            )
        self.encoder: nn.Module = encoder
        self.layers: list[LayerModules] = [self._layer_modules(i, layer) for i, layer in enumerate(layers)]
        self.config = getattr(self.model, "config", None) or getattr(base, "config", None)
        if getattr(self.config, "problem_type", None) == "multi_label_classification":
            raise ValueError(
                "The model has problem_type='multi_label_classification'; hf-lottery's searches and metrics score "
                "single-label classification and regression: load it with problem_type='single_label_classification'."
            )
        first: dict[int, str] = {}
        for name, param in encoder.named_parameters(remove_duplicate=False):
            if first.setdefault(id(param), name) != name:
                raise ValueError(
                    f"The encoder's `{first[id(param)]}` and `{name}` are one parameter (layers share a module): a "
                    "ticket pruning one would prune both. Give every layer its own modules (`copy.deepcopy`)."
                )
        self.encoder_prefix = next(name for name, module in self.model.named_modules() if module is encoder)

    def _layer_modules(self, index: int, layer: nn.Module) -> LayerModules:
        found = {}
        for key, path in (
            ("attention_self", "attention.self"),
            ("query", QUERY),
            ("key", KEY),
            ("value", VALUE),
            ("attention_output", ATTENTION_OUTPUT),
            ("intermediate", INTERMEDIATE),
            ("mlp_output", MLP_OUTPUT),
        ):
            try:
                module = layer.get_submodule(path)
            except AttributeError:
                module = None
            if module is None or (key != "attention_self" and not isinstance(module, nn.Linear)):
                raise TypeError(
                    f"hf-lottery supports {SUPPORTED_ARCHITECTURES}; layer {index} of {type(self.model).__name__} "
                    f"has no linear `{path}`."
                )
            found[key] = module
        if not hasattr(found["attention_self"], "num_attention_heads"):
            raise TypeError(f"Layer {index}: `attention.self` has no `num_attention_heads`; not a BERT-style layer.")
        return LayerModules(index=index, **found)

    # ------------------------------------------------------------------ dimensions
    @property
    def num_layers(self) -> int:
        return len(self.layers)

    @property
    def num_heads(self) -> int:
        """Heads per layer of the dense architecture (the config's `num_attention_heads`)."""
        return int(getattr(self.config, "num_attention_heads", None) or self.layers[0].num_heads)

    @property
    def heads_per_layer(self) -> list[int]:
        """Heads present in each layer (differs from `num_heads` only in a compacted model)."""
        return [layer.num_heads for layer in self.layers]

    @property
    def head_size(self) -> int:
        return int(self.layers[0].attention_self.attention_head_size)

    @property
    def hidden_size(self) -> int:
        return int(self.layers[0].attention_output.out_features)

    @property
    def intermediate_size(self) -> int:
        return int(getattr(self.config, "intermediate_size", None) or self.layers[0].intermediate.out_features)

    @property
    def is_compacted(self) -> bool:
        """True when heads or MLP neurons were physically removed (see `compact_model`)."""
        return any(n != self.num_heads for n in self.heads_per_layer) or any(
            layer.intermediate.out_features != self.intermediate_size for layer in self.layers
        )

    def dims(self) -> dict[str, int]:
        """The dense dimensions a ticket for this model records.

        Example:

        ```python
        >>> model = tiny_bert()
        >>> EncoderStructure(model).dims()
        {'num_layers': 2, 'num_heads': 4, 'head_size': 8, 'hidden_size': 32, 'intermediate_size': 37}

        ```
        """
        return {key: getattr(self, key) for key in DIM_KEYS}

    # ------------------------------------------------------------------ parameters
    def named_encoder_parameters(self) -> dict[str, nn.Parameter]:
        """Encoder parameters keyed by their name relative to the encoder (``layer.0.attention.self.query.weight``)."""
        return dict(self.encoder.named_parameters())

    def magnitude_parameter_names(self) -> list[str]:
        """Names (relative to the encoder) of the paper's magnitude-pruning weight set, in layer order.

        Example:

        ```python
        >>> model = tiny_bert()
        >>> names = EncoderStructure(model).magnitude_parameter_names()
        >>> len(names), names[0], names[-1]
        (22, 'layer.0.attention.self.query.weight', 'layer.1.output.dense.weight')

        ```
        """
        return [f"layer.{i}.{path}.{param}" for i in range(self.num_layers) for path, param in MAGNITUDE_WEIGHT_SET]

    def magnitude_parameters(self) -> dict[str, nn.Parameter]:
        params = self.named_encoder_parameters()
        return {name: params[name] for name in self.magnitude_parameter_names()}

    def device(self) -> torch.device:
        return self.layers[0].attention_output.weight.device


def prunable_parameter_counts(dims: dict[str, int]) -> dict[str, int]:
    """Parameters a head and an MLP own inside the magnitude weight set, and the set's total size.

    A head owns its rows of Q/K/V (weights and biases) and its columns of the attention output projection; an MLP
    owns the intermediate projection (weight and bias) and the output projection's weight.

    Example:

    ```python
    >>> prunable_parameter_counts(EncoderStructure(tiny_bert()).dims())
    {'per_head': 1048, 'per_mlp': 2405, 'total': 13258}

    ```
    """
    hidden, head, inter = dims["hidden_size"], dims["head_size"], dims["intermediate_size"]
    per_head = 3 * (hidden * head + head) + hidden * head
    per_mlp = hidden * inter + inter + inter * hidden
    per_layer = dims["num_heads"] * per_head + hidden + per_mlp  # + the attention output bias, which no head owns
    return {"per_head": per_head, "per_mlp": per_mlp, "total": per_layer * dims["num_layers"]}
