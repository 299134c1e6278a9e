import pytest
import torch
from transformers import (
    BertModel,
    DistilBertConfig,
    DistilBertForSequenceClassification,
    ElectraConfig,
    ElectraForSequenceClassification,
    RobertaConfig,
    RobertaForSequenceClassification,
)

from hf_lottery import EncoderStructure
from hf_lottery.structure import prunable_parameter_counts

from .conftest import tiny_bert, tiny_config


SMALL = dict(vocab_size=99, hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=37)


def test_bert_for_sequence_classification():
    structure = EncoderStructure(tiny_bert())
    assert (structure.num_layers, structure.num_heads, structure.head_size) == (3, 4, 8)
    assert structure.hidden_size == 32 and structure.intermediate_size == 37
    assert structure.encoder_prefix == "bert.encoder"
    assert not structure.is_compacted
    assert structure.layers[1].attention_output is structure.model.bert.encoder.layer[1].attention.output.dense
    assert structure.layers[2].mlp_output is structure.model.bert.encoder.layer[2].output.dense


def test_bare_bert_model_uses_same_parameter_names():
    cls_model = tiny_bert()
    bare = BertModel(tiny_config())
    a = EncoderStructure(cls_model).magnitude_parameter_names()
    b = EncoderStructure(bare).magnitude_parameter_names()
    assert a == b
    assert EncoderStructure(bare).encoder_prefix == "encoder"


@pytest.mark.parametrize(
    ("config_cls", "model_cls", "prefix"),
    [
        (RobertaConfig, RobertaForSequenceClassification, "roberta"),
        (ElectraConfig, ElectraForSequenceClassification, "electra"),
    ],
)
def test_same_layer_structure_families(config_cls, model_cls, prefix):
    model = model_cls(config_cls(**SMALL))
    structure = EncoderStructure(model)
    assert structure.encoder_prefix == f"{prefix}.encoder"
    assert (structure.num_layers, structure.num_heads, structure.head_size) == (2, 4, 8)


def test_ddp_style_wrapper_is_unwrapped():
    model = tiny_bert()
    wrapped = torch.nn.DataParallel(model)
    assert EncoderStructure(wrapped).model is model


def test_unsupported_model_names_what_is_supported():
    model = DistilBertForSequenceClassification(
        DistilBertConfig(vocab_size=99, dim=32, n_layers=2, n_heads=4, hidden_dim=37)
    )
    with pytest.raises(TypeError, match="BertModel, RobertaModel"):
        EncoderStructure(model)
    with pytest.raises(TypeError, match="BertModel"):
        EncoderStructure(torch.nn.Linear(3, 3))
    with pytest.raises(TypeError, match="torch.nn.Module"):
        EncoderStructure("bert-base-uncased")


def test_magnitude_weight_set_is_the_papers():
    structure = EncoderStructure(tiny_bert())
    names = structure.magnitude_parameter_names()
    assert len(names) == 3 * 11
    assert "layer.0.output.dense.weight" in names and "layer.0.output.dense.bias" not in names
    assert not any("LayerNorm" in n or "embeddings" in n for n in names)
    counts = prunable_parameter_counts(structure.dims())
    assert counts["total"] == sum(p.numel() for p in structure.magnitude_parameters().values())
