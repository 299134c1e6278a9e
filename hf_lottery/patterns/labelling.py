"""A small terminal labelling tool: shows each map as a PNG, asks for its pattern, appends to the paper's format."""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from ..atomic import write_text
from .labels import PATTERNS
from .paper_format import format_labels_txt, labels_txt_lines, read_labels_txt, standardize_name, write_maps


PROMPT = (
    "Pattern of {name} ({png}) — " + ", ".join(f"{i + 1}={p}" for i, p in enumerate(PATTERNS)) + ", s=skip, q=quit: "
)


def save_map_png(data: np.ndarray, path: str | os.PathLike, title: str | None = None) -> Path:
    """The map as a PNG titled with its layer and head, read from names such as ``3_7``, ``L3H7`` or
    ``layer_3_head_7`` (numbers as written in the name), else with the name."""
    import re

    from ..analysis.plots import plot_style, save_figure

    stem = Path(path).stem
    layer_head = r"(?:layer|l)[_-]?(\d+)[_-]*(?:head|h)[_-]?(\d+)$"
    found = re.search(layer_head, stem, flags=re.IGNORECASE) or re.fullmatch(r"(\d+)_(\d+)", stem)
    default = f"layer {found.group(1)}, head {found.group(2)}" if found else f"map {stem}"
    with plot_style() as plt:
        fig, ax = plt.subplots(figsize=(3.2, 3.4), dpi=100)
        ax.imshow(np.asarray(data), cmap="viridis")
        ax.set(xticks=[], yticks=[], title=title or default)
        return save_figure(fig, path)


def _append_label(labels_file: Path, name: str, label: str) -> None:
    """Add `name` under `label` in labels.txt (rewritten atomically, so an interruption never corrupts it)."""
    groups: dict[str, list[str]] = {}
    for key, names in labels_txt_lines(labels_file) if labels_file.is_file() else ():
        groups.setdefault(key, []).extend(names)
    groups.setdefault(label, []).append(name)
    write_text(labels_file, format_labels_txt(groups))


def label_maps(
    maps: Sequence[np.ndarray],
    names: Sequence[str],
    root: str | os.PathLike,
    *,
    ask: Callable[[str], str] = input,
    echo: Callable[[str], None] = print,
) -> dict[str, str]:
    """Ask a label for every map not yet labelled under ``root/raw`` and record it (resumable; 'q' stops).

    Each map is written to ``root/raw/for_training/<name>.npy`` and ``root/png/<name>.png`` first, so the person
    labelling can open the picture. Returns the labels given in this session.
    """
    raw = Path(root) / "raw"
    labels_file = raw / "labels.txt"
    done = read_labels_txt(labels_file) if labels_file.is_file() else {}
    given: dict[str, str] = {}
    for data, name in zip(maps, names):
        name = standardize_name(name)
        if name in done:
            continue
        write_maps(raw / "for_training", [data], [name])
        png = save_map_png(data, Path(root) / "png" / f"{name}.png")
        while True:
            answer = ask(PROMPT.format(name=name, png=png)).strip().lower()
            if answer == "q":
                return given
            if answer == "s":
                break
            if answer.isdigit() and 1 <= int(answer) <= len(PATTERNS):
                label = PATTERNS[int(answer) - 1]
                _append_label(labels_file, name, label)
                given[name] = label
                break
            echo(f"Please answer 1-{len(PATTERNS)}, s or q.")
    return given
