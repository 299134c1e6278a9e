"""transformers Auto-class support for hf-lottery compact folders (model type ``hf_lottery_compact (load it ...)``).

``import hf_lottery`` changes nothing in transformers. `register_auto_classes()` (called by `load_pruned_model`, or
by you) registers the compact model type, after which ``AutoModelForSequenceClassification.from_pretrained(folder)``
(and ``AutoModel`` / ``AutoModelForMaskedLM`` / ``AutoModelForTokenClassification``) load a compact folder with the
architecture recorded in it. Registering imports neither torch-pruning nor the Hub code.

Example:

```python
>>> import tempfile, torch
>>> from transformers import AutoModelForSequenceClassification
>>> from hf_lottery import LotteryTicket, compact_model
>>> model = tiny_bert(vocab_size=50)
>>> folder = tempfile.mkdtemp()
>>> ticket = LotteryTicket.full(model).copy(head_mask=torch.tensor([[1, 1, 0, 0], [1, 0, 0, 0]]))
>>> compact_model(model, ticket).save_pretrained(folder)
>>> register_auto_classes()
>>> loaded = AutoModelForSequenceClassification.from_pretrained(folder)
>>> [layer.attention.self.num_attention_heads for layer in loaded.bert.encoder.layer]
[2, 1]

```
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from torch import nn
from transformers import (
    AutoConfig,
    AutoModel,
    AutoModelForMaskedLM,
    AutoModelForSequenceClassification,
    AutoModelForTokenClassification,
    PretrainedConfig,
)
from transformers.utils import logging

from ..atomic import inside
from ..downloads import check_subfolder
from ..files import COMPACT_MODEL_TYPE, COMPACT_WEIGHTS_NAME
from .compaction import SAVED_MODEL_TYPE, load_compact_folder


logger = logging.get_logger(__name__)
AUTO_CLASSES = (AutoModel, AutoModelForSequenceClassification, AutoModelForMaskedLM, AutoModelForTokenClassification)


class CompactConfig(PretrainedConfig):
    """Config of a saved compact folder (model type `SAVED_MODEL_TYPE`); see `load_compact_folder`."""

    model_type = SAVED_MODEL_TYPE


class CompactAutoModel(nn.Module):
    """What the Auto classes call for a compact folder: `from_pretrained` rebuilds the recorded architecture."""

    config_class = CompactConfig

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path: str | os.PathLike, *args: Any, **kwargs: Any) -> nn.Module:
        folder, subfolder = Path(pretrained_model_name_or_path), check_subfolder(kwargs.get("subfolder"))
        if folder.is_dir():
            return load_compact_folder(inside(folder, subfolder) if subfolder else folder)
        # The Auto class already fetched config.json through transformers' own Hub cache; fetch the weights the same
        # way, into the same snapshot folder.
        from transformers.utils import cached_file

        keys = ("revision", "token", "cache_dir", "local_files_only", "subfolder")
        options = {k: kwargs[k] for k in keys if kwargs.get(k) is not None}
        cached_file(str(pretrained_model_name_or_path), "config.json", **options)
        folder = Path(cached_file(str(pretrained_model_name_or_path), COMPACT_WEIGHTS_NAME, **options)).parent
        return load_compact_folder(folder)


# compact folders written before the model type named how to load them
LegacyCompactConfig = type("LegacyCompactConfig", (CompactConfig,), {"model_type": COMPACT_MODEL_TYPE})
LegacyCompactAutoModel = type("LegacyCompactAutoModel", (CompactAutoModel,), {"config_class": LegacyCompactConfig})
REGISTERED = ((CompactConfig, CompactAutoModel), (LegacyCompactConfig, LegacyCompactAutoModel))


def register_auto_classes() -> None:
    """Register the compact model type with transformers' Auto classes (idempotent)."""
    try:
        for config_class, model_class in REGISTERED:
            AutoConfig.register(config_class.model_type, config_class, exist_ok=True)
            for auto in AUTO_CLASSES:
                auto.register(config_class, model_class, exist_ok=True)
    except (ValueError, TypeError) as err:  # a transformers without exist_ok, or a stricter check
        logger.warning(
            "Could not register the %s model type with transformers' Auto classes: %s", COMPACT_MODEL_TYPE, err
        )
