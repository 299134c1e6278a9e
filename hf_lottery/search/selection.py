"""Pure selection and schedule functions of the ticket searches (no model, no I/O)."""

from __future__ import annotations

import torch


STRUCTURED_PHASES = ("heads+mlp", "heads", "mlp")


def heads_per_step(num_layers: int, num_heads: int, fraction: float = 0.1) -> int:
    """Heads masked per step of the first phase: 10 % of all heads (14 of bert-base's 144), at least one.

    ```python
    >>> heads_per_step(12, 12), heads_per_step(2, 4)
    (14, 1)

    ```
    """
    return max(1, int(fraction * num_layers * num_heads))


def phase_step_sizes(head_step: int) -> dict[str, tuple[int, int]]:
    """(heads, MLPs) masked per step in each phase: joint, heads only at half the step, MLPs only one at a time.

    ```python
    >>> phase_step_sizes(14)
    {'heads+mlp': (14, 1), 'heads': (7, 0), 'mlp': (0, 1)}

    ```
    """
    return {"heads+mlp": (head_step, 1), "heads": (max(1, head_step // 2), 0), "mlp": (0, 1)}


def budget_step_sizes(
    head_step: int, kept_heads: int, kept_mlps: int, target_heads: int | None, target_mlps: int | None, *, free: bool
) -> tuple[int, int] | None:
    """(heads, MLPs) masked by the next step of a budget search, or None when no target asks for more.

    Steps are the first phase's (`head_step` heads and one MLP), never past `target_heads` / `target_mlps`. A part
    without a target is pruned only while `free` (a sparsity target is not met yet).

    ```python
    >>> budget_step_sizes(3, 8, 2, target_heads=6, target_mlps=None, free=False)
    (2, 0)
    >>> budget_step_sizes(3, 8, 2, target_heads=None, target_mlps=None, free=True)
    (3, 1)
    >>> budget_step_sizes(3, 6, 2, target_heads=6, target_mlps=2, free=True) is None
    True

    ```
    """
    head_floor = target_heads if target_heads is not None else (0 if free else kept_heads)
    mlp_floor = target_mlps if target_mlps is not None else (0 if free else kept_mlps)
    heads = max(0, min(head_step, kept_heads - head_floor))
    mlps = max(0, min(1, kept_mlps - mlp_floor))
    return (heads, mlps) if heads or mlps else None


def least_important(importance: torch.Tensor, kept: torch.Tensor, count: int) -> torch.Tensor:
    """Bool mask of the `count` least important entries among the `kept` ones (ties: lowest flat index first).

    ```python
    >>> least_important(torch.tensor([0.5, 0.1, 0.3]), torch.tensor([True, False, True]), 1).tolist()
    [False, False, True]

    ```
    """
    return select_global({"": importance}, {"": kept}, count)[""]


def select_global(
    values: dict[str, torch.Tensor], eligible: dict[str, torch.Tensor], count: int, *, largest: bool = False
) -> dict[str, torch.Tensor]:
    """Masks of the `count` smallest (or largest) eligible entries across all tensors together.

    One global ranking, not per tensor. Ties at the boundary are broken by tensor order, then flat index, so the
    result is deterministic (identical on every process).

    ```python
    >>> values = {"a": torch.tensor([3.0, 1.0]), "b": torch.tensor([2.0, 0.5])}
    >>> eligible = {"a": torch.tensor([True, True]), "b": torch.tensor([True, False])}
    >>> {name: mask.tolist() for name, mask in select_global(values, eligible, 2).items()}
    {'a': [False, True], 'b': [True, False]}

    ```
    """
    selected = {name: torch.zeros_like(mask, dtype=torch.bool) for name, mask in eligible.items()}
    total = sum(int(mask.sum()) for mask in eligible.values())
    if count <= 0 or total == 0:
        return selected
    if count >= total:
        return {name: mask.clone() for name, mask in eligible.items()}
    keyed = {name: (-values[name] if largest else values[name]).detach() for name in eligible}
    flat = torch.cat([keyed[name][eligible[name]].flatten().double() for name in eligible])
    threshold = torch.kthvalue(flat, count).values
    ties_to_take = count - int((flat < threshold).sum())
    del flat
    for name, mask in eligible.items():
        key = keyed[name].double()
        chosen = mask & (key < threshold)
        if ties_to_take > 0:
            ties = (mask & (key == threshold)).flatten().nonzero().flatten()[:ties_to_take]
            chosen.view(-1)[ties] = True
            ties_to_take -= ties.numel()
        selected[name] = chosen
    return selected


def resize_selection(
    selected: torch.Tensor, size: int, generator: torch.Generator, *, prefer: torch.Tensor | None = None
) -> torch.Tensor:
    """Make a bool mask hold exactly `size` True entries.

    Too many: keep a uniformly random subset of the selected ones. Too few: add random entries, first from
    `prefer` (not yet selected), then from everything else.

    ```python
    >>> mask = resize_selection(torch.tensor([True, False, False, False]), 3, torch.Generator().manual_seed(0))
    >>> int(mask.sum()), bool(mask[0])
    (3, True)

    ```
    """
    flat = selected.flatten().clone()
    have = int(flat.sum())
    if size < 0 or size > flat.numel():
        raise ValueError(f"Cannot select {size} of {flat.numel()} entries.")
    if have > size:
        on = flat.nonzero().flatten()
        drop = on[torch.randperm(on.numel(), generator=generator)[: have - size]]
        flat[drop] = False
    elif have < size:
        need = size - have
        pools = [prefer.flatten()] if prefer is not None else []
        for pool in [*pools, torch.ones_like(flat)]:
            candidates = (pool & ~flat).nonzero().flatten()
            take = candidates[torch.randperm(candidates.numel(), generator=generator)[:need]]
            flat[take] = True
            need -= take.numel()
            if need == 0:
                break
    return flat.view_as(selected)
