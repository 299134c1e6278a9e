"""GLUE tasks (from the Hub or a local folder of the official TSVs) and users' own text-classification data.

Every loader returns a `datasets.DatasetDict` with the task's text columns (the Hub's names, e.g. ``sentence1`` /
``sentence2``) and ``label`` (class ids in the order of `GlueTask.label_names`, floats for STS-B), with splits
``train`` and ``validation`` (MNLI: also ``validation_matched`` / ``validation_mismatched``; ``validation`` is
matched). Local TSVs are read with quoting disabled (sentences may begin with a double quote), no "NA" conversion,
the UTF-8 BOM of MRPC stripped, and CoLA's missing header supplied.
"""

from __future__ import annotations

import csv
import math
import os
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .dataset import check_present, find_label_column, text_classification_dataset
from .demo import load_demo_task


if TYPE_CHECKING:  # `import datasets` takes seconds: loaded on first use, so task names validate fast
    import datasets


csv.field_size_limit(min(sys.maxsize, 2**31 - 1))


@dataclass(frozen=True)
class GlueTask:
    """How one task is named, laid out on disk and on the Hub, and scored: the one task table is `GLUE_TASKS`."""

    name: str
    folder: str
    text_columns: tuple[str, ...]
    label_names: tuple[str, ...] | None  # None: regression
    file_columns: Mapping[str, str]  # canonical column -> column in the TSV (header name or position for CoLA)
    label_column: str
    dev_files: Mapping[str, str] = field(default_factory=lambda: {"validation": "dev.tsv"})
    header: bool = True
    column_names: tuple[str, ...] | None = None  # for header-less files
    metric: str = "accuracy"  # the stop-rule metric (`hf_lottery.tasks.metrics.TaskMetric`)
    reports_f1: bool = False
    score_range: tuple[float, float] = (-math.inf, math.inf)  # regression: the scores a file may hold

    @property
    def is_regression(self) -> bool:
        return self.label_names is None

    @property
    def num_labels(self) -> int:
        return 1 if self.label_names is None else len(self.label_names)


def _task(name: str, folder: str, texts: tuple[str, ...], labels: tuple[str, ...] | None, **kw: Any) -> GlueTask:
    """A `GlueTask` whose TSV names its text columns as the Hub does (its label column ``label`` unless given)."""
    return GlueTask(name, folder, texts, labels, {c: c for c in texts}, kw.pop("label_column", "label"), **kw)


GLUE_TASKS: dict[str, GlueTask] = {
    "cola": _task(
        "cola", "CoLA", ("sentence",), ("unacceptable", "acceptable"),
        header=False, column_names=("source", "label", "original_label", "sentence"), metric="matthews_correlation",
    ),
    "sst2": _task("sst2", "SST-2", ("sentence",), ("negative", "positive")),
    "mrpc": GlueTask(
        "mrpc", "MRPC", ("sentence1", "sentence2"), ("not_equivalent", "equivalent"),
        {"sentence1": "#1 String", "sentence2": "#2 String"}, "Quality", reports_f1=True,
    ),
    "stsb": _task(
        "stsb", "STS-B", ("sentence1", "sentence2"), None,
        label_column="score", metric="pearson_spearman_mean", score_range=(0.0, 5.0),
    ),
    "qqp": GlueTask(
        "qqp", "QQP", ("question1", "question2"), ("not_duplicate", "duplicate"),
        {"question1": "question1", "question2": "question2"}, "is_duplicate", reports_f1=True,
    ),
    "mnli": GlueTask(
        "mnli", "MNLI", ("premise", "hypothesis"), ("entailment", "neutral", "contradiction"),
        {"premise": "sentence1", "hypothesis": "sentence2"}, "gold_label",
        dev_files={"validation_matched": "dev_matched.tsv", "validation_mismatched": "dev_mismatched.tsv"},
    ),
    "qnli": _task("qnli", "QNLI", ("question", "sentence"), ("entailment", "not_entailment")),
    "rte": _task("rte", "RTE", ("sentence1", "sentence2"), ("entailment", "not_entailment")),
    "wnli": _task("wnli", "WNLI", ("sentence1", "sentence2"), ("not_entailment", "entailment")),
    "demo": _task("demo", "demo", ("sentence",), ("negative", "positive")),
}  # fmt: skip

_MISMATCHED = ("mnli-mm", "mnli-mismatched")
_ALIASES = {"sst": "sst2", "sts": "stsb"} | dict.fromkeys(("mnli-m", "mnli-matched", *_MISMATCHED), "mnli")


def canonical_task_name(name: str) -> str:
    """``"SST-2"`` / ``"sst_2"`` / ``"sst2"`` → ``"sst2"``; a `ValueError` listing the tasks otherwise."""
    if not isinstance(name, str):
        raise TypeError(f"A task name must be a string; got {type(name).__name__}.")
    key = name.strip().lower().replace("_", "-")
    key = _ALIASES.get(key, key.replace("-", "") if key.replace("-", "") in GLUE_TASKS else key)
    if key not in GLUE_TASKS:
        raise ValueError(f"Unknown task {name!r}; choose one of {sorted(GLUE_TASKS)} (GLUE names in any spelling).")
    return key


def dev_split_name(name: str) -> str:
    """The dev split a task name is scored on: ``validation``, or MNLI's mismatched set for ``mnli-mm``.

    Example:

    ```python
    >>> dev_split_name("MNLI-mm"), dev_split_name("mnli"), dev_split_name("sst2")
    ('validation_mismatched', 'validation', 'validation')

    ```
    """
    key = canonical_task_name(name)
    mismatched = name.strip().lower().replace("_", "-") in _MISMATCHED
    return "validation_mismatched" if key == "mnli" and mismatched else "validation"


# ---------------------------------------------------------------------------------------------- local TSV files
def _read_tsv(
    path: str | os.PathLike, header: bool = True, column_names: Sequence[str] | None = None, **csv_format: Any
) -> tuple[dict[str, list], list[int]]:
    """A GLUE TSV read literally (`csv_format` for users' CSV): columns of strings, and each row's line number."""
    path = Path(path)
    try:
        with open(path, encoding="utf-8-sig", newline="") as handle:
            rows = csv.reader(handle, **{"delimiter": "\t", "quoting": csv.QUOTE_NONE, **csv_format})
            numbered = [(rows.line_num, row) for row in rows if row]  # a trailing blank line is not an example
    except UnicodeDecodeError as err:  # `err` counts from a chunk of the file: find the line in the whole file
        lines = enumerate(path.read_bytes().splitlines(), 1)
        line = next((n for n, raw in lines if raw.decode("utf-8", "replace") != raw.decode("utf-8", "ignore")), "?")
        raise ValueError(
            f"{path}, line {line}: byte {err.object[err.start]:#04x} is not UTF-8 text. Re-save the file as UTF-8 "
            f"(e.g. `iconv -f latin1 -t utf-8 {path.name}`)."
        ) from None
    if header:
        if not numbered:
            raise ValueError(f"{path} is empty (expected a header line).")
        names, numbered = numbered[0][1], numbered[1:]
    else:
        names = list(column_names or [])
    table: dict[str, list] = {name: [] for name in names}
    for number, row in numbered:
        if len(row) < len(names):
            raise ValueError(f"{path}, line {number}: {len(row)} fields, expected {len(names)} ({names}).")
        for name, value in zip(names, row):
            table[name].append(value)
    return table, [n for n, _ in numbered]


def _task_folder(task: GlueTask, data_dir: Path, root: bool = False) -> Path:
    """The folder of `task`'s TSVs: `data_dir` itself (unless `root`: a GLUE root's task folders only) or its task
    folder."""
    for candidate in (data_dir, data_dir / task.folder, data_dir / task.name)[root:]:
        if (candidate / "train.tsv").is_file():
            return candidate
    raise FileNotFoundError(
        f"No train.tsv for {task.folder} under {data_dir} (looked in {data_dir} and {data_dir / task.folder})."
    )


def _load_split(task: GlueTask, path: Path) -> datasets.Dataset:
    table, lines = _read_tsv(path, header=task.header, column_names=task.column_names)
    if missing := [c for c in [*task.file_columns.values(), task.label_column] if c not in table]:
        raise ValueError(f"{path} lacks column(s) {missing} for {task.name}; found {list(table)}.")
    if not table[task.label_column]:
        raise ValueError(f"{path} has no examples; the {task.name} split is empty.")
    names, labels = task.label_names, []
    for value, line in zip(table[task.label_column], lines):
        if task.is_regression:
            try:
                label = float(value)
            except ValueError:
                label = math.nan
            low, high = task.score_range
            if not math.isfinite(label) or not low <= label <= high:
                raise ValueError(f"{path}, line {line}: score {value!r} is not a finite number in [{low}, {high}].")
        elif value in names:
            label = names.index(value)
        elif value.strip().lstrip("-").isdigit() and 0 <= int(value) < len(names):
            label = int(value)
        else:
            raise ValueError(f"{path}, line {line}: label {value!r} is not one of {list(names)} or a class id.")
        labels.append(label)
    texts = {canonical: table[column] for canonical, column in task.file_columns.items()}
    return text_classification_dataset(texts, labels, names)


def load_glue(task: str, data_dir: str | os.PathLike | None = None) -> datasets.DatasetDict:
    """Load a GLUE task from a local folder of the official TSVs, or from the Hub (``nyu-mll/glue``).

    Example:

    ```python
    >>> data = load_glue("demo")   # a GLUE folder works alike: load_glue("mrpc", "glue/MRPC")
    >>> data["train"].num_rows, data["validation"].num_rows
    (1600, 400)

    ```
    """
    spec = GLUE_TASKS[canonical_task_name(task)]
    if spec.name == "demo":
        return load_demo_task()
    import datasets

    if data_dir is None:
        try:
            loaded = datasets.load_dataset("nyu-mll/glue", spec.name)
        except Exception as err:  # offline, unreachable Hub, missing auth: all mean "use local files"
            raise ConnectionError(
                f"Could not load GLUE {spec.folder} from the Hub ({type(err).__name__}: {err}). Offline? Pass "
                f"data_dir= a folder with the task's TSV files (train.tsv, {', '.join(spec.dev_files.values())})."
            ) from err
        keep = [*spec.text_columns, "label"]
        splits = {n: loaded[n].select_columns(keep) for n in loaded if n == "train" or n.startswith("validation")}
    else:
        folder = _task_folder(spec, Path(data_dir))
        splits = {"train": _load_split(spec, folder / "train.tsv")}
        for split, filename in spec.dev_files.items():
            if not (folder / filename).is_file():
                raise FileNotFoundError(f"{folder} has no {filename} (the {split} split of {spec.folder}).")
            splits[split] = _load_split(spec, folder / filename)
    if "validation" not in splits and "validation_matched" in splits:
        splits["validation"] = splits["validation_matched"]
    return datasets.DatasetDict(splits)


# ---------------------------------------------------------------------------------------------- users' own data
def load_text_classification(
    source: Any,
    *,
    text_columns: Sequence[str],
    label_column: str = "label",
    label_names: Sequence[str] | None = None,
    regression: bool = False,
) -> datasets.DatasetDict:
    """Users' own data through the same path: a `Dataset` / `DatasetDict`, or ``{split: path}`` of CSV/TSV/JSON(L).

    Text columns keep their names; labels become ``label`` (class ids; strings are mapped through `label_names`,
    or the sorted label values of the first split).

    Example:

    ```python
    >>> data = load_text_classification({"train": "train.csv", "validation": "dev.csv"},
    ...                                 text_columns=["review"], label_column="stars")   # doctest: +SKIP

    ```
    """
    import datasets

    if isinstance(source, datasets.Dataset):
        source = datasets.DatasetDict({"train": source})
    elif isinstance(source, Mapping) and not isinstance(source, datasets.DatasetDict):
        source = datasets.DatasetDict({split: _read_file(Path(path)) for split, path in source.items()})
    elif not isinstance(source, datasets.DatasetDict):
        raise TypeError(
            "`source` must be a datasets.Dataset, a DatasetDict, or a dict {split: path to .csv/.tsv/.json/.jsonl}; "
            f"got {type(source).__name__}."
        )
    if not text_columns:
        raise ValueError("Give at least one text column.")
    names = list(label_names) if label_names is not None else None
    result = {}
    for split, data in source.items():
        if missing := [c for c in (*text_columns, label_column) if c not in data.column_names]:
            raise ValueError(f"Split {split!r} lacks column(s) {missing}; found {data.column_names}.")
        if len(data) == 0:
            raise ValueError(f"Split {split!r} is empty.")
        raw = {column: data[column] for column in (*text_columns, label_column)}
        for column, values in raw.items():
            check_present(values, f"Split {split!r}, column {column!r}")
        labels = [str(v) for v in raw[label_column]]
        if not regression:
            if names is None:  # numeric labels in numeric order first, then the others alphabetically
                names = sorted(set(labels), key=lambda v: (0, int(v), v) if v.lstrip("-").isdigit() else (1, 0, v))
            if unknown := sorted(set(labels) - set(names)):
                raise ValueError(f"Split {split!r} has labels {unknown[:5]} not in label_names {names}.")
        converted = [float(v) for v in raw[label_column]] if regression else [names.index(v) for v in labels]
        texts = {c: [str(t) for t in raw[c]] for c in text_columns}
        result[split] = text_classification_dataset(texts, converted, None if regression else names)
    return datasets.DatasetDict(result)


def _read_file(path: Path) -> datasets.Dataset:
    import datasets

    if not path.is_file():
        raise FileNotFoundError(f"No data file at {path}.")
    suffix = path.suffix.lower()
    if suffix in (".tsv", ".csv"):
        table, _ = _read_tsv(path, delimiter="\t" if suffix == ".tsv" else ",", quoting=csv.QUOTE_MINIMAL)
        return datasets.Dataset.from_dict(table)
    if suffix in (".json", ".jsonl"):
        return datasets.Dataset.from_json(str(path))
    raise ValueError(f"{path}: unsupported file type {suffix!r}; use .csv, .tsv, .json or .jsonl.")


# ---------------------------------------------------------------------------------------------- preparation
def tokenize_for_classification(
    dataset: Any, tokenizer: Any, text_columns: Sequence[str], max_length: int = 128
) -> Any:
    """Tokenise one or two text columns (truncated to `max_length`, not padded: pad per batch with
    `DataCollatorWithPadding`); keeps the label column and drops the text. Missing values are refused."""
    import datasets

    text_columns = list(text_columns)
    if not 1 <= len(text_columns) <= 2:
        raise ValueError(f"Give one or two text columns (a sentence or a pair); got {text_columns}.")
    splits = [dataset] if isinstance(dataset, datasets.Dataset) else list(dataset.values())
    if missing := [c for c in text_columns if c not in splits[0].column_names]:
        raise ValueError(f"The dataset lacks text column(s) {missing}; found {splits[0].column_names}.")
    labels = find_label_column(splits[0].column_names, "The dataset")
    for split in splits:
        for column in text_columns if labels is None else [*text_columns, labels]:
            check_present(split[column], f"Column {column!r}")

    def encode(batch):
        return tokenizer(*[batch[c] for c in text_columns], truncation=True, max_length=max_length)

    drop = [c for c in splits[0].column_names if c != labels]
    return dataset.map(encode, batched=True, remove_columns=drop, desc="tokenising")


def held_out_split(
    train: datasets.Dataset, size: int | float, seed: int = 0
) -> tuple[datasets.Dataset, datasets.Dataset]:
    """A deterministic held-out slice of train (stratified by label for classification): (rest, held_out)."""
    import datasets

    n = len(train)
    count = int(round(size * n)) if isinstance(size, float) and size < 1 else int(size)
    if not 0 < count < n:
        raise ValueError(f"held-out size {size!r} gives {count} of {n} examples; it must leave both parts non-empty.")
    stratify = "label" if isinstance(train.features.get("label"), datasets.ClassLabel) else None
    try:
        parts = train.train_test_split(test_size=count, seed=seed, stratify_by_column=stratify)
    except ValueError:  # a class too small to stratify
        parts = train.train_test_split(test_size=count, seed=seed)
    return parts["train"], parts["test"]
