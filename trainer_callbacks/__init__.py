"""Callbacks that add lottery tickets to an unchanged `transformers.Trainer`: ``Trainer(..., callbacks=[...])``.

The callbacks are defined in `hf_lottery.callbacks`, the one code path that `hf_lottery.LotteryTrainer` uses too.

Example:

```python
>>> from trainer_callbacks import TicketCallback
>>> TicketCallback.__module__
'hf_lottery.callbacks'

```
"""

from hf_lottery.callbacks import (
    MagnitudePruningCallback,
    PushToHubCallback,
    StructuredPruningCallback,
    TicketCallback,
)


__all__ = ["MagnitudePruningCallback", "PushToHubCallback", "StructuredPruningCallback", "TicketCallback"]
