"""Bad search settings: every one is refused when the `TicketSearchConfig` is built."""

from __future__ import annotations

from hf_lottery.config import TicketSearchConfig, resolve_search_config

from . import BadInput


def _config(**kwargs):
    return lambda tmp_path: TicketSearchConfig(**kwargs)


CASES = [
    BadInput(
        "config-threshold-above-one", "search", _config(threshold=1.5), ValueError, r"`threshold` must be in \(0, 1\]"
    ),
    BadInput("config-threshold-zero", "search", _config(threshold=0), ValueError, r"`threshold`"),
    BadInput("config-threshold-negative", "search", _config(threshold=-1), ValueError, r"`threshold`"),
    BadInput("config-threshold-nan", "search", _config(threshold=float("nan")), ValueError, r"`threshold`"),
    BadInput(
        "config-head-fraction-zero",
        "search",
        _config(head_fraction=0),
        ValueError,
        r"`head_fraction` must be in \(0, 1\]",
    ),
    BadInput("config-head-fraction-two", "search", _config(head_fraction=2), ValueError, r"`head_fraction`"),
    BadInput(
        "config-head-fraction-nan", "search", _config(head_fraction=float("nan")), ValueError, r"`head_fraction`"
    ),
    BadInput(
        "config-prune-fraction-one",
        "search",
        _config(magnitude_prune_fraction=1.0),
        ValueError,
        r"`magnitude_prune_fraction`",
    ),
    BadInput("config-max-steps-zero", "search", _config(magnitude_max_steps=0), ValueError, r"`magnitude_max_steps`"),
    BadInput(
        "config-max-steps-float", "search", _config(magnitude_max_steps=2.5), ValueError, r"`magnitude_max_steps`"
    ),
    BadInput(
        "config-search-samples-zero", "search", _config(max_search_samples=0), ValueError, r"`max_search_samples`"
    ),
    BadInput(
        "config-search-samples-negative", "search", _config(max_search_samples=-5), ValueError, r"`max_search_samples`"
    ),
    BadInput(
        "config-search-data-typo", "search", _config(search_data="test"), ValueError, r"`search_data` must be one of"
    ),
    BadInput("config-on-degenerate-typo", "search", _config(on_degenerate="skip"), ValueError, r"`on_degenerate`"),
    BadInput("config-batch-size-zero", "search", _config(search_batch_size=0), ValueError, r"`search_batch_size`"),
    BadInput("config-held-out-fractional-count", "search", _config(held_out_size=2.5), ValueError, r"`held_out_size`"),
    BadInput("config-passes-three", "search", _config(passes_per_step=3), ValueError, r"`passes_per_step`"),
    BadInput("config-target-sparsity-one", "search", _config(target_sparsity=1.0), ValueError, r"`target_sparsity`"),
    BadInput("config-paper-compat-string", "search", _config(paper_compat="yes"), ValueError, r"`paper_compat`"),
    BadInput(
        "config-unknown-keyword",
        "search",
        lambda tmp_path: resolve_search_config(thresold=0.8),
        TypeError,
        r"thresold",
    ),
]
