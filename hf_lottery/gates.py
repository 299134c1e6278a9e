"""Head gates, MLP gates and weight masks installed on a live model (`apply_ticket`).

transformers 5 ignores `head_mask`, so gates are hooks:

* head gate: a forward pre-hook on ``attention.output.dense`` that multiplies its input ``[B, T, H*D]``, viewed as
  ``[B, T, H, D]``, by the layer's gate ``[H]``. Masking head ``h`` is the same as zeroing columns
  ``h*D:(h+1)*D`` of ``attention.output.dense.weight``; it works with every attention implementation.
* MLP gate: a forward hook that scales the output of ``output.dense`` (projection + bias), before the residual and
  LayerNorm, so a pruned MLP leaves ``LayerNorm(attention_output)``.
* baked zeros: every weight the ticket prunes (pruned heads' columns, pruned MLPs' ``output.dense`` weight and bias,
  magnitude-pruned entries) is held at exactly zero in the parameters, and the ticket is recorded in
  ``model.config.hf_lottery_ticket``, so any ``save_pretrained`` writes the pruned model (the hooks above stay idle
  while a 0 / 1 ticket is applied). `remove()` restores the original values; a state dict loaded is re-zeroed;
  gradients of pruned entries are zeroed as they accumulate, and `TicketHandle.enforce_weight_masks()` re-zeroes the
  weights after an optimizer step (one fused ``torch._foreach_mul_``).
"""

from __future__ import annotations

import copy
import weakref
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from typing import Any

import torch
from accelerate.utils import has_compiled_regions, is_compiled_module
from torch import nn
from transformers.utils import logging

from .files import CONFIG_TICKET_KEY
from .structure import EncoderStructure, unwrap_model
from .tickets.ticket import LotteryTicket, kept_entries


logger = logging.get_logger(__name__)
_MISSING = object()

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
        if structure is None and (how := _compiled(model)) is not None:
            raise ValueError(
                f"Cannot apply a ticket to a compiled model ({how}): torch.compile does not see hooks added "
                "after compiling, so the gates would be silently ignored. Apply the ticket before compiling: "
                "`handle = apply_ticket(model, ticket); model = torch.compile(model)`."
            )
        self.structure = structure or EncoderStructure(model)
        if ticket is not None:
            if problems := ticket.compatibility_problems(self.structure.model):
                logger.warning("The ticket may not belong to this model: %s", "; ".join(problems))
            ticket.validate(self.structure)
            if stacked := [h for h in active_handles(self.structure.model) if h.ticket is not None]:
                raise ValueError(
                    f"A ticket is already applied to this model ({stacked[0]!r}); applying a second one would stack "
                    "baked zeros whose removal cannot restore the weights in every order. Call `.remove()` on the "
                    "first handle, or merge the masks into one ticket."
                )
        self.model = self.structure.model
        self.ticket = ticket
        self.differentiable = differentiable
        layers, self.head_size = self.structure.num_layers, self.structure.head_size
        ones = torch.ones(layers, self.structure.num_heads), torch.ones(layers)
        head, mlp = ones if ticket is None else (ticket.head_mask, ticket.mlp_mask)
        self.head_gates = head.to(self.structure.device(), torch.float32).requires_grad_(differentiable)
        self.mlp_gates = mlp.to(self.structure.device(), torch.float32).requires_grad_(differentiable)
        self._hooks: list[Any] = []
        self._saved_weights: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}
        self._weight_masks: dict[str, torch.Tensor] = {}
        # kept-entry masks in the parameter's dtype, in the same order as `_masked_params`: the per-step re-zeroing
        # and gradient masking are one `torch._foreach_mul_` each (masked_fill_ on CPU is ~10-100x slower)
        self._keep_masks: dict[str, torch.Tensor] = {}
        self._masked_params: list[nn.Parameter] = []
        self._keep_list: list[torch.Tensor] = []
        self._mask_index: dict[int, int] = {}
        self._grad_hooked: set[int] = set()
        self._owned: dict[str, list[tuple[str, int]]] = {}  # module name -> (parameter attribute, index in the masks)
        self._load_hooked: set[str] = set()
        self._config_previous: Any = _MISSING
        self._removed = False
        self._refresh_layer_flags()
        self._install_gate_hooks()
        if ticket is not None:
            self._bake(kept_entries(self.structure, ticket.head_mask, ticket.mlp_mask, ticket.weight_masks))
            if (config := getattr(self.model, "config", None)) is not None:  # `remove()` puts the previous entry back
                self._config_previous = getattr(config, CONFIG_TICKET_KEY, _MISSING)
                setattr(config, CONFIG_TICKET_KEY, ticket.to_config_entry(self.structure.model))
        _ACTIVE.setdefault(self.model, []).append(weakref.ref(self))

    def _install_gate_hooks(self) -> None:
        for layer in self.structure.layers:
            self._hooks.append(layer.attention_output.register_forward_pre_hook(self._head_hook(layer.index)))
            self._hooks.append(layer.mlp_output.register_forward_hook(self._mlp_hook(layer.index)))

    @contextmanager
    def hooks_removed(self) -> Iterator[None]:
        """Take this handle's hooks off the model for the block (to deep-copy it without them, say); the baked
        zeros stay, and the hooks are back afterwards.

        Example:

        ```python
        >>> import copy
        >>> model = tiny_bert()
        >>> handle = apply_ticket(model)
        >>> with handle.hooks_removed():
        ...     clean = copy.deepcopy(model)
        >>> [len(layer.output.dense._forward_hooks) for layer in clean.bert.encoder.layer]
        [0, 0]

        ```
        """
        for hook in self._hooks:
            hook.remove()
        self._hooks.clear()
        self._grad_hooked.clear()
        self._load_hooked.clear()
        try:
            yield
        finally:
            if not self._removed:
                self._install_gate_hooks()
                self._install_weight_hooks()

    # ------------------------------------------------------------------ gate values
    def _refresh_layer_flags(self) -> None:
        # Which layers the non-differentiable hooks must gate. None, when all gates are ones; none either, when a
        # ticket is applied and its gates are 0 / 1: a closed head is then exactly its zero columns of
        # `attention.output.dense.weight`, and a closed MLP its zero `output.dense` weight and bias, held at zero by
        # the baking, so multiplying by the gate again would only cost time (about 2 % of a training step).
        with torch.no_grad():
            baked = (
                self.ticket is not None
                and not self._removed
                and all(bool(((gates == 0) | (gates == 1)).all()) for gates in (self.head_gates, self.mlp_gates))
            )
            self._head_active = [active and not baked for active in (self.head_gates != 1).any(dim=1).tolist()]
            self._mlp_active = [active and not baked for active in (self.mlp_gates != 1).tolist()]
            # Per-layer gate expanded to the H*D features: one fused multiply per layer, no reshapes.
            self._head_gates_expanded = self.head_gates.repeat_interleave(self.head_size, dim=1)

    @torch.no_grad()
    def _follow_device(self, device: torch.device) -> None:
        """Move the (fixed) gates to `device`: the model was moved after the ticket was applied (e.g. by a Trainer)."""
        self.head_gates = self.head_gates.to(device)
        self.mlp_gates = self.mlp_gates.to(device)
        self._head_gates_expanded = self._head_gates_expanded.to(device)

    @torch.no_grad()
    def set_masks(self, head_mask: torch.Tensor | None = None, mlp_mask: torch.Tensor | None = None) -> None:
        """Change the head / MLP gates in place (e.g. between search steps) without reinstalling hooks. On a handle of
        a ticket, the baked zeros follow the gates: a head or MLP opened again gets the values it had before the ticket
        was applied, a newly closed one is zeroed (magnitude weight masks stay as they are)."""
        for name, mask, gates in (("head_mask", head_mask, self.head_gates), ("mlp_mask", mlp_mask, self.mlp_gates)):
            if mask is not None:
                if tuple(mask.shape) != tuple(gates.shape):
                    raise ValueError(f"{name} must have shape {tuple(gates.shape)}; got {tuple(mask.shape)}.")
                gates.copy_(mask.to(gates.device, torch.float32))
        self._refresh_layer_flags()
        if self.ticket is not None and not self._removed:
            gates_closed = (self.head_gates.detach() == 0).cpu(), (self.mlp_gates.detach() == 0).cpu()
            self._bake(kept_entries(self.structure, ~gates_closed[0], ~gates_closed[1], self.ticket.weight_masks))

    def per_example(self, batch_size: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Differentiable gates with a batch dimension for the next forward: fresh leaves ``[B, L, H]`` and
        ``[B, L]`` at the current gate values. Gate ``[b, ...]`` multiplies only example ``b``'s outputs, so
        ``d(Σ_b L_b) / d gate[b]`` is example ``b``'s own gate gradient (Fisher importance)."""
        if not self.differentiable:
            raise ValueError("per_example() needs a handle made with `differentiable=True`.")
        head, mlp = self.head_gates.detach(), self.mlp_gates.detach()
        head, mlp = (head[0], mlp[0]) if head.ndim == 3 else (head, mlp)
        self.head_gates = head.expand(batch_size, *head.shape).clone().requires_grad_(True)
        self.mlp_gates = mlp.expand(batch_size, *mlp.shape).clone().requires_grad_(True)
        return self.head_gates, self.mlp_gates

    def zero_grad(self) -> None:
        """Reset the gates' accumulated gradients (differentiable mode)."""
        self.head_gates.grad = self.mlp_gates.grad = None

    # ------------------------------------------------------------------ hooks
    def _head_hook(self, index: int):
        num_heads, head_size = self.structure.num_heads, self.head_size

        def hook(module: nn.Module, args: tuple[torch.Tensor, ...]):
            hidden = args[0]
            if self.differentiable:  # gates [L, H], or [B, L, H] per example: broadcast over [B, T, H, D]
                gate = self.head_gates[..., index, :].to(hidden.dtype).unsqueeze(-1)
                gate = gate.unsqueeze(1) if gate.ndim == 3 else gate
                gated = (hidden.unflatten(-1, (num_heads, head_size)) * gate).flatten(-2)
                return (gated, *args[1:])
            if not self._head_active[index]:
                return None
            if self._head_gates_expanded.device != hidden.device:
                self._follow_device(hidden.device)
            return (hidden * self._head_gates_expanded[index].to(hidden.dtype), *args[1:])

        return hook

    def _mlp_hook(self, index: int):
        def hook(module: nn.Module, args: tuple[torch.Tensor, ...], output: torch.Tensor):
            if self.differentiable:  # gates [L], or [B, L] per example
                gate = self.mlp_gates[..., index].to(output.dtype)
                return output * (gate[:, None, None] if gate.ndim == 1 else gate)
            if not self._mlp_active[index]:
                return None
            if self.mlp_gates.device != output.device:
                self._follow_device(output.device)
            return output * self.mlp_gates[index].to(output.dtype)

        return hook

    # ------------------------------------------------------------------ weight masks
    @torch.no_grad()
    def _bake(self, keep_masks: dict[str, torch.Tensor]) -> None:
        """Hold exactly the entries `keep_masks` prunes at zero: entries kept again get their saved values back,
        newly pruned ones are saved (for `remove()`) and zeroed."""
        params = self.structure.named_encoder_parameters()
        for name in [*self._saved_weights, *(n for n in keep_masks if n not in self._saved_weights)]:
            param = params[name]
            original = param.detach().clone()
            if name in self._saved_weights:
                old_pruned, values = self._saved_weights.pop(name)
                original[old_pruned] = values
            if name in keep_masks:
                pruned = ~keep_masks[name].to(param.device)
                self._saved_weights[name] = (pruned, original[pruned].clone())
                original.masked_fill_(pruned, 0)
            param.copy_(original)
        self._weight_masks = {name: keep_masks[name].to(params[name].device) for name in keep_masks}
        self._keep_masks = {name: mask.to(params[name].dtype) for name, mask in self._weight_masks.items()}
        self._masked_params = [params[name] for name in self._keep_masks]
        self._keep_list = list(self._keep_masks.values())
        self._mask_index = {id(param): index for index, param in enumerate(self._masked_params)}
        self._install_weight_hooks()

    def _install_weight_hooks(self) -> None:
        for param in self._masked_params:
            if param.requires_grad and id(param) not in self._grad_hooked:
                self._grad_hooked.add(id(param))
                self._hooks.append(param.register_post_accumulate_grad_hook(self._on_grad_accumulated))
        # Loading a state dict into the model (a Trainer resuming, `model.load_state_dict(...)`) writes the loaded
        # values over the baked zeros: each module owning a masked weight re-zeroes it right after loading.
        self._owned = {}
        for index, name in enumerate(self._keep_masks):
            owner, _, attribute = name.rpartition(".")
            self._owned.setdefault(owner, []).append((attribute, index))
        for owner in self._owned:
            if owner not in self._load_hooked:
                self._load_hooked.add(owner)
                module = self.structure.encoder.get_submodule(owner)
                self._hooks.append(module.register_load_state_dict_post_hook(self._state_loaded_hook(owner)))

    def _state_loaded_hook(self, owner: str):
        def hook(module: nn.Module, incompatible_keys: Any) -> None:
            if self._removed or owner not in self._owned:
                return
            keeps = self._keeps_matching()
            with torch.no_grad():
                for attribute, index in self._owned[owner]:
                    param = getattr(module, attribute)
                    param.mul_(keeps[index].to(param.device, param.dtype))

        return hook

    def _keeps_matching(self) -> list[torch.Tensor]:
        """The keep masks, re-made in the parameters' dtype / device when the model was moved or cast."""
        first, keep = self._masked_params[0], self._keep_list[0]
        if keep.dtype != first.dtype or keep.device != first.device:
            self._keep_masks = {
                name: k.to(p.device, p.dtype) for (name, k), p in zip(self._keep_masks.items(), self._masked_params)
            }
            self._keep_list = list(self._keep_masks.values())
        return self._keep_list

    @torch.no_grad()
    def enforce_weight_masks(self) -> None:
        """Re-zero every pruned weight (call after an optimizer step): one fused in-place multiply."""
        if self._masked_params and not self._removed:
            torch._foreach_mul_([p.data for p in self._masked_params], self._keeps_matching())

    @torch.no_grad()
    def _on_grad_accumulated(self, param: torch.Tensor) -> None:
        # Fires once a masked parameter's gradient is accumulated in a backward pass: zero its pruned entries.
        index = self._mask_index.get(id(param))
        if not self._removed and param.grad is not None and index is not None:
            param.grad.mul_(self._keeps_matching()[index].to(param.grad.dtype))

    def pruned_weights_are_zero(self) -> bool:
        """True when every weight the ticket prunes is exactly zero right now."""
        params = self.structure.named_encoder_parameters()
        return all(bool((params[name].detach()[~mask] == 0).all()) for name, mask in self._weight_masks.items())

    # ------------------------------------------------------------------ removal
    @torch.no_grad()
    def remove(self, restore_weights: bool = True) -> None:
        """Remove every hook and the config entry; with `restore_weights`, put back the values the ticket zeroed
        (``restore_weights=False`` after training with the ticket: the trained model keeps its baked zeros)."""
        if self._removed:
            return
        for hook in self._hooks:
            hook.remove()
        self._hooks.clear()
        if restore_weights:
            params = self.structure.named_encoder_parameters()
            for name, (pruned, values) in self._saved_weights.items():
                params[name][pruned.to(params[name].device)] = values.to(params[name].device, params[name].dtype)
        self._saved_weights.clear()
        self._masked_params.clear()
        self._keep_list.clear()
        if self.ticket is not None and (config := getattr(self.model, "config", None)) is not None:
            if self._config_previous is not _MISSING:
                setattr(config, CONFIG_TICKET_KEY, self._config_previous)
            elif hasattr(config, CONFIG_TICKET_KEY):
                delattr(config, CONFIG_TICKET_KEY)
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


def _compiled(model: nn.Module) -> str | None:
    """How `model` was compiled by torch.compile, or None: hooks added now would be ignored by the compiled code. A
    compile wrapper made earlier around the *original* module is not detected (that would need a heap scan), and needs
    not be: the ticket is baked into the weights, which the compiled code reads, so its outputs are pruned."""
    if is_compiled_module(model) or has_compiled_regions(model):
        return "it is, or holds, a torch.compile wrapper (OptimizedModule)"
    # `module.compile()` compiles in place; torch 2.13 offers no public check, and accelerate 1.16 checks wrappers only
    if any(getattr(m, "_compiled_call_impl", None) is not None for m in model.modules()):
        return "it was compiled in place with `module.compile()`"
    return None


def apply_ticket(
    model: nn.Module, ticket: LotteryTicket | None = None, *, differentiable: bool = False
) -> TicketHandle:
    """Install `ticket`'s head gates, MLP gates and weight masks on `model`; return a handle with `.remove()`.

    Args:
        model: a BERT-style model (see `EncoderStructure`); DDP wrappers are unwrapped.
        ticket: the ticket to apply; None installs all-ones gates (useful with `differentiable=True`).
        differentiable: make the gates leaf tensors with ``requires_grad`` so ``loss.backward()`` gives ∂L/∂ξ in
            ``handle.head_gates.grad`` / ``handle.mlp_gates.grad``, the Michel et al. importance signal
            (`TicketHandle.per_example` gives the gates a batch dimension, for Fisher importance).

    Raises:
        ValueError: the ticket does not fit the model (see `LotteryTicket.validate`); another ticket that changes
            weights is already applied (remove it first); the model was compiled (apply the ticket before compiling).
        TypeError: the model is not a supported BERT-style encoder.

    Example:

    ```python
    >>> import torch
    >>> from hf_lottery import LotteryTicket
    >>> model = tiny_bert(vocab_size=50, hidden_size=16, num_attention_heads=2, intermediate_size=20).eval()
    >>> ticket = LotteryTicket.full(model).copy(head_mask=torch.tensor([[True, False], [True, True]]), kind="custom")
    >>> before = {k: v.clone() for k, v in model.state_dict().items()}
    >>> handle = apply_ticket(model, ticket)      # head 1 of layer 0 is off, its output columns are zero
    >>> int(model.bert.encoder.layer[0].attention.output.dense.weight[:, 8:].abs().sum())
    0
    >>> "hf_lottery_ticket" in model.config.to_dict()
    True
    >>> handle.remove()                           # the model is exactly as before
    >>> all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    True

    ```
    """
    return TicketHandle(model, ticket, differentiable=differentiable)


def active_handles(model: nn.Module) -> list[TicketHandle]:
    """Handles of tickets currently applied to `model` (oldest first)."""
    handles = [ref() for ref in _ACTIVE.get(unwrap_model(model), [])]
    return [handle for handle in handles if handle is not None and handle.is_active]


def applied_ticket(model: nn.Module) -> LotteryTicket | None:
    """The ticket of `model`, the one way to ask: the newest ticket applied with `apply_ticket`, else the one a
    loaded, rewound or compacted model carries (``model.hf_lottery_ticket``), else None."""
    tickets = [handle.ticket for handle in active_handles(model) if handle.ticket is not None]
    return tickets[-1] if tickets else getattr(unwrap_model(model), "hf_lottery_ticket", None)


def copy_without_hooks(model: nn.Module) -> nn.Module:
    """A deep copy of `model` (unwrapped) without the hooks of the tickets applied to it; their baked zeros are
    copied, so the copy computes the pruned model as long as the gates are 0 / 1."""
    model = unwrap_model(model)
    with ExitStack() as stack:
        for handle in active_handles(model):
            stack.enter_context(handle.hooks_removed())
        return copy.deepcopy(model)
