"""The five attention-pattern types of Kovaleva et al. (2019), as the paper's classifier uses them."""

from __future__ import annotations


PATTERNS = ("block", "diagonal", "vertical", "vertical+diagonal", "heterogeneous")

# Spellings found in hand-labelled sets, and the vertical sub-labels the paper merged into "vertical"
# (attention to [CLS], to [SEP], or to punctuation).
_SYNONYMS = {
    **dict.fromkeys("vertical_cls vertical_sep vertical_punct vertical_punctuation cls sep".split(), "vertical"),
    **dict.fromkeys("vertical-cls vertical-sep vertical-punct".split(), "vertical"),
    **dict.fromkeys("vertical_diagonal vertical-diagonal diagonal+vertical".split(), "vertical+diagonal"),
    "vertical + diagonal": "vertical+diagonal",
    **dict.fromkeys(("hetero", "heterogenous"), "heterogeneous"),
    "blocks": "block",
}


def normalize_label(label: str) -> str:
    """Map a label string to one of `PATTERNS` (case-insensitive; merges the vertical sub-labels)."""
    key = label.strip().lower()
    key = _SYNONYMS.get(key, key)
    if key not in PATTERNS:
        raise ValueError(
            f"Unknown attention-pattern label {label!r}; expected one of {PATTERNS} (or a vertical_* sub-label)."
        )
    return key
