"""Head gates, MLP gates and weight masks installed on a live model (`apply_ticket`).

transformers 5 ignores `head_mask`, so gates are hooks:

* head gate: a forward pre-hook on ``attention.output.dense`` that multiplies its input ``[B, T, H*D]``, viewed as
  ``[B, T, H, D]``, by the layer's gate ``[H]``. Masking head ``h`` is the same as zeroing columns
  ``h*D:(h+1)*D`` of ``attention.output.dense.weight``; it works with every attention implementation.
* MLP gate: a forward hook that scales the output of ``output.dense`` (projection + bias), before the residual and
  LayerNorm, so a pruned MLP leaves ``LayerNorm(attention_output)``.
* weight masks: pruned entries are zeroed in place (their values are kept to restore on `remove()`), and a gradient
  hook zeroes their gradient so optimizers with zero-initialised state (SGD, Adam, AdamW with weight decay) keep them
  at exactly zero; `TicketHandle.enforce_weight_masks()` re-zeroes them after an optimizer step for any optimizer.

With ``differentiable=True`` the gates are leaf tensors with ``requires_grad``: after ``loss.backward()``,
``handle.head_gates.grad`` and ``handle.mlp_gates.grad`` hold ∂L/∂ξ, the Michel et al. importance signal.
"""

from __future__ import annotations

import weakref
from functools import partial
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from .structure import EncoderStructure


if TYPE_CHECKING:
    from .ticket import LotteryTicket

# model -> weak references to its live handles, so other parts of the library can find an applied ticket. Weak on
# both sides: the hooks installed on the model keep a handle alive, and nothing here keeps a model alive.
_ACTIVE: weakref.WeakKeyDictionary[nn.Module, list[weakref.ref[TicketHandle]]] = weakref.WeakKeyDictionary()


class TicketHandle:
    """What `apply_ticket` returns: the installed gates, and `.remove()` to undo everything.

    Attributes:
        head_gates: ``[num_layers, num_heads]`` float tensor (1 = kept). A leaf with ``requires_grad`` when
            `differentiable`.
        mlp_gates: ``[num_layers]`` float tensor.
        ticket: the applied `LotteryTicket` (None for all-ones gates).
    """

    def __init__(
        self,
        model: nn.Module,
        ticket: LotteryTicket | None,
        *,
        differentiable: bool = False,
        structure: EncoderStructure | None = None,
    ):
        self.structure = structure or EncoderStructure(model)
        if ticket is not None:
            ticket.validate(self.structure)
        self.model = self.structure.model
        self.ticket = ticket
        self.differentiable = differentiable
        device = self.structure.device()
        num_layers, num_heads = self.structure.num_layers, self.structure.num_heads
        self.head_size = self.structure.head_size
        self.head_gates = torch.ones(num_layers, num_heads, device=device)
        self.mlp_gates = torch.ones(num_layers, device=device)
        self._hooks: list[Any] = []
        self._saved_weights: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}
        self._weight_masks: dict[str, torch.Tensor] = {}
        # masks in the parameter's dtype: multiplying by them is vectorised (masked_fill_ on CPU is ~10-100x slower)
        self._keep_masks: dict[str, torch.Tensor] = {}
        self._removed = False
        self._set_gate_values(ticket)
        if differentiable:
            self.head_gates.requires_grad_(True)
            self.mlp_gates.requires_grad_(True)
        for layer in self.structure.layers:
            self._hooks.append(layer.attention_output.register_forward_pre_hook(self._head_hook(layer.index)))
            self._hooks.append(layer.mlp_output.register_forward_hook(self._mlp_hook(layer.index)))
        if ticket is not None and ticket.weight_masks:
            self._apply_weight_masks(ticket.weight_masks)
        _ACTIVE.setdefault(self.model, []).append(weakref.ref(self))

    # ------------------------------------------------------------------ gate values
    @torch.no_grad()
    def _set_gate_values(self, ticket: LotteryTicket | None) -> None:
        if ticket is None:
            self.head_gates.fill_(1.0)
            self.mlp_gates.fill_(1.0)
        else:
            self.head_gates.copy_(ticket.head_mask.to(self.head_gates.device, torch.float32))
            self.mlp_gates.copy_(ticket.mlp_mask.to(self.mlp_gates.device, torch.float32))
        self._refresh_layer_flags()

    def _refresh_layer_flags(self) -> None:
        # Layers whose gates are all ones are skipped in the non-differentiable forward: zero cost there.
        with torch.no_grad():
            self._head_active = (self.head_gates != 1).any(dim=1).tolist()
            self._mlp_active = (self.mlp_gates != 1).tolist()
            # Per-layer gate expanded to the H*D features: one fused multiply per layer, no reshapes.
            self._head_gates_expanded = self.head_gates.repeat_interleave(self.head_size, dim=1)

    @torch.no_grad()
    def set_masks(self, head_mask: torch.Tensor | None = None, mlp_mask: torch.Tensor | None = None) -> None:
        """Change the head / MLP gates in place (e.g. between search steps) without reinstalling hooks."""
        if head_mask is not None:
            if tuple(head_mask.shape) != tuple(self.head_gates.shape):
                raise ValueError(
                    f"head_mask must have shape {tuple(self.head_gates.shape)}; got {tuple(head_mask.shape)}."
                )
            self.head_gates.copy_(head_mask.to(self.head_gates.device, torch.float32))
        if mlp_mask is not None:
            if tuple(mlp_mask.shape) != tuple(self.mlp_gates.shape):
                raise ValueError(
                    f"mlp_mask must have shape {tuple(self.mlp_gates.shape)}; got {tuple(mlp_mask.shape)}."
                )
            self.mlp_gates.copy_(mlp_mask.to(self.mlp_gates.device, torch.float32))
        self._refresh_layer_flags()

    def zero_grad(self) -> None:
        """Reset the gates' accumulated gradients (differentiable mode)."""
        self.head_gates.grad = None
        self.mlp_gates.grad = None

    # ------------------------------------------------------------------ hooks
    def _head_hook(self, index: int):
        num_heads, head_size = self.structure.num_heads, self.head_size

        def hook(module: nn.Module, args: tuple[torch.Tensor, ...]):
            hidden = args[0]
            if self.differentiable:
                gate = self.head_gates[index].to(hidden.dtype)
                gated = (hidden.unflatten(-1, (num_heads, head_size)) * gate.unsqueeze(-1)).flatten(-2)
                return (gated, *args[1:])
            if not self._head_active[index]:
                return None
            return (hidden * self._head_gates_expanded[index].to(hidden.dtype), *args[1:])

        return hook

    def _mlp_hook(self, index: int):
        def hook(module: nn.Module, args: tuple[torch.Tensor, ...], output: torch.Tensor):
            if self.differentiable:
                return output * self.mlp_gates[index].to(output.dtype)
            if not self._mlp_active[index]:
                return None
            return output * self.mlp_gates[index].to(output.dtype)

        return hook

    # ------------------------------------------------------------------ weight masks
    @torch.no_grad()
    def _apply_weight_masks(self, weight_masks: dict[str, torch.Tensor]) -> None:
        params = self.structure.named_encoder_parameters()
        for name, mask in weight_masks.items():
            param = params[name]
            mask = mask.to(param.device)
            pruned = ~mask
            self._saved_weights[name] = (pruned, param.detach()[pruned].clone())
            param.masked_fill_(pruned, 0)
            self._weight_masks[name] = mask
            keep = self._keep_masks[name] = mask.to(param.dtype)
            # zero the pruned entries of .grad in place once backward has accumulated it (no new gradient tensors)
            self._hooks.append(param.register_post_accumulate_grad_hook(partial(_zero_pruned_grad, keep=[keep])))

    @torch.no_grad()
    def enforce_weight_masks(self) -> None:
        """Re-zero every pruned weight (call after an optimizer step; cheap, in place)."""
        if not self._weight_masks:
            return
        params = self.structure.named_encoder_parameters()
        for name, keep in self._keep_masks.items():
            param = params[name]
            if keep.dtype != param.dtype or keep.device != param.device:  # the model was moved or cast
                keep = self._keep_masks[name] = keep.to(param.device, param.dtype)
            param.mul_(keep)

    def pruned_weights_are_zero(self) -> bool:
        """True when every weight the ticket prunes is exactly zero right now."""
        params = self.structure.named_encoder_parameters()
        return all(bool((params[name].detach()[~mask] == 0).all()) for name, mask in self._weight_masks.items())

    # ------------------------------------------------------------------ removal
    @torch.no_grad()
    def remove(self, restore_weights: bool = True) -> None:
        """Remove every hook; with `restore_weights`, put back the values of weights the ticket zeroed.

        Handles on the same model should be removed in reverse order of application.
        """
        if self._removed:
            return
        for hook in self._hooks:
            hook.remove()
        self._hooks.clear()
        if restore_weights:
            params = self.structure.named_encoder_parameters()
            for name, (pruned, values) in self._saved_weights.items():
                params[name][pruned] = values.to(params[name].dtype)
        self._saved_weights.clear()
        refs = _ACTIVE.get(self.model, [])
        refs[:] = [ref for ref in refs if ref() is not None and ref() is not self]
        self._removed = True

    @property
    def is_active(self) -> bool:
        return not self._removed

    def __enter__(self) -> TicketHandle:
        return self

    def __exit__(self, *exc: object) -> None:
        self.remove()

    def __repr__(self) -> str:
        state = "removed" if self._removed else "active"
        return (
            f"TicketHandle({state}, heads kept={int((self.head_gates != 0).sum())}/{self.head_gates.numel()}, "
            f"mlps kept={int((self.mlp_gates != 0).sum())}/{self.mlp_gates.numel()}, "
            f"weight masks={len(self._weight_masks)}, differentiable={self.differentiable})"
        )


@torch.no_grad()
def _zero_pruned_grad(param: torch.Tensor, keep: list[torch.Tensor]) -> None:
    """`keep` is a one-element cache, re-made in the gradient's dtype and device if the model was moved or cast."""
    grad = param.grad
    if grad is not None:
        if keep[0].dtype != grad.dtype or keep[0].device != grad.device:
            keep[0] = keep[0].to(grad.device, grad.dtype)
        grad.mul_(keep[0])


def apply_ticket(
    model: nn.Module, ticket: LotteryTicket | None = None, *, differentiable: bool = False
) -> TicketHandle:
    """Install `ticket`'s head gates, MLP gates and weight masks on `model`; return a handle with `.remove()`.

    Args:
        model: a BERT-style model (see `EncoderStructure`); DDP wrappers are unwrapped.
        ticket: the ticket to apply; None installs all-ones gates (useful with `differentiable=True`).
        differentiable: make the gates leaf tensors with ``requires_grad`` so ``loss.backward()`` gives ∂L/∂ξ in
            ``handle.head_gates.grad`` / ``handle.mlp_gates.grad``.

    Raises:
        ValueError: the ticket does not fit the model (see `LotteryTicket.validate`).
        TypeError: the model is not a supported BERT-style encoder.

    Example:

    ```python
    >>> handle = apply_ticket(model, ticket)          # doctest: +SKIP
    >>> logits = model(**batch).logits                # pruned heads / MLPs / weights are off
    >>> handle.remove()                               # the model is exactly as before
    ```
    """
    return TicketHandle(model, ticket, differentiable=differentiable)


def active_handles(model: nn.Module) -> list[TicketHandle]:
    """Handles of tickets currently applied to `model` (oldest first)."""
    from .structure import unwrap_model

    handles = [ref() for ref in _ACTIVE.get(unwrap_model(model), [])]
    return [handle for handle in handles if handle is not None and handle.is_active]
