import pytest
import torch

from hf_lottery import EncoderStructure, LotteryTicket, sample_ticket, super_tickets

from .conftest import tiny_bert
from .test_gates import magnitude_ticket


def good_ticket(seed=0, layers=4, heads=6, keep=0.6):
    g = torch.Generator().manual_seed(seed)
    return LotteryTicket(
        head_mask=torch.rand(layers, heads, generator=g) < keep,
        mlp_mask=torch.rand(layers, generator=g) < keep,
        seed=seed,
    )


@pytest.mark.parametrize("keep", [0.3, 0.5, 0.8])
def test_structured_random_and_bad_have_exactly_the_good_size(keep):
    good = good_ticket(keep=keep)
    for kind in ("random", "bad"):
        sampled = sample_ticket(good, kind, seed=1)
        assert int(sampled.head_mask.sum()) == int(good.head_mask.sum())
        assert int(sampled.mlp_mask.sum()) == int(good.mlp_mask.sum())
        assert sampled.kind == kind and sampled.extra["derived_from"]["seed"] == good.seed
        assert sample_ticket(good, kind, seed=1) == sampled  # same seed, identical ticket
    assert sample_ticket(good, "random", seed=2) != sample_ticket(good, "random", seed=1)


def test_structured_bad_uses_the_pruned_components_first():
    few_pruned = good_ticket(keep=0.8)  # fewer pruned heads than kept ones: all pruned + random good ones
    bad = sample_ticket(few_pruned, "bad", seed=0)
    assert bool((bad.head_mask | few_pruned.head_mask).all())
    assert bool(bad.head_mask[~few_pruned.head_mask].all())
    many_pruned = good_ticket(keep=0.3)  # more pruned than kept: a subset of the pruned ones only
    bad = sample_ticket(many_pruned, "bad", seed=0)
    assert not bool((bad.head_mask & many_pruned.head_mask).any())


def test_bernoulli_mode_matches_the_kept_fraction_in_expectation():
    good = good_ticket(layers=12, heads=12, keep=0.4)
    p = float(good.head_mask.float().mean())
    sizes = [int(sample_ticket(good, "random", seed=s, mode="bernoulli").head_mask.sum()) for s in range(200)]
    mean = sum(sizes) / len(sizes)
    std_of_mean = (144 * p * (1 - p)) ** 0.5 / len(sizes) ** 0.5
    assert abs(mean - 144 * p) < 4 * std_of_mean
    assert len(set(sizes)) > 1  # not exact-size


def test_magnitude_random_and_bad_keep_the_same_total_number_globally():
    model = tiny_bert()
    good = magnitude_ticket(model)
    keep = sum(int(m.sum()) for m in good.weight_masks.values())
    random = sample_ticket(good, "random", seed=3)
    assert sum(int(m.sum()) for m in random.weight_masks.values()) == keep
    assert random.weight_masks.keys() == good.weight_masks.keys()
    assert sample_ticket(good, "random", seed=3) == random
    bad = sample_ticket(good, "bad", model=model)
    assert sum(int(m.sum()) for m in bad.weight_masks.values()) == keep
    params = EncoderStructure(model).named_encoder_parameters()
    kept = torch.cat([params[n].detach().abs()[m] for n, m in bad.weight_masks.items()])
    pruned = torch.cat([params[n].detach().abs()[~m] for n, m in bad.weight_masks.items()])
    assert kept.max() <= pruned.min()  # the smallest weights are kept
    with pytest.raises(ValueError, match="pass `model=`"):
        sample_ticket(good, "bad")


def test_super_tickets():
    tickets = [good_ticket(seed=s, keep=0.6) for s in range(4)]
    supers = super_tickets(tickets, seed=0)
    heads = torch.stack([t.head_mask for t in tickets])
    expected_good = heads.all(0)
    assert torch.equal(supers["good"].head_mask, expected_good)
    n = int(expected_good.sum())
    for kind in ("bad", "random"):
        assert int(supers[kind].head_mask.sum()) == n
        assert int(supers[kind].mlp_mask.sum()) == int(supers["good"].mlp_mask.sum())
        assert supers[kind].kind == f"super-{kind}"
    never_kept = (~heads).all(0)
    if int(never_kept.sum()) >= n:
        assert bool(never_kept[supers["bad"].head_mask].all())
    assert not bool((supers["random"].head_mask & expected_good).any()) or int((~expected_good).sum()) < n
    assert super_tickets(tickets, seed=0)["random"] == supers["random"]
    with pytest.raises(ValueError, match="at least 2"):
        super_tickets(tickets[:1])


def test_bad_kind():
    with pytest.raises(ValueError, match="'random' or 'bad'"):
        sample_ticket(good_ticket(), "ugly")
