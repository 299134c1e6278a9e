"""The stop rule of the ticket search: keep pruning while ``metric >= threshold × full-model metric``."""

from __future__ import annotations

import warnings
from dataclasses import dataclass


__all__ = ["DegenerateStopRuleWarning", "StopRule"]


class DegenerateStopRuleWarning(UserWarning):
    """The stop-rule threshold is at or below what a constant predictor scores (`StopRule.check`)."""


@dataclass(frozen=True)
class StopRule:
    """``passes(metric)`` is ``metric >= threshold × full_metric``; `degenerate` flags a rule a constant predictor passes.

    Example:

    ```python
    >>> rule = StopRule(threshold=0.9, full_metric=0.8, constant_baseline=0.5)
    >>> round(rule.threshold_value, 4), rule.passes(0.75), rule.passes(0.7), rule.degenerate
    (0.72, True, False, False)

    ```
    """

    threshold: float
    full_metric: float
    constant_baseline: float

    @property
    def threshold_value(self) -> float:
        return self.threshold * self.full_metric

    @property
    def degenerate(self) -> bool:
        return self.threshold_value <= self.constant_baseline

    def passes(self, metric: float) -> bool:
        return metric >= self.threshold_value

    def check(self, on_degenerate: str = "warn") -> None:
        """Warn (``"warn"``), raise (``"raise"``) or do nothing (``"ignore"``) when the rule is degenerate.

        `on_degenerate` is validated by `TicketSearchConfig`.
        """
        if not self.degenerate or on_degenerate == "ignore":
            return
        message = (
            f"The stop rule cannot tell a subnetwork from a constant predictor: {self.threshold} × full metric "
            f"{self.full_metric:.4f} = {self.threshold_value:.4f} is at or below the constant-predictor score "
            f"{self.constant_baseline:.4f} on the same data. The search may prune everything (as the paper's WNLI masks "
            "did). Fine-tune the full model better, use a larger search set, or raise the threshold."
        )
        if on_degenerate == "raise":
            raise ValueError(message)
        warnings.warn(message, DegenerateStopRuleWarning, stacklevel=4)
