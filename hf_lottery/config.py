"""`TicketSearchConfig`: every setting of a ticket search, declared once and validated at construction.

Every entry point builds this one dataclass: `find_structured_ticket` / `find_magnitude_ticket` (``config=`` or
keyword arguments), the pruning callbacks, `LotteryArguments` (which inherits its fields) and the pipeline / CLI
(through `transformers.HfArgumentParser`). No field shares a name with a `TrainingArguments` field, so both parse
side by side. This module imports only the standard library: `hf-lottery --help` does not pay for torch.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field, fields
from typing import Any, Literal, get_args, get_origin, get_type_hints


__all__ = ["TicketSearchConfig", "resolve_search_config"]

# Fields whose change alters what a search finds: a resumed search must agree on them.
_COMMON_RESULT_FIELDS = ("threshold", "search_data", "held_out_size", "max_search_samples", "search_batch_size")
_NORMALIZE_FIELDS = ("normalize_heads_by_layer", "normalize_mlps_by_tokens", "normalize_globally")
_TARGET_FIELDS = ("target_sparsity", "target_heads", "target_mlps")
RESULT_FIELDS: dict[str, tuple[str, ...]] = {
    "structured": _COMMON_RESULT_FIELDS
    + ("head_fraction", "structured_max_steps", "paper_compat", "passes_per_step", "importance")
    + _NORMALIZE_FIELDS
    + _TARGET_FIELDS,
    "magnitude": _COMMON_RESULT_FIELDS + ("magnitude_prune_fraction", "magnitude_max_steps", "target_sparsity"),
}


def _setting(default: Any, help: str) -> Any:
    """A dataclass field with its `--help` text (read by `HfArgumentParser`)."""
    return field(default=default, metadata={"help": help})


@dataclass
class TicketSearchConfig:
    r"""Settings of the structured (head + MLP importance) and magnitude (global L1) ticket searches.

    Defaults are the paper's. Every field is validated in `__post_init__`: a bad value raises a `ValueError` naming
    the field and its allowed range before any work starts.

    Example:

    ```python
    >>> from hf_lottery import TicketSearchConfig
    >>> config = TicketSearchConfig(threshold=0.8, head_fraction=0.05)
    >>> config.threshold, config.magnitude_max_steps
    (0.8, 10)
    >>> TicketSearchConfig(threshold=1.5)
    Traceback (most recent call last):
    ...
    ValueError: `threshold` must be in (0, 1] (the paper uses 0.9); got 1.5.

    ```
    """

    # --- stop rule ---------------------------------------------------------------------------------------------
    threshold: float = _setting(
        0.9, "Stop rule: keep pruning while metric >= threshold x full-model metric; in (0, 1]."
    )
    on_degenerate: Literal["warn", "raise", "ignore"] = _setting(
        "warn", "When threshold x full metric is at or below a constant predictor's score: warn, raise or ignore."
    )
    # --- search data -------------------------------------------------------------------------------------------
    search_data: Literal["dev", "held-out"] = _setting(
        "dev",
        "Data for importance and the stop rule: 'dev' (the paper) or 'held-out' (a slice of train); "
        "recorded in the ticket.",
    )
    held_out_size: float = _setting(
        0.1, "Held-out slice of train for search_data=held-out: a fraction in (0, 1), or a count >= 1."
    )
    max_search_samples: int | None = _setting(None, "Cap the search data at this many examples (>= 1; default: all).")
    search_batch_size: int = _setting(32, "Batch size of importance / evaluation passes.")
    # --- structured search -------------------------------------------------------------------------------------
    head_fraction: float = _setting(
        0.1, "Heads masked per structured step, as a fraction of all heads, in (0, 1] (the paper: 0.1)."
    )
    structured_max_steps: int | None = _setting(
        None, "Stop the structured search after this many masking steps (default: no cap)."
    )
    importance: Literal["gradient", "fisher"] = _setting(
        "gradient",
        "Head/MLP importance: 'gradient' = sum of |dL/d gate| (Michel et al., the paper); 'fisher' = sum "
        "of squared per-example gate gradients (Kwon et al. 2022, an extension).",
    )
    paper_compat: bool = _setting(
        False, "Reproduce the paper code's quirks (cumulative gate gradient, failed-mask importance)."
    )
    passes_per_step: int = _setting(
        1, "1: one forward+backward per step; 2: the paper's costlier evaluation + importance passes."
    )
    normalize_heads_by_layer: bool = _setting(True, "Divide head importance by its layer's L2 norm (Michel et al.).")
    normalize_mlps_by_tokens: bool = _setting(True, "Divide MLP importance by the number of tokens seen.")
    normalize_globally: bool = _setting(True, "Min-max rescale head and MLP importance to [0, 1].")
    # --- budgets (an extension: stop at a size instead of the 90 % rule) ---------------------------------------
    target_sparsity: float | None = _setting(
        None,
        "Prune until this share of encoder weights is pruned, in (0, 1), whatever the metric "
        "(an extension; default: the paper's stop rule).",
    )
    target_heads: int | None = _setting(None, "Structured: prune until this many heads are kept (>= 0; an extension).")
    target_mlps: int | None = _setting(None, "Structured: prune until this many MLPs are kept (>= 0; an extension).")
    # --- magnitude search --------------------------------------------------------------------------------------
    magnitude_prune_fraction: float = _setting(
        0.1, "Share of the remaining weights pruned per magnitude step, in (0, 1) (the paper: 0.1)."
    )
    magnitude_max_steps: int = _setting(10, "Maximum magnitude pruning steps, >= 1 (the paper: 10).")
    # --- subnetworks -------------------------------------------------------------------------------------------
    random_mode: Literal["exact", "bernoulli"] = _setting(
        "exact", "Structured random tickets: 'exact' size, or the paper's 'bernoulli' sampling."
    )

    def __post_init__(self) -> None:
        validate_search_fields(self)

    # --- helpers -------------------------------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """The settings as a JSON-ready dict (sorted by field order)."""
        return {f.name: getattr(self, f.name) for f in fields(TicketSearchConfig)}

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> TicketSearchConfig:
        """Build from a dict (e.g. a ticket's recorded config); unknown keys raise a `TypeError`."""
        return cls(**values)

    def result_fields(self, method: str) -> dict[str, Any]:
        """The settings that change what a `method` search finds (compared when a search is resumed)."""
        if method not in RESULT_FIELDS:
            raise ValueError(f"`method` must be one of {sorted(RESULT_FIELDS)}; got {method!r}.")
        return {name: getattr(self, name) for name in RESULT_FIELDS[method]}

    def search_config(self) -> TicketSearchConfig:
        """This object's search settings as a plain `TicketSearchConfig` (useful on `LotteryArguments`)."""
        return TicketSearchConfig(**{f.name: getattr(self, f.name) for f in fields(TicketSearchConfig)})


# The allowed values of the `Literal` fields (on_degenerate, search_data, importance, random_mode).
_CHOICES = {name: get_args(t) for name, t in get_type_hints(TicketSearchConfig).items() if get_origin(t) is Literal}


def _fail(name: str, allowed: str, value: Any) -> None:
    raise ValueError(f"`{name}` must be {allowed}; got {value!r}.")


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _is_count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def validate_search_fields(config: Any) -> None:
    """Range and type checks of every `TicketSearchConfig` field (also run by `LotteryArguments`)."""
    c = config
    if not _is_number(c.threshold) or not 0 < c.threshold <= 1:
        _fail("threshold", "in (0, 1] (the paper uses 0.9)", c.threshold)
    for name, allowed in _CHOICES.items():
        if getattr(c, name) not in allowed:
            _fail(name, f"one of {list(allowed)}", getattr(c, name))
    size = c.held_out_size
    if not _is_number(size) or size <= 0 or (size >= 1 and size != int(size)):
        _fail("held_out_size", "a fraction in (0, 1) or a whole count >= 1", size)
    if c.max_search_samples is not None and (not _is_count(c.max_search_samples) or c.max_search_samples < 1):
        _fail("max_search_samples", "an integer >= 1, or None for all", c.max_search_samples)
    if not _is_count(c.search_batch_size) or c.search_batch_size < 1:
        _fail("search_batch_size", "an integer >= 1", c.search_batch_size)
    if not _is_number(c.head_fraction) or not 0 < c.head_fraction <= 1:
        _fail("head_fraction", "in (0, 1] (the paper uses 0.1)", c.head_fraction)
    if c.structured_max_steps is not None and (not _is_count(c.structured_max_steps) or c.structured_max_steps < 1):
        _fail("structured_max_steps", "an integer >= 1, or None for no cap", c.structured_max_steps)
    if c.passes_per_step not in (1, 2) or isinstance(c.passes_per_step, bool):
        _fail("passes_per_step", "1 (one forward+backward) or 2 (the paper's scheme)", c.passes_per_step)
    for name in ("paper_compat", *_NORMALIZE_FIELDS):
        if not isinstance(getattr(c, name), bool):
            _fail(name, "True or False", getattr(c, name))
    if c.importance == "fisher" and c.paper_compat:
        _fail("paper_compat", "False with importance='fisher' (the paper's quirk concerns its |gradient| sums)", True)
    if c.target_sparsity is not None and (not _is_number(c.target_sparsity) or not 0 < c.target_sparsity < 1):
        _fail("target_sparsity", "in (0, 1), or None for the paper's stop rule", c.target_sparsity)
    for name in ("target_heads", "target_mlps"):
        value = getattr(c, name)
        if value is not None and (not _is_count(value) or value < 0):
            _fail(name, "an integer >= 0, or None", value)
    if not _is_number(c.magnitude_prune_fraction) or not 0 < c.magnitude_prune_fraction < 1:
        _fail("magnitude_prune_fraction", "in (0, 1) (the paper uses 0.1)", c.magnitude_prune_fraction)
    if not _is_count(c.magnitude_max_steps) or c.magnitude_max_steps < 1:
        _fail("magnitude_max_steps", "an integer >= 1 (the paper uses 10)", c.magnitude_max_steps)


def resolve_search_config(config: TicketSearchConfig | None = None, **overrides: Any) -> TicketSearchConfig:
    """`config` with `overrides` applied (or a new config from them); an unknown name raises a `TypeError`.

    Example:

    ```python
    >>> config = resolve_search_config(TicketSearchConfig(head_fraction=0.2), threshold=0.7)
    >>> config.head_fraction, config.threshold
    (0.2, 0.7)

    ```
    """
    names = [f.name for f in fields(TicketSearchConfig)]
    unknown = sorted(set(overrides) - set(names))
    if unknown:
        raise TypeError(
            f"Unknown search setting(s) {unknown}; TicketSearchConfig fields are: {', '.join(names[:2])}, ... "
            f"(all: {', '.join(names)})."
        )
    if config is None:
        return TicketSearchConfig(**overrides)
    if not isinstance(config, TicketSearchConfig):
        raise TypeError(f"`config` must be a TicketSearchConfig; got {type(config).__name__}.")
    base = config.search_config() if type(config) is not TicketSearchConfig else config
    return dataclasses.replace(base, **overrides) if overrides else base
