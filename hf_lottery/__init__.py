"""hf-lottery: lottery tickets for BERT ("When BERT Plays the Lottery, All Tickets Are Winning") on the HF stack.

Top-level names are loaded on first use (PEP 562), so ``import hf_lottery`` and ``hf-lottery --help`` stay fast and
do not import the Trainer, torch-pruning, matplotlib, datasets, scikit-learn or statsmodels.

Example:

```python
>>> import hf_lottery
>>> hf_lottery.TicketSearchConfig(threshold=0.8).threshold
0.8
```
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from ._version import __version__


# public name -> module (relative to this package) that defines it
_EXPORTS: dict[str, str] = {
    "TicketSearchConfig": "config",
    "LotteryTicket": "ticket",
    "EncoderStructure": "structure",
    "TicketHandle": "gates",
    "apply_ticket": "gates",
    "evaluate": "evaluation",
    "ImportanceResult": "search.importance",
    "compute_importance": "search.importance",
    "find_structured_ticket": "search.structured",
    "find_magnitude_ticket": "search.magnitude",
    "sample_ticket": "sampling",
    "super_tickets": "sampling",
    "rewind": "rewinding",
    "compact_model": "compaction",
    "register_auto_classes": "auto",
    "load_pruned_model": "loading",
    "push_to_hub": "hub",
    "push_ticket_to_hub": "hub",
    "load_legacy_ticket": "legacy",
    "LotteryArguments": "trainer",
    "LotteryTrainer": "trainer",
    "export_onnx": "onnx_export",
}

__all__ = sorted([*_EXPORTS, "__version__"])


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value  # cache: later look-ups skip __getattr__
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_EXPORTS])


if TYPE_CHECKING:  # static type checkers and IDEs see the real names
    from .compaction import compact_model
    from .config import TicketSearchConfig
    from .evaluation import evaluate
    from .gates import TicketHandle, apply_ticket
    from .hub import push_ticket_to_hub, push_to_hub
    from .search.importance import ImportanceResult, compute_importance
    from .search.magnitude import find_magnitude_ticket
    from .search.structured import find_structured_ticket
    from .ticket import LotteryTicket
    from .trainer import LotteryArguments, LotteryTrainer
