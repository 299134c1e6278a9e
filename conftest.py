"""Names every runnable docstring example of `hf_lottery` may use without building them itself."""

import pytest


def tiny_bert(**overrides):
    """A BertForSequenceClassification with random weights: 2 layers x 4 heads, hidden 32, MLP 37, vocabulary 99."""
    from transformers import BertConfig, BertForSequenceClassification

    config = dict(vocab_size=99, hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=37)
    return BertForSequenceClassification(BertConfig(**{**config, **overrides}))


def tiny_data():
    """Eight labelled rows of token ids, a collator for them, and a dev DataLoader of the same rows."""
    import torch

    data = [{"input_ids": [1, 5, 7, 2], "labels": i % 2} for i in range(8)]

    def collate(rows):
        return {key: torch.tensor([row[key] for row in rows]) for key in ("input_ids", "labels")}

    return data, collate, torch.utils.data.DataLoader(data, batch_size=4, collate_fn=collate)


@pytest.fixture(autouse=True)
def _doctest_names(doctest_namespace):
    doctest_namespace.update(tiny_bert=tiny_bert, tiny_data=tiny_data)
