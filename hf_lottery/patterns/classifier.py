"""The paper's CNN that classifies one head's attention map into the five pattern types, with training,
evaluation (per-class and weighted F1, confusion matrix) and a safetensors + JSON checkpoint."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from transformers.utils import logging

from ..atomic import atomic_path, write_json
from .labels import PATTERNS


logger = logging.get_logger(__name__)
CHECKPOINT_WEIGHTS = "pattern_classifier.safetensors"
CHECKPOINT_CONFIG = "pattern_classifier.json"
CHECKPOINT_FORMAT_VERSION = 1
DEFAULT_INPUT_SIZE = 64


class PatternCNN(nn.Module):
    """Conv3×3(1→16)–ReLU–Conv3×3(16→16)–ReLU–MaxPool2–Conv3×3(16→32)–ReLU–Conv3×3(32→32)–ReLU–MaxPool2–
    Conv3×3(32→64)–ReLU–Conv3×3(64→64)–ReLU–Conv1×1(64→16)–AdaptiveAvgPool(1)–Conv1×1(16→5)."""

    def __init__(self, num_classes: int = len(PATTERNS)):
        super().__init__()

        def conv(cin: int, cout: int, k: int = 3) -> nn.Conv2d:
            return nn.Conv2d(cin, cout, kernel_size=k)  # unpadded, as in the paper's code

        self.layers = nn.Sequential(
            conv(1, 16), nn.ReLU(), conv(16, 16), nn.ReLU(), nn.MaxPool2d(2),
            conv(16, 32), nn.ReLU(), conv(32, 32), nn.ReLU(), nn.MaxPool2d(2),
            conv(32, 64), nn.ReLU(), conv(64, 64), nn.ReLU(),
            conv(64, 16, 1), nn.AdaptiveAvgPool2d(1), conv(16, num_classes, 1),
        )  # fmt: skip
        for module in self.modules():
            if isinstance(module, nn.Conv2d):  # the paper's initialisation
                nn.init.xavier_normal_(module.weight)
                nn.init.zeros_(module.bias)

    def forward(self, maps: torch.Tensor) -> torch.Tensor:
        """``[B, 1, S, S]`` maps → ``[B, 5]`` logits."""
        return self.layers(maps).flatten(1)


def center_crop_or_pad(
    attention: np.ndarray | torch.Tensor, size: int = DEFAULT_INPUT_SIZE, normalize: bool = True
) -> torch.Tensor:
    """Centre-crop a ``[T, T]`` map to ``size`` × ``size``, or centre it on a zero canvas when smaller.

    With `normalize`, the map is first divided by its maximum, so maps of long and short sentences (whose softmax
    values differ in scale) look alike; the paper's code fed raw values (``normalize=False``).
    """
    attention = torch.as_tensor(np.asarray(attention), dtype=torch.float32)
    if attention.ndim != 2 or attention.shape[0] != attention.shape[1]:
        raise ValueError(f"An attention map must be square [T, T]; got shape {tuple(attention.shape)}.")
    if normalize and attention.numel() and attention.max() > 0:
        attention = attention / attention.max()
    extra = size - attention.shape[0]  # > 0: zeros to add, < 0: rows and columns to drop (an odd one at the end)
    before = extra // 2 if extra >= 0 else -(-extra // 2)
    return nn.functional.pad(attention, (before, extra - before) * 2)


def to_batch(maps: Sequence[Any], size: int, normalize: bool = True) -> torch.Tensor:
    return torch.stack([center_crop_or_pad(m, size, normalize) for m in maps]).unsqueeze(1)


@dataclass
class PatternClassifier:
    """A trained `PatternCNN` with its input size and label names; `predict` returns pattern names."""

    model: PatternCNN
    input_size: int = DEFAULT_INPUT_SIZE
    labels: tuple[str, ...] = PATTERNS
    summary: dict[str, Any] | None = None
    normalize: bool = True

    @torch.no_grad()
    def predict_proba(self, maps: Sequence[Any], batch_size: int = 256) -> np.ndarray:
        self.model.eval()
        out = []
        for start in range(0, len(maps), batch_size):
            batch = to_batch(maps[start : start + batch_size], self.input_size, self.normalize)
            out.append(self.model(batch).softmax(-1))
        return torch.cat(out).numpy() if out else np.zeros((0, len(self.labels)))

    def predict(self, maps: Sequence[Any]) -> list[str]:
        return [self.labels[i] for i in self.predict_proba(maps).argmax(-1)]

    def save_pretrained(self, folder: str | os.PathLike) -> Path:
        """Write ``pattern_classifier.safetensors`` + ``pattern_classifier.json`` (label map, input size) atomically."""
        from safetensors.torch import save_model

        folder = Path(folder)  # atomic_path creates it
        metadata = {"format": "pt", "hf_lottery_pattern_classifier": str(CHECKPOINT_FORMAT_VERSION)}
        with atomic_path(folder / CHECKPOINT_WEIGHTS) as tmp:
            save_model(self.model, str(tmp), metadata=metadata)  # contiguous tensors, copied to the CPU
        write_json(folder / CHECKPOINT_CONFIG, {
            "format_version": CHECKPOINT_FORMAT_VERSION, "input_size": self.input_size, "labels": list(self.labels),
            "normalize": self.normalize,
            "label_to_id": {name: i for i, name in enumerate(self.labels)}, "training": self.summary or {},
        })  # fmt: skip
        return folder

    @classmethod
    def from_pretrained(cls, folder: str | os.PathLike | None = None) -> PatternClassifier:
        """Load a checkpoint folder; None loads the classifier shipped with hf-lottery (trained on synthetic maps)."""
        import json

        from safetensors.torch import load_file

        folder = Path(folder) if folder is not None else Path(__file__).parent / "assets"
        config_file, weights = folder / CHECKPOINT_CONFIG, folder / CHECKPOINT_WEIGHTS
        if not config_file.is_file() or not weights.is_file():
            raise FileNotFoundError(
                f"{folder} holds no pattern classifier ({CHECKPOINT_CONFIG} + {CHECKPOINT_WEIGHTS})."
            )
        config = json.loads(config_file.read_text())
        if config.get("format_version", 0) > CHECKPOINT_FORMAT_VERSION:
            raise ValueError(f"{config_file} has a newer format ({config['format_version']}); upgrade hf-lottery.")
        labels = tuple(config["labels"])
        model = PatternCNN(len(labels))
        try:
            model.load_state_dict(load_file(str(weights)), strict=True)
        except (RuntimeError, OSError) as err:
            raise ValueError(f"{weights} does not hold a PatternCNN: {err}") from err
        normalize = bool(config.get("normalize", True))
        return cls(model.eval(), int(config["input_size"]), labels, config.get("training"), normalize)


def evaluate_classifier(classifier: PatternClassifier, maps: Sequence[Any], labels: Sequence[int]) -> dict[str, Any]:
    """Per-class F1, weighted F1, accuracy and the confusion matrix (rows: true, columns: predicted)."""
    from sklearn.metrics import confusion_matrix, f1_score

    predicted = classifier.predict_proba(maps).argmax(-1)
    classes = list(range(len(classifier.labels)))
    per_class = f1_score(labels, predicted, labels=classes, average=None, zero_division=0)
    return {
        "weighted_f1": float(f1_score(labels, predicted, labels=classes, average="weighted", zero_division=0)),
        "accuracy": float((np.asarray(labels) == predicted).mean()),
        "per_class_f1": {classifier.labels[i]: float(v) for i, v in enumerate(per_class)},
        "confusion_matrix": confusion_matrix(labels, predicted, labels=classes).tolist(),
        "labels": list(classifier.labels),
    }


def train_classifier(
    maps: Sequence[Any],
    labels: Sequence[int],
    *,
    input_size: int = DEFAULT_INPUT_SIZE,
    epochs: int = 10,
    batch_size: int = 64,
    learning_rate: float = 1e-3,
    validation_fraction: float = 0.2,
    seed: int = 0,
    normalize: bool = True,
    progress: bool = True,
) -> tuple[PatternClassifier, dict[str, Any]]:
    """Train the CNN as the paper did: Adam 1e-3, batch 64, stratified 80/20 split, best-validation checkpoint.

    Returns the classifier (best validation weighted F1) and a summary with the per-epoch history and the
    validation evaluation.

    Example:

    ```python
    >>> from hf_lottery.patterns import generate_synthetic_maps
    >>> maps, labels = generate_synthetic_maps(10, seed=0)
    >>> classifier, summary = train_classifier(maps, labels, epochs=1, input_size=32, progress=False)
    >>> 0.0 <= summary["validation"]["weighted_f1"] <= 1.0
    True

    ```
    """
    from sklearn.model_selection import train_test_split
    from tqdm.auto import tqdm

    if len(maps) != len(labels) or not maps:
        raise ValueError(
            f"Need as many labels as maps (and at least one); got {len(maps)} maps, {len(labels)} labels."
        )
    torch.manual_seed(seed)
    split = train_test_split(np.arange(len(labels)), test_size=validation_fraction, random_state=seed, stratify=labels)
    train_idx, valid_idx = np.sort(split[0]), np.sort(split[1])
    inputs = to_batch(maps, input_size, normalize)
    targets = torch.as_tensor(np.asarray(labels), dtype=torch.long)
    classifier = PatternClassifier(PatternCNN(), input_size, normalize=normalize)
    optimizer = torch.optim.Adam(classifier.model.parameters(), lr=learning_rate)
    generator = torch.Generator().manual_seed(seed)
    validation, best_state, history = None, None, []
    valid_maps = [maps[i] for i in valid_idx]
    valid_labels = [int(labels[i]) for i in valid_idx]
    for epoch in tqdm(range(epochs), desc="pattern classifier", disable=not progress):
        classifier.model.train()
        order = torch.as_tensor(train_idx)[torch.randperm(len(train_idx), generator=generator)]
        losses = []
        for start in range(0, len(order), batch_size):
            batch = order[start : start + batch_size]
            loss = nn.functional.cross_entropy(classifier.model(inputs[batch]), targets[batch])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            losses.append(float(loss.detach()))
        scores = evaluate_classifier(classifier, valid_maps, valid_labels)
        mean_loss = float(np.mean(losses))
        history.append({"epoch": epoch + 1, "loss": mean_loss, "valid_weighted_f1": scores["weighted_f1"]})
        if validation is None or scores["weighted_f1"] > validation["weighted_f1"]:
            validation = scores  # the best epoch's evaluation: the weights kept at the end
            best_state = {k: v.clone() for k, v in classifier.model.state_dict().items()}
    classifier.model.load_state_dict(best_state)
    summary = {"history": history, "validation": validation, "train_size": len(train_idx), "validation_size": len(valid_idx),
               "epochs": epochs, "batch_size": batch_size, "learning_rate": learning_rate, "seed": seed,
               "normalize": normalize, "input_size": input_size}  # fmt: skip
    classifier.summary = summary
    logger.info("Pattern classifier: validation weighted F1 %.3f", validation["weighted_f1"])
    return classifier, summary
