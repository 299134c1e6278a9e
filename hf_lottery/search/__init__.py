"""Ticket searches: importance, the structured and magnitude searches, selection, the stop rule, search state and
search data. Exports are loaded on first use, so importing one submodule does not load the others."""

from __future__ import annotations

from .. import lazy_exports


_EXPORTS = {
    "ImportanceResult": "importance",
    "compute_importance": "importance",
    "find_structured_ticket": "structured",
    "find_magnitude_ticket": "magnitude",
    "StopRule": "stop_rule",
    "search_dataloader": "dataloader",
}

__all__ = sorted(_EXPORTS)


__getattr__ = lazy_exports(__name__, _EXPORTS)
