"""The one way hf-lottery builds a text-classification `datasets.Dataset` (GLUE files, users' data, the demo task)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING


if TYPE_CHECKING:  # `import datasets` takes seconds: loaded on first use
    import datasets


def text_classification_dataset(
    texts: Mapping[str, list[str]], labels: list, label_names: Sequence[str] | None
) -> datasets.Dataset:
    """A `Dataset` of string text columns and ``label`` (a `ClassLabel` of `label_names`; float32 when None)."""
    import datasets

    label = datasets.Value("float32") if label_names is None else datasets.ClassLabel(names=list(label_names))
    features = datasets.Features({**{c: datasets.Value("string") for c in texts}, "label": label})
    return datasets.Dataset.from_dict({**texts, "label": labels}, features=features)
