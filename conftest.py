"""Names every runnable docstring example of `hf_lottery` may use without building them itself."""

import pytest


def tiny_bert(**overrides):
    """A BertForSequenceClassification with random weights: 2 layers x 4 heads, hidden 32, MLP 37, vocabulary 99."""
    from transformers import BertConfig, BertForSequenceClassification

    config = dict(vocab_size=99, hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=37)
    return BertForSequenceClassification(BertConfig(**{**config, **overrides}))


@pytest.fixture(autouse=True)
def _doctest_names(doctest_namespace):
    doctest_namespace["tiny_bert"] = tiny_bert
