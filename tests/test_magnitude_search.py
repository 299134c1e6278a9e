import math

import pytest
import torch

from hf_lottery import EncoderStructure, LotteryTicket, apply_ticket, find_magnitude_ticket
from hf_lottery.search.selection import select_global

from .science_helpers import accuracy, search_batches, trained_model


def always_one(predictions, labels):
    return 1.0


def test_sparsity_after_k_steps_is_one_minus_point_nine_to_the_k():
    model = trained_model()
    ticket = find_magnitude_ticket(model, search_batches(), always_one, on_degenerate="ignore", progress=False)
    total = ticket.kept_weight_counts()[1]
    remaining = total
    for entry in ticket.history[1:]:
        remaining -= round(0.1 * remaining)
        assert entry["sparsity"] == pytest.approx(1 - remaining / total, abs=1e-12)
        assert entry["sparsity"] == pytest.approx(1 - 0.9 ** entry["step"], abs=1e-4)
    assert len(ticket.history) == 11  # the full model + at most 10 steps
    assert ticket.sparsity == pytest.approx(1 - 0.9**10, abs=1e-4)


def test_ranking_is_global_over_exactly_the_papers_weight_set():
    model = trained_model()
    original = {k: v.clone() for k, v in model.state_dict().items()}
    ticket = find_magnitude_ticket(
        model, search_batches(), always_one, magnitude_max_steps=3, on_degenerate="ignore", progress=False
    )
    structure = EncoderStructure(model)
    assert list(ticket.weight_masks) == structure.magnitude_parameter_names()
    params = structure.named_encoder_parameters()
    kept = torch.cat([params[n].detach().abs()[m] for n, m in ticket.weight_masks.items()])
    pruned = torch.cat([params[n].detach().abs()[~m] for n, m in ticket.weight_masks.items()])
    assert pruned.max() <= kept.min()  # one global threshold, not one per tensor
    per_tensor = [1 - float(m.float().mean()) for m in ticket.weight_masks.values()]
    assert max(per_tensor) - min(per_tensor) > 0.05  # tensors end at different sparsities
    # the search leaves the model exactly as it found it
    assert all(torch.equal(original[k], v) for k, v in model.state_dict().items())
    # excluded parameters are never masked: applying the ticket leaves them untouched
    handle = apply_ticket(model, ticket)
    for name, value in model.state_dict().items():
        if any(s in name for s in ("embeddings", "LayerNorm", "pooler", "classifier", "output.dense.bias")) and (
            "attention.output.dense.bias" not in name
        ):
            assert torch.equal(value, original[name]), name
    handle.remove()


def test_stop_rule_keeps_the_last_passing_mask():
    model = trained_model()
    full = 1.0
    ticket = find_magnitude_ticket(model, search_batches(), accuracy, threshold=0.999, progress=False)
    history = ticket.history
    assert history[0]["metric"] == full
    assert all(h["accepted"] for h in history[:-1])
    if not history[-1]["accepted"]:
        assert history[-1]["metric"] < 0.999 * full
        assert ticket.sparsity == pytest.approx(history[-2]["sparsity"])
    assert ticket.metrics["metric"] >= 0.999 * full


def test_resume(tmp_path):
    full = find_magnitude_ticket(
        trained_model(), search_batches(), always_one, magnitude_max_steps=4, on_degenerate="ignore", progress=False
    )
    calls = {"n": 0}

    def flaky(predictions, labels):
        calls["n"] += 1
        if calls["n"] == 6:  # 1 full pass, 2 constant-predictor scores, steps 1 and 2, then a crash in step 3
            raise KeyboardInterrupt("simulated crash")
        return 1.0

    settings = dict(magnitude_max_steps=4, on_degenerate="ignore", output_dir=tmp_path, progress=False)
    with pytest.raises(KeyboardInterrupt):
        find_magnitude_ticket(trained_model(), search_batches(), flaky, **settings)
    partial = LotteryTicket.from_pretrained(tmp_path)
    assert len(partial.history) == 3 and not partial.extra["search"]["finished"]
    resumed = find_magnitude_ticket(trained_model(), search_batches(), always_one, **settings)
    assert resumed.masks_equal(full)
    assert [h["sparsity"] for h in resumed.history] == [h["sparsity"] for h in full.history]


def test_select_global_breaks_ties_deterministically():
    values = {"a": torch.tensor([1.0, 2.0, 2.0]), "b": torch.tensor([2.0, 0.5])}
    eligible = {k: torch.ones_like(v, dtype=torch.bool) for k, v in values.items()}
    chosen = select_global(values, eligible, 3)
    assert chosen["a"].tolist() == [True, True, False] and chosen["b"].tolist() == [False, True]
    largest = select_global(values, eligible, 2, largest=True)
    assert largest["a"].tolist() == [False, True, True] and largest["b"].tolist() == [False, False]


def test_bad_arguments():
    model = trained_model()
    with pytest.raises(ValueError, match="prune_fraction"):
        find_magnitude_ticket(model, search_batches(), accuracy, magnitude_prune_fraction=10)
    with pytest.raises(ValueError, match="max_steps"):
        find_magnitude_ticket(model, search_batches(), accuracy, magnitude_max_steps=0)
    with pytest.raises(ValueError, match="not in the encoder"):
        find_magnitude_ticket(model, search_batches(), accuracy, parameter_names=["layer.0.nope.weight"])


def test_target_sparsity_is_hit_exactly_ignoring_the_stop_rule_and_step_cap():
    model = trained_model()
    ticket = find_magnitude_ticket(model, search_batches(), accuracy, target_sparsity=0.5, magnitude_max_steps=2,
                                   threshold=1.0, progress=False)  # fmt: skip
    kept, total = ticket.kept_weight_counts()
    assert total - kept == math.ceil(0.5 * total)  # the last step trimmed to land on the budget
    sparsities = [h["sparsity"] for h in ticket.history]
    assert len(sparsities) - 1 == math.ceil(math.log(0.5) / math.log(0.9))  # 7 steps of 10 % of what remains
    assert sparsities[1] == pytest.approx(0.1, abs=1e-6) and all(h["accepted"] for h in ticket.history)
    assert ticket.metrics["metric"] == ticket.history[-1]["metric"]
    assert isinstance(ticket.metrics["passes_stop_rule"], bool)
    assert "metric_name" not in ticket.metrics  # a plain callable has no known name


def test_structured_targets_are_refused():
    with pytest.raises(ValueError, match="`target_heads` applies to the structured search only"):
        find_magnitude_ticket(trained_model(), search_batches(), accuracy, target_heads=3)
