"""Ticket searches: importance, the structured and magnitude searches, selection, the stop rule, search state and
search data. Exports are loaded on first use, so importing one submodule does not load the others."""

from __future__ import annotations

import importlib
from typing import Any


_EXPORTS = {
    "ImportanceResult": "importance",
    "compute_importance": "importance",
    "find_structured_ticket": "structured",
    "find_magnitude_ticket": "magnitude",
    "StopRule": "stop_rule",
    "search_dataloader": "dataloader",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(f"{__name__}.{_EXPORTS[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
