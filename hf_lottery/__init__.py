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
import logging
import os
import sys
import warnings
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ._version import __version__ as __version__


class _PackageLogger(logging.Logger):
    """The ``hf_lottery`` logger. Its level is the one set on it, else transformers' verbosity
    (``transformers.logging.set_verbosity_*``, the Trainer's ``log_level`` / ``log_level_replica``); either way only
    errors on a non-main process of a launch. Its records print as ``[hf-lottery] ...`` on stderr."""

    @property
    def level(self) -> int:
        from transformers.utils.logging import get_verbosity

        from .distributed import is_main_process

        level = getattr(self, "_set_level", logging.NOTSET) or get_verbosity()
        return level if is_main_process() else max(level, logging.ERROR)

    @level.setter
    def level(self, value: int) -> None:
        self._set_level = value


class _StderrHandler(logging.StreamHandler):
    """Writes to whatever ``sys.stderr`` is at the time (a test's capture, a notebook's stream)."""

    @property
    def stream(self):
        return sys.stderr

    @stream.setter
    def stream(self, value) -> None:  # StreamHandler.__init__ assigns it
        pass


def _package_logger() -> logging.Logger:
    logger = logging.getLogger(__name__)
    if not isinstance(logger, _PackageLogger):
        logger.__class__ = _PackageLogger  # only this logger: its children read its `level` while walking up
        logger.level = logging.NOTSET
        handler = _StderrHandler()
        handler.setFormatter(logging.Formatter("[hf-lottery] %(message)s"))
        logger.addHandler(handler)
        logger.propagate = False  # as transformers' own logger: printed once, by this handler
    if os.environ.get("RANK", "0") not in ("", "0"):  # a launcher's non-main process: no Python warnings either
        warnings.filterwarnings("ignore", module=r"hf_lottery(\.|$)")
    return logger


_package_logger()


# public name -> module (relative to this package) that defines it
_EXPORTS: dict[str, str] = {
    "TicketSearchConfig": "config",
    "LotteryTicket": "tickets.ticket",
    "EncoderStructure": "structure",
    "TicketHandle": "gates",
    "apply_ticket": "gates",
    "evaluate": "evaluation",
    "ImportanceResult": "search.importance",
    "compute_importance": "search.importance",
    "find_structured_ticket": "search.structured",
    "find_magnitude_ticket": "search.magnitude",
    "sample_ticket": "search.sampling",
    "super_tickets": "search.sampling",
    "rewind": "models.rewinding",
    "compact_model": "models.compaction",
    "register_auto_classes": "models.auto",
    "load_pruned_model": "models.loading",
    "push_to_hub": "hub.push",
    "push_ticket_to_hub": "hub.push",
    "load_legacy_ticket": "tickets.legacy",
    "LotteryArguments": "trainer",
    "LotteryTrainer": "trainer",
    "export_onnx": "models.onnx_export",
    "glue_metric": "tasks.metrics",
}

__all__ = sorted([*_EXPORTS, "__version__"])


def lazy_exports(package: str, exports: dict[str, str]) -> Callable[[str], Any]:
    """The PEP 562 ``__getattr__`` of a package whose public names (name -> submodule) load on first use."""

    def __getattr__(name: str) -> Any:
        if name not in exports:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(f"{package}.{exports[name]}"), name)
        setattr(sys.modules[package], name, value)  # cache: later look-ups skip __getattr__
        return value

    return __getattr__


__getattr__ = lazy_exports(__name__, _EXPORTS)


def __dir__() -> list[str]:
    return sorted([*globals(), *_EXPORTS])


if TYPE_CHECKING:  # static type checkers and IDEs see the real names
    from .config import TicketSearchConfig as TicketSearchConfig
    from .evaluation import evaluate as evaluate
    from .gates import TicketHandle as TicketHandle
    from .gates import apply_ticket as apply_ticket
    from .hub.push import push_ticket_to_hub as push_ticket_to_hub
    from .hub.push import push_to_hub as push_to_hub
    from .models.auto import register_auto_classes as register_auto_classes
    from .models.compaction import compact_model as compact_model
    from .models.loading import load_pruned_model as load_pruned_model
    from .models.onnx_export import export_onnx as export_onnx
    from .models.rewinding import rewind as rewind
    from .search.importance import ImportanceResult as ImportanceResult
    from .search.importance import compute_importance as compute_importance
    from .search.magnitude import find_magnitude_ticket as find_magnitude_ticket
    from .search.sampling import sample_ticket as sample_ticket
    from .search.sampling import super_tickets as super_tickets
    from .search.structured import find_structured_ticket as find_structured_ticket
    from .structure import EncoderStructure as EncoderStructure
    from .tasks.metrics import glue_metric as glue_metric
    from .tickets.legacy import load_legacy_ticket as load_legacy_ticket
    from .tickets.ticket import LotteryTicket as LotteryTicket
    from .trainer import LotteryArguments as LotteryArguments
    from .trainer import LotteryTrainer as LotteryTrainer
