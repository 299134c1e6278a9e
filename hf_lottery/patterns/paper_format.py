"""The paper's labelled-map formats, read and written.

Raw maps: ``raw/for_training/<name>.npy`` (one ``[T, T]`` map each) and ``raw/labels.txt`` with lines
``label = name1, name2, …``. Names without an underscore are zero-padded to four digits (``12`` → ``0012``), as the
paper's loader did. Labels containing "vertical" (the paper's ``single_vertical`` / ``double_vertical`` /
``multiple_vertical``, or ``vertical_cls``...) merge into ``vertical``, except those that also name ``diagonal``
(``vertical+diagonal``).

Norm-based maps: ``normed/data/<name>.npy`` and ``normed/attention_norm_annotated.tsv`` with lines ``name<TAB>label``.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np

from ..atomic import atomic_path, write_text
from .labels import PATTERNS, normalize_label


def standardize_name(name: str) -> str:
    name = name.strip()
    return name if "_" in name else name.zfill(4)


def paper_label(label: str) -> str:
    """A label of the paper's files → one of the five patterns."""
    key = label.strip().lower()
    if "vertical" in key and "diagonal" in key:
        return "vertical+diagonal"
    if "vertical" in key:
        return "vertical"
    return normalize_label(key)


def format_labels_txt(groups: dict[str, list[str]]) -> str:
    """``labels.txt`` text: one ``label = name1, name2, …`` line per label."""
    return "".join(f"{label} = {', '.join(names)}\n" for label, names in groups.items())


def labels_txt_lines(path: str | os.PathLike) -> Iterator[tuple[str, list[str]]]:
    """``(label, names)`` of each line of a ``labels.txt``, as written."""
    for number, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        if "=" not in line:
            raise ValueError(f"{path}, line {number}: expected 'label = name1, name2, ...'; got {line!r}.")
        label, names = (part.strip() for part in line.split("=", 1))
        yield label, [n.strip() for n in names.split(",") if n.strip()]


def read_labels_txt(path: str | os.PathLike) -> dict[str, str]:
    """Standardised name → one of the five patterns."""
    return {standardize_name(name): paper_label(label) for label, names in labels_txt_lines(path) for name in names}


def _load_maps(folder: Path, labels: dict[str, str]) -> tuple[list[np.ndarray], list[int], list[str]]:
    if not folder.is_dir():
        raise FileNotFoundError(f"No map folder at {folder}.")
    maps, ids, names = [], [], []
    for file in sorted(folder.glob("*.npy"), key=lambda f: standardize_name(f.stem)):
        name = standardize_name(file.stem)
        if name not in labels:
            continue
        data = np.load(file, allow_pickle=False)
        if data.ndim != 2 or data.shape[0] != data.shape[1]:
            raise ValueError(f"{file} must hold one square [T, T] map; got shape {data.shape}.")
        maps.append(data.astype(np.float32))
        ids.append(PATTERNS.index(labels[name]))
        names.append(name)
    if not maps:
        raise ValueError(f"No labelled maps found in {folder} (labels name {len(labels)} maps).")
    return maps, ids, names


def read_raw(root: str | os.PathLike) -> tuple[list[np.ndarray], list[int], list[str]]:
    """Maps, label ids (indices into `PATTERNS`) and names from ``root/raw/for_training`` + ``root/raw/labels.txt``."""
    root = Path(root)
    raw = root / "raw" if (root / "raw").is_dir() else root
    return _load_maps(raw / "for_training", read_labels_txt(raw / "labels.txt"))


def read_normed(root: str | os.PathLike) -> tuple[list[np.ndarray], list[int], list[str]]:
    """Maps, label ids and names from ``root/normed/data`` + ``root/normed/attention_norm_annotated.tsv``."""
    root = Path(root)
    normed = root / "normed" if (root / "normed").is_dir() else root
    labels = {}
    tsv = normed / "attention_norm_annotated.tsv"
    for number, line in enumerate(tsv.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        parts = line.split("\t")
        if len(parts) != 2:
            raise ValueError(f"{tsv}, line {number}: expected 'name<TAB>label'; got {line!r}.")
        labels[standardize_name(parts[0])] = paper_label(parts[1])
    return _load_maps(normed / "data", labels)


def write_maps(folder: Path, maps: Sequence[np.ndarray], names: Sequence[str] | None) -> list[str]:
    """Each map as ``folder/<name>.npy`` (atomically); names default to 0000, 0001, ..."""
    names = list(names) if names is not None else [f"{i:04d}" for i in range(len(maps))]
    for name, data in zip(names, maps):
        with atomic_path(folder / f"{name}.npy") as tmp, open(tmp, "wb") as handle:
            np.save(handle, np.asarray(data, dtype=np.float32), allow_pickle=False)
    return names


def write_raw(
    root: str | os.PathLike, maps: Sequence[np.ndarray], labels: Sequence[int], names: Sequence[str] | None = None
) -> Path:
    """Write maps and labels in the paper's raw format (atomically, file by file)."""
    root = Path(root) / "raw"
    names = write_maps(root / "for_training", maps, names)
    groups = {PATTERNS[y]: [n for n, label in zip(names, labels) if label == y] for y in dict.fromkeys(labels)}
    write_text(root / "labels.txt", format_labels_txt(groups))
    return root


def write_normed(
    root: str | os.PathLike, maps: Sequence[np.ndarray], labels: Sequence[int], names: Sequence[str] | None = None
) -> Path:
    """Write maps and labels in the paper's norm-based format."""
    root = Path(root) / "normed"
    names = write_maps(root / "data", maps, names)
    write_text(root / "attention_norm_annotated.tsv", "".join(f"{n}\t{PATTERNS[y]}\n" for n, y in zip(names, labels)))
    return root
