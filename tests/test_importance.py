import pytest
import torch

from hf_lottery import apply_ticket, compute_importance
from hf_lottery.search.importance import min_max, normalize_by_layer

from .conftest import tiny_bert
from .science_helpers import accuracy, batches, make_examples, search_batches, trained_model
from .test_gates import structured_ticket


def finite_difference_importance(model, data, head_mask, mlp_mask, eps=1e-4):
    """Σ_batches |∂L/∂ξ| by central differences, in float64, one gate at a time."""
    model = model.double()
    handle = apply_ticket(model, None, differentiable=False)
    head_gates = head_mask.double().clone()
    mlp_gates = mlp_mask.double().clone()
    head_total = torch.zeros_like(head_gates)
    mlp_total = torch.zeros_like(mlp_gates)

    def loss(batch):
        handle.head_gates = head_gates
        handle.mlp_gates = mlp_gates
        handle.differentiable = True  # use the exact (unflattened) gate arithmetic with our float64 gates
        with torch.no_grad():
            return float(model(**batch).loss)

    for batch in data:
        for gates, total in ((head_gates, head_total), (mlp_gates, mlp_total)):
            for index in range(gates.numel()):
                flat = gates.view(-1)
                base = float(flat[index])
                flat[index] = base + eps
                up = loss(batch)
                flat[index] = base - eps
                down = loss(batch)
                flat[index] = base
                total.view(-1)[index] += abs((up - down) / (2 * eps))
    handle.remove()
    model.float()
    return head_total, mlp_total


def test_importance_equals_finite_differences_summed_per_batch():
    model = tiny_bert()
    data = batches(make_examples(24, seed=3), 8)
    ticket = structured_ticket(model)
    result = compute_importance(model, data, metric=accuracy, ticket=ticket, progress=False)
    expected_head, expected_mlp = finite_difference_importance(model, data, ticket.head_mask, ticket.mlp_mask)
    torch.testing.assert_close(result.raw_head_importance.double(), expected_head, rtol=2e-4, atol=1e-7)
    torch.testing.assert_close(result.raw_mlp_importance.double(), expected_mlp, rtol=2e-4, atol=1e-7)
    # pruned gates sit at 0 but still have a gradient, as in the paper
    assert result.raw_head_importance[~ticket.head_mask].abs().sum() > 0


def test_importance_equals_hand_autograd_and_paper_compat_quirk():
    model = tiny_bert()
    data = batches(make_examples(24, seed=4), 8)
    per_batch = []
    for batch in data:
        handle = apply_ticket(model, None, differentiable=True)
        model(**batch).loss.backward()
        per_batch.append((handle.head_gates.grad.clone(), handle.mlp_gates.grad.clone()))
        handle.remove()
        model.zero_grad()
    expected = sum(g.abs() for g, _ in per_batch)
    result = compute_importance(model, data, progress=False)
    torch.testing.assert_close(result.raw_head_importance, expected, rtol=1e-5, atol=1e-8)
    cumulative = torch.zeros_like(expected)
    quirk = torch.zeros_like(expected)
    for g, _ in per_batch:
        cumulative += g
        quirk += cumulative.abs()
    paper = compute_importance(model, data, paper_compat=True, progress=False)
    torch.testing.assert_close(paper.raw_head_importance, quirk, rtol=1e-5, atol=1e-8)
    assert not torch.allclose(paper.raw_head_importance, result.raw_head_importance)


def test_normalisations_follow_the_paper():
    model = tiny_bert()
    data = batches(make_examples(16, seed=1), 8)
    result = compute_importance(model, data, progress=False)
    raw_head, raw_mlp = result.raw_head_importance, result.raw_mlp_importance
    norm = raw_head.pow(2).sum(-1).sqrt().unsqueeze(-1)
    expected_head = min_max(raw_head / (norm + 1e-20))
    expected_mlp = min_max(raw_mlp / result.num_tokens)
    torch.testing.assert_close(result.head_importance, expected_head)
    torch.testing.assert_close(result.mlp_importance, expected_mlp)
    assert result.head_importance.min() == 0 and result.head_importance.max() == 1
    assert result.num_tokens == sum(int(b["attention_mask"].sum()) for b in data)
    plain = compute_importance(
        model, data, normalize_heads_by_layer=False, normalize_mlps_by_tokens=False, normalize_globally=False,
        progress=False,
    )  # fmt: skip
    torch.testing.assert_close(plain.head_importance, raw_head)
    torch.testing.assert_close(normalize_by_layer(raw_head).norm(dim=-1), torch.ones(raw_head.shape[0]))
    assert torch.equal(min_max(torch.ones(3)), torch.zeros(3))


def test_metric_comes_from_the_same_pass_and_parameters_get_no_gradients():
    model = trained_model()
    data = search_batches()
    forwards = []
    hook = model.register_forward_hook(lambda *args: forwards.append(1))
    result = compute_importance(model, data, metric=accuracy, progress=False)
    hook.remove()
    assert len(forwards) == len(data)  # one forward (and one backward) per batch, no separate evaluation
    assert result.metric == pytest.approx(accuracy(result.predictions, result.labels))
    assert all(p.grad is None for p in model.parameters())
    assert all(p.requires_grad for p in model.parameters())  # restored
    assert not model.training


def test_respects_an_applied_ticket_and_restores_it():
    model = tiny_bert()
    data = batches(make_examples(16, seed=2), 8)
    ticket = structured_ticket(model)
    explicit = compute_importance(model, data, ticket=ticket, progress=False)
    handle = apply_ticket(model, ticket)
    implicit = compute_importance(model, data, progress=False)
    torch.testing.assert_close(implicit.raw_head_importance, explicit.raw_head_importance)
    torch.testing.assert_close(implicit.raw_mlp_importance, explicit.raw_mlp_importance)
    assert torch.equal(handle.head_gates, ticket.head_mask.float())  # the user's ticket is back in place
    handle.remove()


def test_weight_gradient_mode_gives_the_same_scores():
    model = tiny_bert()
    data = batches(make_examples(16, seed=2), 8)
    frozen = compute_importance(model, data, progress=False)
    full = compute_importance(model, data, weight_gradients=True, progress=False)
    torch.testing.assert_close(full.raw_head_importance, frozen.raw_head_importance, rtol=1e-6, atol=0)
    assert all(p.grad is None for p in model.parameters())


def test_bad_batches_are_rejected():
    model = tiny_bert()
    with pytest.raises(TypeError, match="dicts of tensors"):
        compute_importance(model, [(torch.ones(2, 3, dtype=torch.long),)], progress=False)
    with pytest.raises(ValueError, match="need a `labels` tensor"):
        compute_importance(model, [{"input_ids": torch.ones(2, 3, dtype=torch.long)}], progress=False)
    with pytest.raises(ValueError, match="head_mask must have shape"):
        compute_importance(model, [], head_mask=torch.ones(2, 2), progress=False)
    with pytest.raises(ValueError, match="no batches"):
        compute_importance(model, [], progress=False)


def test_fisher_equals_a_per_example_loop_in_float64():
    model = tiny_bert().double()
    data = batches(make_examples(12, seed=5), 5)  # padded batches of 5, 5 and 2
    ticket = structured_ticket(model)
    result = compute_importance(model, data, ticket=ticket, importance="fisher", progress=False)
    assert result.raw_head_importance.dtype == torch.float64
    head_sum = torch.zeros(ticket.head_mask.shape, dtype=torch.float64)
    mlp_sum = torch.zeros(ticket.mlp_mask.shape, dtype=torch.float64)
    for batch in data:
        for b in range(batch["labels"].shape[0]):
            example = {key: value[b : b + 1] for key, value in batch.items()}
            head = ticket.head_mask.double().clone().requires_grad_(True)
            mlp = ticket.mlp_mask.double().clone().requires_grad_(True)
            handle = apply_ticket(model, None, differentiable=True)
            handle.head_gates, handle.mlp_gates = head, mlp  # float64 leaves at the ticket's mask
            head_grad, mlp_grad = torch.autograd.grad(model(**example).loss, [head, mlp])
            handle.remove()
            head_sum += head_grad**2
            mlp_sum += mlp_grad**2
    torch.testing.assert_close(result.raw_head_importance, head_sum, rtol=1e-10, atol=1e-14)
    torch.testing.assert_close(result.raw_mlp_importance, mlp_sum, rtol=1e-10, atol=1e-14)
    # a different quantity from the paper's Σ|batch gradient|
    gradient = compute_importance(model, data, ticket=ticket, progress=False)
    assert not torch.allclose(gradient.raw_head_importance.double(), head_sum)


def test_fisher_metric_and_scores_come_from_one_pass():
    model = trained_model()
    data = search_batches()
    forwards = []
    hook = model.register_forward_hook(lambda *args: forwards.append(1))
    result = compute_importance(model, data, metric=accuracy, importance="fisher", progress=False)
    hook.remove()
    assert len(forwards) == len(data)
    assert result.metric == pytest.approx(accuracy(result.predictions, result.labels))
    assert result.head_importance.min() == 0 and result.head_importance.max() == 1
    assert all(p.grad is None for p in model.parameters())


def test_labels_outside_num_labels_are_refused_before_torch():
    model = tiny_bert()  # num_labels=2
    batch = {"input_ids": torch.ones(2, 3, dtype=torch.long), "labels": torch.tensor([0, 2])}
    with pytest.raises(ValueError, match=r"label 2, outside \[0, 2\): the model has num_labels=2"):
        compute_importance(model, [batch], progress=False)
    batch["labels"] = torch.tensor([-1, 1])
    with pytest.raises(ValueError, match=r"label -1, outside \[0, 2\)"):
        compute_importance(model, [batch], importance="fisher", progress=False)
