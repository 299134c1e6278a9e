import copy

import pytest
import torch
from transformers import BertForSequenceClassification

from hf_lottery import EncoderStructure, LotteryTicket, apply_ticket
from hf_lottery.gates import active_handles

from .conftest import minilm_path, tiny_batch, tiny_bert


def structured_ticket(model, seed=0) -> LotteryTicket:
    """Some heads pruned, every head of layer 1 pruned, and the MLP of layer 2 pruned."""
    ticket = LotteryTicket.full(model, kind="custom")
    generator = torch.Generator().manual_seed(seed)
    head_mask = torch.rand(ticket.head_mask.shape, generator=generator) > 0.4
    head_mask[1] = False
    head_mask[0, 0] = True
    mlp_mask = torch.ones_like(ticket.mlp_mask)
    mlp_mask[-1] = False
    return ticket.copy(head_mask=head_mask, mlp_mask=mlp_mask)


def magnitude_ticket(model, seed=0) -> LotteryTicket:
    structure = EncoderStructure(model)
    generator = torch.Generator().manual_seed(seed)
    masks = {
        name: torch.rand(p.shape, generator=generator) > 0.5 for name, p in structure.magnitude_parameters().items()
    }
    return LotteryTicket.full(model, kind="custom", method="magnitude").copy(weight_masks=masks)


@torch.no_grad()
def zeroed_copy(model, ticket):
    """The reference semantics: zero the weights each gate stands for."""
    reference = copy.deepcopy(model)
    structure = EncoderStructure(reference)
    size = structure.head_size
    for layer in structure.layers:
        for head in range(structure.num_heads):
            if not ticket.head_mask[layer.index, head]:
                layer.attention_output.weight[:, head * size : (head + 1) * size] = 0
        if not ticket.mlp_mask[layer.index]:
            layer.mlp_output.weight.zero_()
            layer.mlp_output.bias.zero_()
    params = structure.named_encoder_parameters()
    for name, mask in ticket.weight_masks.items():
        params[name][~mask] = 0
    return reference


def logits(model, batch, seed=None):
    if seed is not None:
        torch.manual_seed(seed)
    inputs = {k: v for k, v in batch.items() if k != "labels"}
    return model(**inputs).logits


@pytest.mark.parametrize("attn", ["eager", "sdpa"])
@pytest.mark.parametrize("make_ticket", [structured_ticket, magnitude_ticket])
def test_gated_logits_equal_zeroed_weights(attn, make_ticket):
    model = tiny_bert(attn_implementation=attn)
    batch = tiny_batch()
    ticket = make_ticket(model)
    expected = logits(zeroed_copy(model, ticket), batch)
    original = logits(model, batch)
    handle = apply_ticket(model, ticket)
    gated = logits(model, batch)
    torch.testing.assert_close(gated, expected, atol=1e-6, rtol=0)
    assert not torch.allclose(gated, original, atol=1e-4)  # the ticket really changes the output
    handle.remove()
    assert torch.equal(logits(model, batch), original)


def test_train_mode_with_dropout_matches_zeroed_weights():
    model = tiny_bert().train()
    batch = tiny_batch()
    ticket = structured_ticket(model, seed=3)
    reference = zeroed_copy(model, ticket).train()
    expected = logits(reference, batch, seed=7)
    apply_ticket(model, ticket)
    torch.testing.assert_close(logits(model, batch, seed=7), expected, atol=1e-6, rtol=0)


def test_all_heads_and_all_mlps_pruned():
    model = tiny_bert()
    batch = tiny_batch()
    ticket = LotteryTicket.full(model, kind="custom")
    ticket = ticket.copy(head_mask=torch.zeros_like(ticket.head_mask), mlp_mask=torch.zeros_like(ticket.mlp_mask))
    expected = logits(zeroed_copy(model, ticket), batch)
    with apply_ticket(model, ticket):
        torch.testing.assert_close(logits(model, batch), expected, atol=1e-6, rtol=0)
        hidden = model.bert(**{k: v for k, v in batch.items() if k != "labels"}).last_hidden_state
        # no head and no MLP: every layer is LayerNorm(LayerNorm(bias + x)) of its input, no token mixing at all
        assert torch.isfinite(hidden).all()


def test_baked_weights_give_gated_logits():
    model = tiny_bert()
    batch = tiny_batch()
    ticket = structured_ticket(model)
    ticket = ticket.copy(weight_masks=magnitude_ticket(model).weight_masks, method="magnitude")
    handle = apply_ticket(model, ticket)
    gated = logits(model, batch)
    handle.remove()
    baked = ticket.bake(copy.deepcopy(model))
    torch.testing.assert_close(logits(baked, batch), gated, atol=1e-6, rtol=0)


def test_remove_restores_weights_exactly():
    model = tiny_bert()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    handle = apply_ticket(model, magnitude_ticket(model))
    assert handle.pruned_weights_are_zero()
    assert any(not torch.equal(before[k], v) for k, v in model.state_dict().items())
    handle.remove()
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert all(not m._forward_hooks and not m._forward_pre_hooks for m in model.modules())
    handle.remove()  # idempotent


def test_gradients_of_pruned_weights_are_masked_and_enforce_rezeroes():
    model = tiny_bert().train()
    ticket = magnitude_ticket(model)
    handle = apply_ticket(model, ticket)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2, weight_decay=0.1)
    for step in range(3):
        for micro in range(2):  # gradient accumulation: the mask holds for the accumulated gradient
            loss = model(**tiny_batch(seed=10 * step + micro)).loss
            loss.backward()
        params = EncoderStructure(model).named_encoder_parameters()
        for name, mask in ticket.weight_masks.items():
            assert (params[name].grad[~mask] == 0).all()
            assert (params[name].grad[mask] != 0).any()
        optimizer.step()
        optimizer.zero_grad()
        assert handle.pruned_weights_are_zero()  # AdamW state of pruned entries stays zero
    with torch.no_grad():
        for p in model.parameters():
            p.add_(1.0)
    assert not handle.pruned_weights_are_zero()
    handle.enforce_weight_masks()
    assert handle.pruned_weights_are_zero()


def test_an_applied_ticket_costs_no_gate_multiply_and_gives_the_gated_gradients():
    """With a 0 / 1 ticket applied, the baked zeros are the gates: the hooks multiply nothing, and the loss and every
    gradient equal those of gates multiplied in explicitly (differentiable gates on a copy), bit for bit."""
    model = tiny_bert(hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0).train()
    twin = copy.deepcopy(model)
    batch = tiny_batch()
    ticket = structured_ticket(model).copy(weight_masks=magnitude_ticket(model).weight_masks, method="magnitude")
    handle = apply_ticket(model, ticket)
    explicit = apply_ticket(twin, ticket, differentiable=True)
    with torch.no_grad():  # gate values the hooks would use: NaN, so any multiply by them would show
        handle.head_gates.fill_(float("nan"))
        handle.mlp_gates.fill_(float("nan"))
        handle._head_gates_expanded.fill_(float("nan"))
    loss, twin_loss = model(**batch).loss, twin(**batch).loss
    assert torch.isfinite(loss) and torch.equal(loss, twin_loss)
    loss.backward()
    twin_loss.backward()
    twin_grads = dict(twin.named_parameters())
    for name, param in model.named_parameters():
        assert torch.equal(param.grad, twin_grads[name].grad), name
    assert explicit.head_gates.grad is not None  # the twin really went through its gate multiplies


def test_soft_gates_set_on_an_applied_ticket_are_multiplied():
    model = tiny_bert()
    batch = tiny_batch()
    ticket = structured_ticket(model)
    reference = zeroed_copy(model, ticket.copy(head_mask=torch.ones_like(ticket.head_mask)))
    with torch.no_grad():
        for layer in EncoderStructure(reference).layers:
            layer.attention_output.weight.mul_(0.5)
    handle = apply_ticket(model, ticket)
    handle.set_masks(head_mask=torch.full(ticket.head_mask.shape, 0.5))
    torch.testing.assert_close(logits(model, batch), logits(reference, batch), atol=1e-6, rtol=0)


@pytest.mark.parametrize("into", ["model", "encoder"])
def test_loading_a_state_dict_keeps_the_ticket(into):
    """A Trainer resuming, or `load_state_dict` of the dense weights, must not undo an applied ticket."""
    model = tiny_bert()
    batch = tiny_batch()
    dense = {k: v.clone() for k, v in model.state_dict().items()}
    ticket = structured_ticket(model).copy(weight_masks=magnitude_ticket(model).weight_masks, method="magnitude")
    handle = apply_ticket(model, ticket)
    expected = logits(model, batch)
    if into == "model":
        model.load_state_dict(dense)
    else:
        model.bert.load_state_dict({k[len("bert.") :]: v for k, v in dense.items() if k.startswith("bert.")})
    assert handle.pruned_weights_are_zero()
    assert torch.equal(logits(model, batch), expected)
    handle.remove()
    assert all(torch.equal(dense[k], v) for k, v in model.state_dict().items())


def test_differentiable_gates_give_gradients():
    model = tiny_bert()
    batch = tiny_batch()
    ticket = structured_ticket(model)
    handle = apply_ticket(model, ticket, differentiable=True)
    assert handle.head_gates.requires_grad and handle.head_gates.is_leaf
    loss = model(**batch).loss
    loss.backward()
    assert handle.head_gates.grad.shape == ticket.head_mask.shape
    assert handle.mlp_gates.grad.shape == ticket.mlp_mask.shape
    assert handle.head_gates.grad.abs().sum() > 0 and handle.mlp_gates.grad.abs().sum() > 0
    # the gradient of a head gate is the directional derivative along that head's output: check by finite difference
    layer, head = 0, 0
    eps = 1e-3
    with torch.no_grad():
        model.double()
        handle.head_gates.data = handle.head_gates.data.double()
        base = handle.head_gates.detach().clone()
        handle.head_gates.data[layer, head] = base[layer, head] + eps
        up = model(**batch).loss
        handle.head_gates.data[layer, head] = base[layer, head] - eps
        down = model(**batch).loss
        handle.head_gates.data.copy_(base)
    handle.zero_grad()
    model(**batch).loss.backward()
    torch.testing.assert_close(
        handle.head_gates.grad[layer, head], ((up - down) / (2 * eps)).to(torch.float64), rtol=1e-5, atol=1e-8
    )


def test_set_masks_updates_gates_in_place():
    model = tiny_bert()
    batch = tiny_batch()
    ticket = structured_ticket(model)
    handle = apply_ticket(model)
    original = logits(model, batch)
    handle.set_masks(ticket.head_mask, ticket.mlp_mask)
    torch.testing.assert_close(logits(model, batch), logits(zeroed_copy(model, ticket), batch), atol=1e-6, rtol=0)
    handle.set_masks(torch.ones_like(ticket.head_mask), torch.ones_like(ticket.mlp_mask))
    assert torch.equal(logits(model, batch), original)
    with pytest.raises(ValueError, match="head_mask must have shape"):
        handle.set_masks(torch.ones(2, 2))


def test_active_handles_tracks_live_tickets():
    model = tiny_bert()
    assert active_handles(model) == []
    handle = apply_ticket(model, structured_ticket(model))
    assert active_handles(model) == [handle]
    handle.remove()
    assert active_handles(model) == []


def test_ticket_for_another_model_size_is_rejected():
    small, other = tiny_bert(), tiny_bert(num_attention_heads=8)
    with pytest.raises(ValueError, match=r"3 layers × 8 heads"):
        apply_ticket(other, structured_ticket(small))


@pytest.mark.parametrize("attn", ["eager", "sdpa"])
def test_gating_on_packaged_minilm(attn):
    model = BertForSequenceClassification.from_pretrained(minilm_path(), num_labels=2, attn_implementation=attn).eval()
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(minilm_path())
    batch = tokenizer(
        ["a gripping, funny film", "the plot never comes together.", "it is what it is"],
        padding=True,
        return_tensors="pt",
    )
    ticket = structured_ticket(model, seed=5)
    ticket = ticket.copy(weight_masks=magnitude_ticket(model, seed=5).weight_masks, method="magnitude")
    with torch.no_grad():
        expected = zeroed_copy(model, ticket)(**batch).logits
        original = model(**batch).logits
        handle = apply_ticket(model, ticket)
        torch.testing.assert_close(model(**batch).logits, expected, atol=1e-6, rtol=0)
        handle.remove()
        assert torch.equal(model(**batch).logits, original)


def test_weight_masks_follow_a_cast_model():
    model = tiny_bert().train()
    ticket = magnitude_ticket(model)
    handle = apply_ticket(model, ticket)
    model.to(torch.float64)
    batch = tiny_batch()
    model(**batch).loss.backward()
    params = EncoderStructure(model).named_encoder_parameters()
    for name, mask in ticket.weight_masks.items():
        assert params[name].grad.dtype == torch.float64
        assert (params[name].grad[~mask] == 0).all()
    with torch.no_grad():
        for p in model.parameters():
            p.add_(1.0)
    handle.enforce_weight_masks()
    assert handle.pruned_weights_are_zero()
    assert all(params[name].dtype == torch.float64 for name in ticket.weight_masks)


# ---------------------------------------------------------------------- baked structured masks, fused updates
def structured_entries(model, ticket):
    """The weights a structured ticket bakes: pruned heads' output columns, pruned MLPs' output weight and bias."""
    structure = EncoderStructure(model)
    size = structure.head_size
    entries = []
    for layer in structure.layers:
        for head in torch.nonzero(~ticket.head_mask[layer.index]).flatten().tolist():
            entries.append(layer.attention_output.weight[:, head * size : (head + 1) * size])
        if not ticket.mlp_mask[layer.index]:
            entries += [layer.mlp_output.weight, layer.mlp_output.bias]
    return entries


def test_structured_ticket_is_baked_recorded_and_restored():
    from hf_lottery.files import CONFIG_TICKET_KEY

    model = tiny_bert()
    ticket = structured_ticket(model)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    handle = apply_ticket(model, ticket)
    assert all(bool((w == 0).all()) for w in structured_entries(model, ticket))
    assert CONFIG_TICKET_KEY in model.config.to_dict()
    handle.remove()
    assert CONFIG_TICKET_KEY not in model.config.to_dict()
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


def test_pruned_heads_and_mlps_stay_zero_through_training_with_one_fused_rezeroing(monkeypatch):
    model = tiny_bert().train()
    ticket = structured_ticket(model).copy(weight_masks=magnitude_ticket(model).weight_masks, method="magnitude")
    handle = apply_ticket(model, ticket)
    calls = []
    real = torch._foreach_mul_
    monkeypatch.setattr(torch, "_foreach_mul_", lambda *a, **k: (calls.append(len(a[0])), real(*a, **k))[1])
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2, weight_decay=0.1)
    for step in range(3):
        for micro in range(2):
            model(**tiny_batch(seed=10 * step + micro)).loss.backward()
        for name, mask in handle._weight_masks.items():  # every masked gradient entry is zero
            param = EncoderStructure(model).named_encoder_parameters()[name]
            assert (param.grad[~mask] == 0).all(), name
        optimizer.step()
        handle.enforce_weight_masks()
        optimizer.zero_grad()
        assert all(bool((w == 0).all()) for w in structured_entries(model, ticket))
        assert handle.pruned_weights_are_zero()
    masked = len(handle._masked_params)
    # per step: one re-zeroing over all masked parameters (gradients are masked per parameter as they accumulate)
    assert calls == [masked] * 3


def test_a_second_ticket_is_refused_and_removal_restores_bit_for_bit():
    model = tiny_bert()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    first, second = magnitude_ticket(model, seed=0), magnitude_ticket(model, seed=1)
    for a, b in ((first, second), (second, first)):
        handle = apply_ticket(model, a)
        with pytest.raises(ValueError, match="already applied"):
            apply_ticket(model, b)
        assert active_handles(model) == [handle]
        handle.remove()
        assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    with apply_ticket(model), apply_ticket(model, first):  # all-ones gates (importance) stack with a ticket
        pass
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


def test_compiled_models_are_refused_with_the_way_out():
    model = tiny_bert()
    compiled = torch.compile(model, backend="eager")
    with pytest.raises(ValueError, match="before compiling"):
        apply_ticket(compiled, structured_ticket(model))
    in_place = tiny_bert()
    in_place.compile(backend="eager")
    with pytest.raises(ValueError, match=r"compiled in place.*before compiling"):
        apply_ticket(in_place, structured_ticket(in_place))


def test_a_compile_wrapper_made_earlier_gives_the_pruned_outputs():
    model = tiny_bert()
    batch = tiny_batch()
    ticket = structured_ticket(model).copy(weight_masks=magnitude_ticket(model).weight_masks, method="magnitude")
    compiled = torch.compile(model, backend="eager")
    with torch.no_grad():
        dense = logits(compiled, batch)  # compiled (and cached) before the ticket exists
        handle = apply_ticket(model, ticket)  # the original module: allowed, the ticket is baked into the weights
        gated = logits(model, batch)
        torch.testing.assert_close(logits(compiled, batch), gated, atol=1e-6, rtol=0)
        assert not torch.allclose(dense, gated, atol=1e-4)
    handle.remove()


def test_compatibility_problems_are_warned(caplog):
    import logging

    class Checked(LotteryTicket):
        def compatibility_problems(self, model):
            return ["found on bert-large, applied to a 3-layer model"]

    model = tiny_bert()
    ticket = structured_ticket(model)
    checked = Checked(**{f: getattr(ticket, f) for f in ticket.__dataclass_fields__})
    logging.getLogger("hf_lottery").addHandler(caplog.handler)
    try:
        with caplog.at_level(logging.WARNING, logger="hf_lottery"):
            apply_ticket(model, checked).remove()
    finally:
        logging.getLogger("hf_lottery").removeHandler(caplog.handler)
    assert "found on bert-large" in caplog.text
