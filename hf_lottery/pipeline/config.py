"""Settings of a pipeline run: `PipelineConfig` (what to run, on what data), `TicketSearchConfig` (how tickets are
searched) and `transformers.TrainingArguments` (how every fine-tune trains), parsed together by
`transformers.HfArgumentParser` and validated before any work starts.

No field of `PipelineConfig` shares a name with a `TrainingArguments` or `TicketSearchConfig` field, so the three
parse side by side and each flag has one meaning.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import re
import shlex
import sys
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Literal

import yaml

from .. import distributed
from ..config import TicketSearchConfig, resolve_search_config
from ..provenance import DEFAULT_MODEL, base_model_id


STAGES = ("finetune", "search", "sample", "evaluate", "retrain", "patterns", "report", "push")
METHODS = ("structured", "magnitude", "imp")  # imp: iterative magnitude pruning with rewinding (an extension)
DEFAULT_METHODS = ("structured", "magnitude")
KINDS = ("good", "random", "bad")
PAPER_SEEDS = (1337, 42, 86, 71, 166)
PAPER_GLOBAL_BATCH = 32  # examples per optimizer step, whatever the number of processes

# The paper's fine-tuning hyper-parameters where they differ from the Trainer's defaults, plus what a pipeline
# needs (no checkpoints: a unit is redone whole after a crash; no per-step logging or reporting).
PAPER_TRAINING_DEFAULTS: dict[str, Any] = {
    "learning_rate": 2e-5,
    "per_device_train_batch_size": None,  # unset: PAPER_GLOBAL_BATCH over the data-parallel processes
    "num_train_epochs": 3.0,
    "report_to": "none",
    "save_strategy": "no",
    "logging_strategy": "no",
}
# TrainingArguments that change where or how a run is logged or published, not its numbers.
_NON_RESULT_PREFIXES = (
    "output_dir", "overwrite_output_dir", "logging_", "log_", "report_to", "push_to_hub", "hub_", "disable_tqdm",
    "run_name", "save_", "dataloader_num_workers", "dataloader_persistent", "dataloader_prefetch", "resume_from",
    "project", "trackio",
)  # fmt: skip
SECRET_FIELDS = ("hub_token",)


@dataclass
class PipelineConfig:
    """What a pipeline run does and on which data (the search and Trainer settings have their own dataclasses).

    Example:

    ```python
    >>> config = PipelineConfig(task_name="demo", seeds=[42], max_train_samples=64)
    >>> config.stages[:3], config.compact_retrain
    (['finetune', 'search', 'sample'], True)
    >>> PipelineConfig(task_name="demo", max_train_samples=0)
    Traceback (most recent call last):
    ...
    ValueError: `max_train_samples` must be an integer >= 1, or unset for all examples; got 0.

    ```
    """

    task_name: str | list[str] = field(
        default=None,
        metadata={
            "help": "GLUE task (cola, sst2, mrpc, stsb, qqp, mnli, mnli-mm, qnli, rte, wnli) or 'demo'; several: one "
            "run per task in OUTPUT_DIR/TASK, units spread over all of them, and a cross-task report."
        },
    )
    model_name_or_path: str = field(
        default=DEFAULT_MODEL,
        metadata={"help": "Pre-trained model (Hub id or folder); 'minilm' = the packaged all-MiniLM-L6-v2."},
    )
    data_dir: str | list[str] = field(
        default=None,
        metadata={"help": "Local folder of the task's TSVs, or a GLUE root holding the task folders (else the Hub); "
                  "several tasks: one root, or one folder per task."},
    )  # fmt: skip
    seeds: list[int] = field(
        default_factory=lambda: list(PAPER_SEEDS), metadata={"help": "Fine-tuning seeds, one full run each."}
    )
    stages: list[str] = field(
        default_factory=lambda: list(STAGES), metadata={"help": f"Stages to run, from {', '.join(STAGES)}."}
    )
    methods: list[str] = field(
        default_factory=lambda: list(DEFAULT_METHODS),
        metadata={
            "help": f"Ticket searches, from {', '.join(METHODS)} (imp: iterative magnitude pruning, an extension)."
        },
    )
    kinds: list[str] = field(
        default_factory=lambda: list(KINDS), metadata={"help": "Subnetworks to re-fine-tune: good, random, bad."}
    )
    max_seq_length: int = field(default=128, metadata={"help": "Maximum tokens per example (the paper: 128)."})
    max_train_samples: int | None = field(
        default=None, metadata={"help": "Train on a seeded subset of this size (>= 1; default: all)."}
    )
    max_eval_samples: int | None = field(
        default=None, metadata={"help": "Evaluate on the first examples of dev, this many (>= 1; default: all)."}
    )
    pattern_examples: int = field(
        default=100,
        metadata={"help": "Dev examples (sampled with the first seed) whose attention maps classify heads."},
    )
    pattern_classifier: str | None = field(
        default=None,
        metadata={"help": "Pattern classifier folder ('hf-lottery patterns train'); default: the shipped one."},
    )
    pattern_norm_based: bool = field(
        default=False, metadata={"help": "Classify norm-based attention maps (Kobayashi et al. 2020) instead of raw."}
    )
    save_retrained_models: bool = field(
        default=False, metadata={"help": "Keep every re-fine-tuned model on disk (dense, ticket baked in)."}
    )
    compact_retrain: bool = field(
        default=True,
        metadata={"help": "Re-fine-tune structured and super tickets as physically smaller (compacted) models."},
    )
    super_retrain_seeds: int | None = field(
        default=None,
        metadata={
            "help": "Re-fine-tune the super tickets with the first N seeds only (0: evaluate them pruned only; "
            "default: every seed)."
        },
    )
    overwrite_output_dir: bool = field(
        default=False, metadata={"help": "Write into a non-empty --output_dir that holds no run (its files are kept)."}
    )
    distribute: Literal["units", "data"] = field(
        default="units",
        metadata={"help": "Several processes: 'units' runs whole units side by side, 'data' each over all of them."},
    )

    def __post_init__(self):
        limit = self.super_retrain_seeds
        if limit is not None and (not _is_int(limit) or limit < 0):
            raise ValueError(f"`super_retrain_seeds` must be an integer >= 0 or unset; got {limit!r}.")
        from ..tasks.glue import GLUE_TASKS, _task_folder, canonical_task_name

        tasks = self.task_name if isinstance(self.task_name, list) else [self.task_name]
        folders = self.data_dir if isinstance(self.data_dir, list) else [self.data_dir]
        self.task_name = tasks if len(tasks) > 1 else tasks[0]  # a list only for several
        self.data_dir = folders if len(folders) > 1 else folders[0]
        if not all(isinstance(task, str) and task for task in tasks):
            raise ValueError("`task_name` is required (a GLUE task or 'demo', or several).")
        try:
            if len({canonical_task_name(task) for task in tasks}) < len(tasks):
                mm = " (mnli-mm is MNLI scored on its mismatched dev set: run it in a folder of its own)"
                raise ValueError(f"each task once; got {tasks}{mm if 'mnli-mm' in tasks else ''}.")
        except ValueError as err:
            raise ValueError(f"`task_name`: {err}") from None
        if len(folders) not in (1, len(tasks)):
            raise ValueError(f"`data_dir`: one folder (a GLUE root) or one per task ({len(tasks)}); got {folders}.")
        for name, allowed in (("stages", STAGES), ("methods", METHODS), ("kinds", KINDS)):
            values = getattr(self, name)
            unknown = [v for v in values if v not in allowed]
            if unknown or not values:
                raise ValueError(f"`{name}` must be one or more of {list(allowed)}; got {list(values)}.")
        if "good" not in self.kinds:
            raise ValueError("`kinds` must include 'good': random and bad subnetworks are sized after it.")
        if self.distribute not in ("units", "data"):
            raise ValueError(f"`distribute` must be 'units' or 'data'; got {self.distribute!r}.")
        if not self.seeds or not all(_is_int(s) and 0 <= s < 2**32 for s in self.seeds):
            raise ValueError(f"`seeds` must be one or more integers in [0, 2**32); got {self.seeds!r}.")
        if len(set(self.seeds)) != len(self.seeds):
            raise ValueError(f"`seeds` must be distinct; got {self.seeds}.")
        for name in ("max_train_samples", "max_eval_samples"):
            value = getattr(self, name)
            if value is not None and (not _is_int(value) or value < 1):
                raise ValueError(f"`{name}` must be an integer >= 1, or unset for all examples; got {value!r}.")
        for name in ("max_seq_length", "pattern_examples"):
            if not _is_int(getattr(self, name)) or getattr(self, name) < 1:
                raise ValueError(f"`{name}` must be an integer >= 1; got {getattr(self, name)!r}.")
        for folder in folders:
            if folder is not None and (not isinstance(folder, str) or not Path(folder).is_dir()):
                raise ValueError(f"`data_dir` {folder!r} is not a folder.")
        root = folders[0] if len(tasks) > 1 and len(folders) == 1 else None  # a GLUE root, not one task's folder
        for spec in [GLUE_TASKS[canonical_task_name(task)] for task in tasks] if root else []:
            if spec.name == "demo":  # generated, no folder
                continue
            try:
                _task_folder(spec, Path(root), root=True)
            except FileNotFoundError:
                raise ValueError(
                    f"`data_dir` {root!r} serves {len(tasks)} tasks, so it must be a GLUE root; it has no "
                    f"{spec.folder}/train.tsv. Give the folder holding the task folders, or one folder per task."
                ) from None
        if self.pattern_classifier is not None and not Path(self.pattern_classifier).is_dir():
            raise ValueError(f"`pattern_classifier` {self.pattern_classifier!r} is not a folder.")
        if _looks_like_path(self.model_name_or_path) and not Path(self.model_name_or_path).expanduser().exists():
            raise ValueError(f"`model_name_or_path` {self.model_name_or_path!r} is not a folder (nor a Hub id).")


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _looks_like_path(name: str) -> bool:
    """A local path rather than a Hub id (``owner/name``): absolute, relative with ./ or ~, or 2+ slashes."""
    return name != DEFAULT_MODEL and (name.startswith(("/", ".", "~")) or name.count("/") > 1)


@dataclass
class RunSettings:
    """The three settings groups of one run, checked together.

    Args:
        pipeline: what to run (`PipelineConfig`).
        search: how tickets are searched (`TicketSearchConfig`).
        training: `TrainingArguments` values that differ from the Trainer's defaults (the paper's defaults
            included); every fine-tune of the run builds its `TrainingArguments` from them.

    Example:

    ```python
    >>> settings = RunSettings.from_kwargs(task_name="demo", output_dir="runs/demo", threshold=0.8, warmup_steps=3)
    >>> settings.search.threshold, settings.training["warmup_steps"], settings.training["learning_rate"]
    (0.8, 3, 2e-05)
    >>> RunSettings.from_kwargs(task_name="demo", output_dir="x", learning_rat=1e-4)
    Traceback (most recent call last):
    ...
    TypeError: Unknown setting(s) ['learning_rat'] (not a PipelineConfig, TicketSearchConfig or TrainingArguments field).

    ```
    """

    pipeline: PipelineConfig
    search: TicketSearchConfig = field(default_factory=TicketSearchConfig)
    training: dict[str, Any] = field(default_factory=lambda: dict(PAPER_TRAINING_DEFAULTS))

    def __post_init__(self):
        training = self.training
        if not training.get("output_dir"):
            raise ValueError("`output_dir` is required: the folder of the run (re-running resumes it).")
        _validate_training(training)
        _ = self.per_device_train_batch_size  # a global batch that does not split over the processes: refused
        if "push" in self.pipeline.stages and training.get("push_to_hub") and not training.get("hub_model_id"):
            raise ValueError("`push_to_hub` needs `hub_model_id` (e.g. 'you/bert-mrpc-tickets').")
        if training.get("push_to_hub") and isinstance(self.pipeline.task_name, list):
            raise ValueError(
                "`push_to_hub` publishes one task's ticket: run several tasks without it, then push one with "
                "`hf-lottery push OUTPUT_DIR/TASK/seed_S/tickets/structured/good REPO --model_dir OUTPUT_DIR/TASK/seed_S/finetuned`."
            )

    @classmethod
    def from_kwargs(cls, **values: Any) -> RunSettings:
        """Split keyword arguments over the three dataclasses (the paper's training defaults underneath)."""
        from transformers import TrainingArguments

        names = [{f.name for f in fields(kind)} for kind in (PipelineConfig, TicketSearchConfig, TrainingArguments)]
        if unknown := set(values).difference(*names):
            raise TypeError(
                f"Unknown setting(s) {sorted(unknown)} (not a PipelineConfig, TicketSearchConfig or "
                "TrainingArguments field)."
            )
        pipeline, search, training = ({k: v for k, v in values.items() if k in known} for known in names)
        return cls(
            PipelineConfig(**pipeline), resolve_search_config(**search), {**PAPER_TRAINING_DEFAULTS, **training}
        )

    @property
    def output_dir(self) -> Path:
        return Path(self.training["output_dir"])

    def per_task(self) -> list[RunSettings]:
        """The single-task runs of these settings: itself for one task, else one per task in ``OUTPUT_DIR/TASK``
        with its data folder (a GLUE root given once serves every task)."""
        from ..tasks.glue import canonical_task_name

        tasks, folders = self.pipeline.task_name, self.pipeline.data_dir
        if isinstance(tasks, str):
            return [self]
        folders = folders if isinstance(folders, list) else [folders] * len(tasks)
        return [
            RunSettings(
                dataclasses.replace(self.pipeline, task_name=task, data_dir=folder), self.search,
                {**self.training, "output_dir": str(self.output_dir / canonical_task_name(task))},
            )
            for task, folder in zip(tasks, folders)
        ]  # fmt: skip

    @property
    def data_parallel_processes(self) -> int:
        """The processes that train one unit together: every launched one under ``distribute="data"``, else 1."""
        return distributed.launched_processes() if self.pipeline.distribute == "data" else 1

    @property
    def per_device_train_batch_size(self) -> int:
        """The one given, else the paper's global batch of 32 over data-parallel processes x accumulation steps."""
        share = self.data_parallel_processes * self.training.get("gradient_accumulation_steps", 1)
        if (given := self.training.get("per_device_train_batch_size")) is None and PAPER_GLOBAL_BATCH % share:
            raise ValueError(
                f"`per_device_train_batch_size`: the global batch of {PAPER_GLOBAL_BATCH} does not split over {share} "
                "(data-parallel processes x accumulation steps); set it, or use `distribute` units."
            )
        return given or PAPER_GLOBAL_BATCH // share

    @property
    def effective_train_batch_size(self) -> int:
        """Examples per optimizer step: per-device batch x data-parallel processes x gradient accumulation steps."""
        share = self.data_parallel_processes * self.training.get("gradient_accumulation_steps", 1)
        return self.per_device_train_batch_size * share

    def training_arguments(self, output_dir: str | os.PathLike, seed: int, **overrides: Any):
        """`TrainingArguments` of one fine-tune: the run's settings, this unit's folder and seed, never a Hub push."""
        import torch
        from transformers import TrainingArguments

        values = dict(self.training)
        values.update(output_dir=str(output_dir), seed=seed, push_to_hub=False, hub_token=None)
        values.setdefault("data_seed", seed)
        values.setdefault("use_cpu", not torch.cuda.is_available())
        values.update(overrides, per_device_train_batch_size=self.per_device_train_batch_size)
        return TrainingArguments(**values)

    def command_line(self, program: str = "hf-lottery run") -> str:
        """The command that reproduces these settings: `program` and each flag whose value is not its default, rebuilt
        from the parsed values (so no secret, whatever its spelling on the command line)."""
        changed = {f.name: getattr(group, f.name) for group in (self.pipeline, self.search) for f in fields(group)
                   if f.init and getattr(group, f.name) != _field_default(f)}  # fmt: skip
        changed.update({k: v for k, v in self.training.items() if PAPER_TRAINING_DEFAULTS.get(k, self) != v})
        words = [program]
        for name, value in changed.items():
            if name not in SECRET_FIELDS and value is not None:
                values = [] if value is True else value if isinstance(value, (list, tuple)) else [value]
                texts = (json.dumps(v) if isinstance(v, dict) else str(getattr(v, "value", v)) for v in values)
                words += [f"--{name}", *map(shlex.quote, texts)]
        return " ".join(words)

    def to_dict(self) -> dict[str, Any]:
        """Every setting, JSON-ready, without secrets (the Hub token is never written)."""
        return {
            "pipeline": dataclasses.asdict(self.pipeline),
            "search": self.search.to_dict(),
            "training": {k: v for k, v in self.training.items() if k not in SECRET_FIELDS},
        }

    def fingerprint(self) -> dict[str, Any]:
        """What a resumed run must agree on: the settings that change results, and the sha256 (16 hex digits) of the
        files read: the task's TSVs (``data_dir/dev.tsv``) and a local model's (``model_name_or_path/config.json``)."""
        from ..atomic import sha256_file
        from ..tasks.glue import GLUE_TASKS, _task_folder, canonical_task_name

        config, files = self.pipeline, {}
        if isinstance(config.task_name, list):  # several tasks: each task's run checks its own settings
            return {"task_name": [canonical_task_name(task) for task in config.task_name]}
        keep = ("task_name", "model_name_or_path", "max_seq_length", "max_train_samples", "max_eval_samples",
                "compact_retrain", "super_retrain_seeds", "pattern_examples")  # fmt: skip
        found = {name: getattr(config, name) for name in keep}
        found.update((k, v) for k, v in self.search.to_dict().items() if k != "on_degenerate")  # warns, or stops
        found.update(
            {k: v for k, v in sorted(self.training.items()) if not k.startswith(_NON_RESULT_PREFIXES) and k != "seed"}
        )
        found.update(effective_train_batch_size=self.effective_train_batch_size,
                     data_parallel_processes=self.data_parallel_processes)  # fmt: skip
        task, model = GLUE_TASKS[canonical_task_name(config.task_name)], Path(config.model_name_or_path).expanduser()
        if config.data_dir is not None and task.name != "demo":
            folder = _task_folder(task, Path(config.data_dir))
            for name in ("train.tsv", *task.dev_files.values()):
                files[f"data_dir/{task.folder}/{name}"] = folder / name  # alike from a GLUE root or the task's folder
        if config.model_name_or_path != DEFAULT_MODEL and model.is_dir():
            files.update({f"model_name_or_path/{path.name}": path for path in model.iterdir() if path.is_file()})
        return {**found, **{key: sha256_file(path)[:16] for key, path in sorted(files.items()) if path.is_file()}}


def _field_default(f: dataclasses.Field) -> Any:
    return f.default_factory() if f.default_factory is not dataclasses.MISSING else f.default


def _validate_training(training: dict[str, Any]) -> None:
    from transformers import TrainingArguments

    if "seed" in training:
        raise ValueError("`seed` is set per fine-tune from `seeds`; give the run's seeds with `seeds` instead.")
    for name in ("learning_rate", "num_train_epochs"):
        value = training.get(name)
        if value is not None and (not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0):
            raise ValueError(f"`{name}` must be a number > 0; got {value!r}.")
    for pair in (("bf16", "fp16"), ("bf16_full_eval", "fp16_full_eval")):
        if all(training.get(name) for name in pair):
            raise ValueError(f"`{pair[0]}` and `{pair[1]}` cannot both be set: choose one mixed precision.")
    batch = training.get("per_device_train_batch_size")
    if batch is not None and (not _is_int(batch) or batch < 1):
        raise ValueError(f"`per_device_train_batch_size` must be an integer >= 1; got {batch!r}.")
    try:
        TrainingArguments(**{**training, "output_dir": str(training["output_dir"])})
    except TypeError as err:
        raise TypeError(f"TrainingArguments: {err}") from None


def make_parser(prog: str | None = None, description: str | None = None, defaults: dict[str, Any] | None = None):
    """An `HfArgumentParser` over `PipelineConfig`, `TicketSearchConfig` and `TrainingArguments`, with the paper's
    training defaults (and `defaults`) in place; ``--help`` shows every flag with its help and default."""
    from transformers import HfArgumentParser, TrainingArguments

    parser = HfArgumentParser(
        (PipelineConfig, TicketSearchConfig, TrainingArguments),
        allow_abbrev=False,
        prog=prog,
        description=description or "The paper's pipeline on a GLUE task (fine-tune, find, re-fine-tune, report).",
    )
    return set_defaults(parser, {**PAPER_TRAINING_DEFAULTS, **(defaults or {})})


def set_defaults(parser, values: dict[str, Any]):
    """`parser` with `values` as its defaults; a name the parser does not offer (a setting a newer library renamed)
    raises instead of being dropped silently."""
    if unknown := sorted(set(values) - {action.dest for action in parser._actions}):
        raise TypeError(f"Default(s) for {unknown}, which {parser.prog!r} does not offer as flags.")
    parser.set_defaults(**values)
    return parser


def parse_run_args(
    argv: Sequence[str] | None = None,
    prog: str | None = None,
    description: str | None = None,
    defaults: dict[str, Any] | None = None,
) -> RunSettings:
    """Parse and validate a run's flags; an invalid setting exits with status 2 and a message naming the flag."""
    return parse_into(make_parser(prog, description, defaults), argv, RunSettings, keep=PAPER_TRAINING_DEFAULTS)


def parse_into(parser, argv: Sequence[str] | None, build: Callable | None = None, keep: Collection[str] = ()) -> Any:
    """The instances of an `HfArgumentParser`'s dataclasses parsed from `argv` (passed to `build` when given); a
    `ValueError` or `TypeError` exits with status 2 and a message naming the flag. `TrainingArguments` comes as the
    dict of the values that differ from the Trainer's defaults or are named in `keep` (see `RunSettings.training`).
    A flag is given once, spelled in full (`allow_abbrev=False`); an error never repeats a value (it may be a token).
    ``--config FILE.yaml`` gives settings by flag name, below the command line's; an unknown key is refused by name."""
    argv = list(sys.argv[1:] if argv is None else argv)
    parser.add_argument("--config", metavar="FILE.yaml", help="YAML settings by flag name; flags override them.")
    pre = argparse.ArgumentParser(prog=parser.prog, add_help=False, allow_abbrev=False)
    pre.add_argument("--config")
    if path := pre.parse_known_args(argv)[0].config:
        try:
            values = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
        except (OSError, ValueError, yaml.YAMLError) as err:  # a decoding error is a ValueError
            parser.error(f"--config {path}: cannot read it as YAML ({type(err).__name__}).")
        flags = {action.dest for action in parser._actions if action.option_strings} - {"help", "config"}
        unknown = sorted(str(k) for k in values if k not in flags) if isinstance(values, dict) else ["(no mapping)"]
        if unknown:
            parser.error(f"--config {path}: unknown setting(s) {', '.join(unknown)}; keys are flag names (--help).")
        for action in parser._actions:
            action.required = action.required and action.dest not in values
        parser.set_defaults(**values)
    seen: dict[str, str] = {}
    for flag in (arg.partition("=")[0] for arg in argv[: argv.index("--") if "--" in argv else None]):
        if (action := parser._option_string_actions.get(flag)) is None:
            continue
        if action.dest in seen:
            parser.error(f"--{action.dest} is given twice ({seen[action.dest]} and {flag}); give each setting once.")
        seen[action.dest] = flag
    namespace, unknown = parser.parse_known_args(argv)
    if unknown:
        shown = " ".join(arg.partition("=")[0] if arg.startswith("-") else "VALUE" for arg in unknown)
        parser.error(f"unrecognized arguments: {shown} (values not shown); spell each flag in full (see --help).")
    namespace = vars(namespace)
    try:
        built = tuple(_from_flags(kind, namespace, keep) for kind in parser.dataclass_types)
        return build(*built) if build else built
    except (ValueError, TypeError) as err:
        parser.error(flag_message(err))


def _from_flags(kind: type, namespace: dict[str, Any], keep: Collection[str]) -> Any:
    from transformers import HfArgumentParser, TrainingArguments

    if kind is not TrainingArguments:
        return kind(**{f.name: namespace[f.name] for f in fields(kind) if f.init})
    unset = vars(HfArgumentParser(TrainingArguments).parse_args([]))  # the parser's own spelling of a default
    values = {}
    for f in fields(kind):
        if not f.init or f.name not in namespace:  # a field the parser does not offer keeps the Trainer's default
            continue
        if namespace[f.name] not in (_field_default(f), unset.get(f.name, _field_default(f))) or f.name in keep:
            values[f.name] = namespace[f.name]
    return values


def flag_message(err: BaseException) -> str:
    """An error message with field names (`name`) written as the flags a user types (--name)."""
    return re.sub(r"`([a-z_][a-z0-9_]*)`", r"--\1", str(err)).splitlines()[0] if str(err) else repr(err)


def check_resume(settings: RunSettings, previous: dict[str, Any] | None, finished_models: dict[str, str]) -> None:
    """Refuse to mix a run with one of other settings, or with another model, in the same folder.

    Args:
        previous: the folder's ``run_config.json`` (None when there is none).
        finished_models: base model recorded by each finished fine-tune (``"seed_S" -> model``).
    """
    root = settings.output_dir
    if previous is not None:
        old, new = previous.get("fingerprint", {}), settings.fingerprint()
        if isinstance(tasks := old.get("task_name"), list) != isinstance(new["task_name"], list):
            if isinstance(tasks, list):
                raise ValueError(
                    f"{root} holds a run of several tasks ({', '.join(tasks)}); each of them is a run in its own "
                    f"folder, e.g. --output_dir {root / tasks[0]}."
                )
            raise ValueError(f"{root} holds a run of one task ({tasks}); use another --output_dir for several tasks.")
        changed = {k: (old.get(k, "unset"), v) for k, v in new.items() if old.get(k, "unset") != v}
        changed.update({k: (v, "unset") for k, v in old.items() if k not in new})
        if changed:
            details = ", ".join(f"--{k} {a!r} -> {b!r}" for k, (a, b) in sorted(changed.items()))
            raise ValueError(f"{root} holds a run with other settings ({details}); use another --output_dir.")
    current = base_model_id(settings.pipeline.model_name_or_path)
    for unit, model in sorted(finished_models.items()):
        if model != current:
            raise ValueError(
                f"{root}/{unit} was fine-tuned from {model!r}, not from --model_name_or_path {current!r}; "
                "use another --output_dir (or the same model) instead of mixing results of two models."
            )
