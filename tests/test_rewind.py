import copy

import pytest
import torch
from transformers import BertModel

from hf_lottery import EncoderStructure, LotteryTicket, rewind

from .conftest import tiny_config
from .test_gates import structured_ticket


@pytest.fixture
def pretrained(tmp_path):
    torch.manual_seed(0)
    model = BertModel(tiny_config())
    model.save_pretrained(tmp_path / "pretrained")
    return model, str(tmp_path / "pretrained")


def test_rewind_applies_the_ticket_to_pretrained_weights_with_a_fresh_head(pretrained):
    base, path = pretrained
    ticket = structured_ticket(base).copy(base_model=path)
    model, handle = rewind(ticket, num_labels=3, seed=7)
    assert model.config.num_labels == 3
    baked = ticket.bake(copy.deepcopy(base))  # while applied, the ticket's zeros are in the weights
    for name, value in baked.state_dict().items():
        assert torch.equal(model.bert.state_dict()[name], value), name
    again, handle2 = rewind(ticket, num_labels=3, seed=7)
    assert torch.equal(again.classifier.weight, model.classifier.weight)  # seeded fresh head
    assert torch.equal(handle.head_gates, ticket.head_mask.float())


def test_rewind_refuses_another_base_model(pretrained, tmp_path):
    base, path = pretrained
    ticket = structured_ticket(base).copy(base_model="someone/else")
    with pytest.raises(ValueError, match="found on 'someone/else'"):
        rewind(ticket, path, num_labels=2)
    model, _ = rewind(ticket, path, num_labels=2, strict_base_model=False)
    assert EncoderStructure(model).num_layers == 3
    with pytest.raises(ValueError, match="records no `base_model`"):
        rewind(LotteryTicket.full(base).copy(base_model=None))
