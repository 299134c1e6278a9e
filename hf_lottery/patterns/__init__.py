"""Attention-pattern analysis: are the heads that survive in good subnetworks linguistically special?

Extract per-head attention maps (raw or norm-based), classify them with the paper's CNN into Kovaleva et al.'s five
types, and compare the pattern shares of surviving heads with those of all heads.
"""

from .classifier import PatternClassifier, PatternCNN, evaluate_classifier, train_classifier
from .extract import extract_attention_maps
from .labels import PATTERNS, normalize_label
from .paper_format import read_normed, read_raw, write_normed, write_raw
from .survival import (
    HeadPatterns,
    pattern_survival_table,
    plot_pattern_survival,
    predict_head_patterns,
    survival_markdown,
)
from .synthetic import generate_synthetic_maps


__all__ = [
    "PATTERNS",
    "HeadPatterns",
    "PatternCNN",
    "PatternClassifier",
    "evaluate_classifier",
    "extract_attention_maps",
    "generate_synthetic_maps",
    "normalize_label",
    "pattern_survival_table",
    "plot_pattern_survival",
    "predict_head_patterns",
    "read_normed",
    "read_raw",
    "survival_markdown",
    "train_classifier",
    "write_normed",
    "write_raw",
]
