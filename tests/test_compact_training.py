"""Compacted re-fine-tuning: `rewind(compact=True)` trains like the gated model, and `expand_compact_model` saves it.

With dropout off and SGD, a compacted model and the gated dense model trained on the same batches give the same
logits to float precision. AdamW divides each update by the root of the second moment, which turns float noise in
near-zero gradients into updates of size ~lr (update ≈ lr·sign(g)), so AdamW runs are only checked to stay close.
"""

import copy

import pytest
import torch
from transformers import AutoModelForSequenceClassification, BertModel

from hf_lottery import EncoderStructure, LotteryTicket, compact_model, rewind
from hf_lottery.files import CONFIG_TICKET_KEY
from hf_lottery.models.expansion import expand_compact_model

from .conftest import tiny_batch, tiny_config
from .test_gates import magnitude_ticket


@pytest.fixture
def pretrained(tmp_path):
    torch.manual_seed(0)
    model = BertModel(tiny_config(hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0))
    model.save_pretrained(tmp_path / "pretrained")
    return model, str(tmp_path / "pretrained")


def ticket_for(model: torch.nn.Module, path: str) -> LotteryTicket:
    """A different head count in every layer (4, 2, 0 of 4) and the last MLP removed."""
    head_mask = torch.tensor([[1, 1, 1, 1], [0, 1, 0, 1], [0, 0, 0, 0]], dtype=torch.bool)
    mlp_mask = torch.tensor([True, True, False])
    return LotteryTicket.full(model, kind="good").copy(head_mask=head_mask, mlp_mask=mlp_mask, base_model=path)


def batches(n: int = 6):
    return [tiny_batch(batch_size=4, seq_len=9, num_labels=3, seed=seed) for seed in range(n)]


def train(model, optimizer, data, clip: float | None = 1.0):
    model.train()
    for batch in data:
        model(**batch).loss.backward()
        if clip is not None:
            torch.nn.utils.clip_grad_norm_([p for p in model.parameters() if p.requires_grad], clip)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
    model.eval()


@torch.no_grad()
def zero_pruned_slots(model, ticket):
    """The ticket baked, plus the rows of Q/K/V and the intermediate projection that pruned parts no longer use."""
    ticket.bake(model)
    structure = EncoderStructure(model)
    size = structure.head_size
    for layer in structure.layers:
        for head in torch.nonzero(~ticket.head_mask[layer.index]).flatten().tolist():
            for linear in (layer.query, layer.key, layer.value):
                linear.weight[head * size : (head + 1) * size] = 0
                linear.bias[head * size : (head + 1) * size] = 0
        if not ticket.mlp_mask[layer.index]:
            layer.intermediate.weight.zero_()
            layer.intermediate.bias.zero_()
    return model


def logits(model, batch):
    with torch.no_grad():
        return model(**{k: v for k, v in batch.items() if k != "labels"}).logits


def both(pretrained, seed=13):
    base, path = pretrained
    ticket = ticket_for(base, path)
    gated, handle = rewind(ticket, num_labels=3, seed=seed)
    small, none = rewind(ticket, num_labels=3, seed=seed, compact=True)
    return ticket, gated, handle, small, none


def test_compact_rewind_has_the_gated_classifier_and_logits(pretrained):
    ticket, gated, handle, small, none = both(pretrained)
    assert none is None and handle is not None
    assert small.hf_lottery_ticket is ticket
    assert torch.equal(small.classifier.weight, gated.classifier.weight)  # bit for bit: same seed, same draws
    assert torch.equal(small.classifier.bias, gated.classifier.bias)
    assert EncoderStructure(small).heads_per_layer == [4, 2, 0]
    assert [layer.intermediate.out_features for layer in EncoderStructure(small).layers] == [37, 37, 0]
    # the removed MLP's output bias stays zero: frozen, as the MLP gate keeps that output at zero
    bias = EncoderStructure(small).layers[2].mlp_output.bias
    assert not bias.requires_grad and torch.equal(bias, torch.zeros_like(bias))
    batch = tiny_batch(num_labels=3)
    torch.testing.assert_close(logits(small, batch), logits(gated, batch), rtol=0, atol=1e-5)
    # and the classifier is what a compact=False rewind with another seed does not give
    other, _ = rewind(ticket, num_labels=3, seed=14, compact=True)
    assert not torch.equal(other.classifier.weight, small.classifier.weight)


def test_compact_and_gated_sgd_training_give_the_same_logits(pretrained):
    ticket, gated, handle, small, _ = both(pretrained)
    data, probe = batches(), tiny_batch(batch_size=5, seq_len=7, num_labels=3, seed=99)
    before = logits(gated, probe)
    params = lambda m: [p for p in m.parameters() if p.requires_grad]  # noqa: E731
    train(gated, torch.optim.SGD(params(gated), lr=0.5), data)
    train(small, torch.optim.SGD(params(small), lr=0.5), data)
    after_gated, after_small = logits(gated, probe), logits(small, probe)
    assert (after_gated - before).abs().max() > 0.05  # training moved the logits: the comparison means something
    torch.testing.assert_close(after_small, after_gated, rtol=0, atol=1e-5)
    # the trained compacted weights are the gated model's kept slices, everything else included (embeddings, ...)
    dense = expand_compact_model(small)
    handle.remove(restore_weights=False)
    reference = zero_pruned_slots(copy.deepcopy(gated), ticket).state_dict()
    assert dense.state_dict().keys() == reference.keys()
    for name, value in dense.state_dict().items():
        torch.testing.assert_close(value, reference[name], rtol=0, atol=1e-5, msg=name)


def test_compact_and_gated_adamw_training_stay_close(pretrained):
    ticket, gated, handle, small, _ = both(pretrained)
    data, probe = batches(), tiny_batch(batch_size=5, seq_len=7, num_labels=3, seed=99)
    before = logits(gated, probe)
    params = lambda m: [p for p in m.parameters() if p.requires_grad]  # noqa: E731
    train(gated, torch.optim.AdamW(params(gated), lr=1e-3, weight_decay=0.0), data)
    train(small, torch.optim.AdamW(params(small), lr=1e-3, weight_decay=0.0), data)
    after_gated, after_small = logits(gated, probe), logits(small, probe)
    moved = float((after_gated - before).abs().max())
    gap = float((after_small - after_gated).abs().max())
    assert moved > 0.05
    # AdamW amplifies float noise in near-zero gradients (update ≈ lr·sign): close, not equal (1e-4 here)
    assert gap < 1e-4, (gap, moved)


def test_expanded_model_gives_the_compact_outputs_and_reloads_with_plain_from_pretrained(pretrained, tmp_path):
    ticket, gated, _, small, _ = both(pretrained)
    train(small, torch.optim.SGD([p for p in small.parameters() if p.requires_grad], lr=0.5), batches(3))
    dense = expand_compact_model(small)
    assert type(dense).__name__ == "BertForSequenceClassification"
    assert EncoderStructure(dense).heads_per_layer == [4, 4, 4] and not EncoderStructure(dense).is_compacted
    assert dense.hf_lottery_ticket is ticket
    # pruned slots are zero: head 0 of layer 1 (Q rows, attention-output columns), the whole MLP of layer 2
    layer1, layer2 = EncoderStructure(dense).layers[1], EncoderStructure(dense).layers[2]
    size = EncoderStructure(dense).head_size
    assert not layer1.query.weight[:size].any() and not layer1.attention_output.weight[:, :size].any()
    assert layer1.query.weight[size : 2 * size].any()
    assert not layer2.intermediate.weight.any() and not layer2.mlp_output.weight.any()
    assert not layer2.mlp_output.bias.any()
    for shape in ((2, 11), (5, 7)):
        batch = tiny_batch(batch_size=shape[0], seq_len=shape[1], num_labels=3, seed=sum(shape))
        torch.testing.assert_close(logits(dense, batch), logits(small, batch), rtol=0, atol=1e-5)
    # the compacted model itself is unchanged (a copy was grown)
    assert EncoderStructure(small).heads_per_layer == [4, 2, 0]
    dense.save_pretrained(tmp_path / "dense")
    plain = AutoModelForSequenceClassification.from_pretrained(tmp_path / "dense").eval()
    batch = tiny_batch(num_labels=3)
    torch.testing.assert_close(logits(plain, batch), logits(small, batch), rtol=0, atol=1e-5)


def test_expanded_model_records_the_ticket_in_its_config(pretrained, tmp_path):
    ticket, _, _, small, _ = both(pretrained)
    dense = expand_compact_model(small)
    assert getattr(dense.config, CONFIG_TICKET_KEY) == ticket.to_config_entry(dense)
    dense.save_pretrained(tmp_path / "dense")
    reloaded = AutoModelForSequenceClassification.from_pretrained(tmp_path / "dense")
    recovered = LotteryTicket.from_config_entry(getattr(reloaded.config, CONFIG_TICKET_KEY), model=reloaded)
    assert torch.equal(recovered.head_mask, ticket.head_mask) and torch.equal(recovered.mlp_mask, ticket.mlp_mask)


def test_expand_takes_a_plain_compact_model_and_checks_the_ticket(pretrained):
    base, path = pretrained
    ticket = ticket_for(base, path)
    model = AutoModelForSequenceClassification.from_pretrained(path, num_labels=3).eval()
    small = compact_model(model, ticket)
    dense = expand_compact_model(small)  # the ticket comes from the compaction spec
    assert torch.equal(dense.hf_lottery_ticket.head_mask, ticket.head_mask)
    batch = tiny_batch(num_labels=3)
    torch.testing.assert_close(logits(dense, batch), logits(small, batch), rtol=0, atol=1e-5)
    other = ticket.copy(mlp_mask=torch.tensor([True, False, False]))
    with pytest.raises(ValueError, match="MLPs kept"):
        expand_compact_model(small, other)
    with pytest.raises(ValueError, match="has no `hf_lottery_pruning`"):
        expand_compact_model(model)


def test_compact_rewind_refuses_a_magnitude_ticket(pretrained):
    base, path = pretrained
    ticket = magnitude_ticket(base).copy(base_model=path)
    with pytest.raises(ValueError, match="compact=True.*weight_masks"):
        rewind(ticket, num_labels=2, compact=True)


def test_expand_takes_a_reloaded_compact_folder(pretrained, tmp_path):
    from hf_lottery import load_pruned_model

    _, _, _, small, _ = both(pretrained)
    small.save_pretrained(tmp_path / "compact")
    reloaded = load_pruned_model(tmp_path / "compact", compact=True)
    dense = expand_compact_model(reloaded)
    assert EncoderStructure(dense).heads_per_layer == [4, 4, 4]
    batch = tiny_batch(num_labels=3)
    torch.testing.assert_close(logits(dense, batch), logits(small, batch), rtol=0, atol=1e-5)
