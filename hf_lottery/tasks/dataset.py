"""The one way hf-lottery builds a text-classification `datasets.Dataset` (GLUE files, users' data, the demo task)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any


if TYPE_CHECKING:  # `import datasets` takes seconds: loaded on first use
    import datasets


def find_label_column(columns: Sequence[str], where: str) -> str | None:
    """The one label column among `columns` (None without one); a `ValueError` when several would compete."""
    found = [name for name in ("labels", "label", "label_ids") if name in columns]  # a batch's label keys
    if len(found) > 1:
        raise ValueError(
            f"{where} has label columns {found}: one would be used and the other silently ignored. Keep the one that "
            f"holds the labels (`dataset.remove_columns({found[1:]})` or `.rename_column(...)`)."
        )
    return found[0] if found else None


def check_present(values: Sequence[Any], where: str) -> None:
    """Refuse a missing value (None or NaN): `str()` and tokenisers would read it as the text "None" / "nan"."""
    for index, value in enumerate(values):
        if value is None or isinstance(value, float) and math.isnan(value):
            raise ValueError(
                f"{where}: example {index} (counting from 0) has no value ({value!r}); it would be read as "
                f"{str(value)!r}. Drop or fill such rows first (e.g. `dataset.filter(...)`)."
            )


def text_classification_dataset(
    texts: Mapping[str, list[str]], labels: list, label_names: Sequence[str] | None
) -> datasets.Dataset:
    """A `Dataset` of string text columns and ``label`` (a `ClassLabel` of `label_names`; float32 when None)."""
    import datasets

    label = datasets.Value("float32") if label_names is None else datasets.ClassLabel(names=list(label_names))
    features = datasets.Features({**{c: datasets.Value("string") for c in texts}, "label": label})
    return datasets.Dataset.from_dict({**texts, "label": labels}, features=features)
