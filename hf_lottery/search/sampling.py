"""Random, bad and super subnetworks of the same size as a good ticket (`sample_ticket`, `super_tickets`)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import torch
from torch import nn

from ..structure import EncoderStructure
from ..tickets.ticket import LotteryTicket
from .selection import resize_selection, select_global


def _generator(seed: int | torch.Generator | None) -> torch.Generator:
    if isinstance(seed, torch.Generator):
        return seed
    return torch.Generator().manual_seed(0 if seed is None else int(seed))


def sample_ticket(
    good: LotteryTicket,
    kind: Literal["random", "bad"],
    *,
    seed: int | torch.Generator | None = None,
    model: nn.Module | None = None,
    mode: Literal["exact", "bernoulli"] = "exact",
) -> LotteryTicket:
    """A ticket of the same size as `good`: ``"random"`` or ``"bad"`` (the paper's control subnetworks).

    Structured tickets:
      * random, ``mode="exact"`` (default): exactly as many heads and MLPs as `good`, uniformly at random;
        ``mode="bernoulli"``: the paper's sampling, each head / MLP kept with p = its kept fraction in `good`
        (size matched only in expectation).
      * bad: the heads and MLPs `good` pruned, topped up with random good ones if too few, or sub-sampled if too many.
    Magnitude tickets (over the same weight set, same total number kept — global, not per tensor):
      * random: a uniformly random unstructured mask;
      * bad: keep the *smallest*-magnitude weights of `model` (the fine-tuned model the good ticket came from).

    Same `seed` → identical ticket.

    Example:

    ```python
    >>> good = LotteryTicket(head_mask=torch.tensor([[True, True, False, False]] * 2), mlp_mask=torch.tensor([True, False]))
    >>> random_ticket = sample_ticket(good, "random", seed=42)
    >>> random_ticket.kind, int(random_ticket.head_mask.sum()), int(random_ticket.mlp_mask.sum())
    ('random', 4, 1)

    ```
    """
    if kind not in ("random", "bad"):
        raise ValueError(f"`kind` must be 'random' or 'bad'; got {kind!r}.")
    if mode not in ("exact", "bernoulli"):
        raise ValueError(f"`mode` must be 'exact' or 'bernoulli'; got {mode!r}.")
    generator = _generator(seed)
    seed_value = seed if isinstance(seed, int) else None
    if good.method == "magnitude" and good.weight_masks:
        masks = _magnitude_masks(good, kind, generator, model)
        return _derived(good, kind, seed_value, "global-exact", weight_masks=masks)
    masks = (good.head_mask, good.mlp_mask)
    if kind == "bad" or mode == "exact":  # bad: start from the pruned components; random: from none
        head, mlp = (
            resize_selection(~m if kind == "bad" else torch.zeros_like(m), int(m.sum()), generator) for m in masks
        )
    else:
        head, mlp = (torch.rand(mask.shape, generator=generator) < mask.float().mean() for mask in masks)
    return _derived(good, kind, seed_value, mode, head_mask=head, mlp_mask=mlp)


def _magnitude_masks(
    good: LotteryTicket, kind: str, generator: torch.Generator, model: nn.Module | None
) -> dict[str, torch.Tensor]:
    keep = sum(int(mask.sum()) for mask in good.weight_masks.values())
    eligible = {name: torch.ones_like(mask) for name, mask in good.weight_masks.items()}
    if kind == "random":
        keys = {
            name: torch.rand(mask.shape, generator=generator, dtype=torch.float64) for name, mask in eligible.items()
        }
        return select_global(keys, eligible, keep)
    if model is None:
        raise ValueError("A magnitude 'bad' ticket keeps the smallest weights of a model: pass `model=` (fine-tuned).")
    good.validate(model)
    params = EncoderStructure(model).named_encoder_parameters()
    magnitudes = {name: params[name].detach().abs().cpu() for name in good.weight_masks}
    return select_global(magnitudes, eligible, keep)


def _derived(good: LotteryTicket, kind: str, seed: int | None, sampling: str, **masks) -> LotteryTicket:
    derived_from = {"kind": good.kind, "seed": good.seed, "sample_seed": seed}
    kind = f"super-{kind}" if good.kind.startswith("super") else kind
    return _fresh(good, kind=kind, extra={"sampling": sampling, "derived_from": derived_from}, **masks)


def _fresh(ticket: LotteryTicket, **changes) -> LotteryTicket:
    """`ticket` with `changes` and without its search history, metrics and importance scores."""
    return ticket.copy(history=[], metrics={}, head_importance=None, mlp_importance=None, **changes)


def super_tickets(
    tickets: Sequence[LotteryTicket], *, seed: int | torch.Generator | None = 1337
) -> dict[str, LotteryTicket]:
    """Super tickets across seeds: {"good", "random", "bad"} (structured tickets).

    * good: the heads / MLPs kept by *every* ticket;
    * bad: the ones pruned by every ticket, resized to the good size (topped up first from components that are
      neither super-good nor super-bad, or sub-sampled);
    * random: components that are neither super-good nor bad, resized to the good size.

    Example:

    ```python
    >>> def ticket(heads):
    ...     return LotteryTicket(head_mask=torch.tensor(heads), mlp_mask=torch.tensor([True, True]))
    >>> supers = super_tickets([ticket([[1, 1, 0, 0], [1, 0, 1, 0]]), ticket([[1, 0, 1, 0], [1, 1, 0, 0]])])
    >>> supers["good"].head_mask.int().tolist(), supers["good"].kind
    ([[1, 0, 0, 0], [1, 0, 0, 0]], 'super-good')
    >>> int(supers["bad"].head_mask.sum()), int(supers["random"].head_mask.sum())
    (2, 2)

    ```
    """
    tickets = list(tickets)
    if len(tickets) < 2:
        raise ValueError(f"Super tickets need tickets from at least 2 seeds; got {len(tickets)}.")
    shapes = {tuple(t.head_mask.shape) for t in tickets}
    if len(shapes) != 1:
        raise ValueError(f"All tickets must have the same head_mask shape; got {sorted(shapes)}.")
    if any(t.method != "structured" for t in tickets):
        raise ValueError("Super tickets are defined for structured tickets (heads and MLPs).")
    generator = _generator(seed)
    stacked = [torch.stack([t.head_mask for t in tickets]), torch.stack([t.mlp_mask for t in tickets])]
    good = [masks.all(0) for masks in stacked]  # [heads, MLPs]
    bad = [(~masks).all(0) for masks in stacked]
    bad = [resize_selection(b, int(g.sum()), generator, prefer=~g & ~b) for g, b in zip(good, bad)]
    random = [resize_selection(~g & ~b, int(g.sum()), generator) for g, b in zip(good, bad)]
    seeds = [t.seed for t in tickets]
    return {
        kind: _fresh(tickets[0], head_mask=head, mlp_mask=mlp, kind=f"super-{kind}", extra={"seeds": seeds}, seed=None)
        for kind, (head, mlp) in (("good", good), ("bad", bad), ("random", random))
    }
