"""Settings of a pipeline run: `PipelineConfig` (what to run, on what data), `TicketSearchConfig` (how tickets are
searched) and `transformers.TrainingArguments` (how every fine-tune trains), parsed together by
`transformers.HfArgumentParser` and validated before any work starts.

No field of `PipelineConfig` shares a name with a `TrainingArguments` or `TicketSearchConfig` field, so the three
parse side by side and each flag has one meaning.
"""

from __future__ import annotations

import dataclasses
import math
import os
import re
import shlex
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from ..config import TicketSearchConfig, resolve_search_config
from ..provenance import DEFAULT_MODEL, base_model_id


STAGES = ("finetune", "search", "sample", "evaluate", "retrain", "patterns", "report", "push")
METHODS = ("structured", "magnitude", "imp")  # imp: iterative magnitude pruning with rewinding (an extension)
DEFAULT_METHODS = ("structured", "magnitude")
KINDS = ("good", "random", "bad")
PAPER_SEEDS = (1337, 42, 86, 71, 166)

# The paper's fine-tuning hyper-parameters where they differ from the Trainer's defaults, plus what a pipeline
# needs (no checkpoints: a unit is redone whole after a crash; no per-step logging or reporting).
PAPER_TRAINING_DEFAULTS: dict[str, Any] = {
    "learning_rate": 2e-5,
    "per_device_train_batch_size": 32,
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

    task_name: str = field(
        default=None,
        metadata={"help": "GLUE task (cola, sst2, mrpc, stsb, qqp, mnli, mnli-mm, qnli, rte, wnli) or 'demo'."},
    )
    model_name_or_path: str = field(
        default=DEFAULT_MODEL,
        metadata={"help": "Pre-trained model (Hub id or folder); 'minilm' = the packaged all-MiniLM-L6-v2."},
    )
    data_dir: str | None = field(default=None, metadata={"help": "Local GLUE folder of TSVs (else the Hub)."})
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

    def __post_init__(self):
        limit = self.super_retrain_seeds
        if limit is not None and (not _is_int(limit) or limit < 0):
            raise ValueError(f"`super_retrain_seeds` must be an integer >= 0 or unset; got {limit!r}.")
        if not isinstance(self.task_name, str) or not self.task_name:
            raise ValueError("`task_name` is required (a GLUE task or 'demo').")
        from ..tasks.glue import canonical_task_name

        try:
            canonical_task_name(self.task_name)
        except ValueError as err:
            raise ValueError(f"`task_name`: {err}") from None
        for name, allowed in (("stages", STAGES), ("methods", METHODS), ("kinds", KINDS)):
            values = getattr(self, name)
            unknown = [v for v in values if v not in allowed]
            if unknown or not values:
                raise ValueError(f"`{name}` must be one or more of {list(allowed)}; got {list(values)}.")
        if "good" not in self.kinds:
            raise ValueError("`kinds` must include 'good': random and bad subnetworks are sized after it.")
        if not self.seeds or not all(_is_int(s) for s in self.seeds):
            raise ValueError(f"`seeds` must be one or more integers; got {self.seeds!r}.")
        if len(set(self.seeds)) != len(self.seeds):
            raise ValueError(f"`seeds` must be distinct; got {self.seeds}.")
        for name in ("max_train_samples", "max_eval_samples"):
            value = getattr(self, name)
            if value is not None and (not _is_int(value) or value < 1):
                raise ValueError(f"`{name}` must be an integer >= 1, or unset for all examples; got {value!r}.")
        for name in ("max_seq_length", "pattern_examples"):
            if not _is_int(getattr(self, name)) or getattr(self, name) < 1:
                raise ValueError(f"`{name}` must be an integer >= 1; got {getattr(self, name)!r}.")
        if self.data_dir is not None and not Path(self.data_dir).is_dir():
            raise ValueError(f"`data_dir` {self.data_dir!r} is not a folder.")
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
        if "push" in self.pipeline.stages and training.get("push_to_hub") and not training.get("hub_model_id"):
            raise ValueError("`push_to_hub` needs `hub_model_id` (e.g. 'you/bert-mrpc-tickets').")

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

    def training_arguments(self, output_dir: str | os.PathLike, seed: int, **overrides: Any):
        """`TrainingArguments` of one fine-tune: the run's settings, this unit's folder and seed, never a Hub push."""
        from transformers import TrainingArguments

        values = dict(self.training)
        values.update(output_dir=str(output_dir), seed=seed, push_to_hub=False, hub_token=None)
        values.setdefault("data_seed", seed)
        values.update(overrides)
        return TrainingArguments(**values)

    def to_dict(self) -> dict[str, Any]:
        """Every setting, JSON-ready, without secrets (the Hub token is never written)."""
        return {
            "pipeline": dataclasses.asdict(self.pipeline),
            "search": self.search.to_dict(),
            "training": {k: v for k, v in self.training.items() if k not in SECRET_FIELDS},
        }

    def fingerprint(self) -> dict[str, Any]:
        """The settings that change results: a resumed run must agree on every one (flag name -> value)."""
        keep = ("task_name", "model_name_or_path", "data_dir", "max_seq_length", "max_train_samples",
                "max_eval_samples", "compact_retrain", "super_retrain_seeds")  # fmt: skip
        found = {name: getattr(self.pipeline, name) for name in keep}
        found.update(self.search.to_dict())
        found.update(
            {k: v for k, v in sorted(self.training.items()) if not k.startswith(_NON_RESULT_PREFIXES) and k != "seed"}
        )
        return found


def _validate_training(training: dict[str, Any]) -> None:
    from transformers import TrainingArguments

    if "seed" in training:
        raise ValueError("`seed` is set per fine-tune from `seeds`; give the run's seeds with `seeds` instead.")
    for name in ("learning_rate", "num_train_epochs"):
        value = training.get(name)
        if value is not None and (not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0):
            raise ValueError(f"`{name}` must be a number > 0; got {value!r}.")
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
        prog=prog,
        description=description or "The paper's pipeline on a GLUE task (fine-tune, find, re-fine-tune, report).",
    )
    parser.set_defaults(**{**PAPER_TRAINING_DEFAULTS, **(defaults or {})})
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
    dict of the values that differ from the Trainer's defaults or are named in `keep` (see `RunSettings.training`)."""
    namespace = vars(parser.parse_args(argv))
    try:
        built = tuple(_from_flags(kind, namespace, keep) for kind in parser.dataclass_types)
        return build(*built) if build else built
    except (ValueError, TypeError) as err:
        parser.error(flag_message(err))


def _from_flags(kind: type, namespace: dict[str, Any], keep: Collection[str]) -> Any:
    from transformers import TrainingArguments

    if kind is not TrainingArguments:
        return kind(**{f.name: namespace[f.name] for f in fields(kind) if f.init})
    values = {}
    for f in fields(kind):
        if not f.init or f.name not in namespace:  # a field the parser does not offer keeps the Trainer's default
            continue
        default = f.default_factory() if f.default_factory is not dataclasses.MISSING else f.default
        if namespace[f.name] != default or f.name in keep:
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
        old = previous.get("fingerprint", {})
        changed = {k: (old.get(k, "unset"), v) for k, v in settings.fingerprint().items() if old.get(k, "unset") != v}
        changed.update({k: (v, "unset") for k, v in old.items() if k not in settings.fingerprint()})
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


SECRET_FLAGS = ("--hub_token", "--token")


def redact_args(args: Sequence[str]) -> list[str]:
    """A command line with every secret flag's value replaced by ``***`` (``--hub_token X`` and ``--hub_token=X``).

    Example:

    ```python
    >>> redact_args(["run", "--hub_token", "hf_abc", "--token=hf_def", "--seeds", "1"])
    ['run', '--hub_token', '***', '--token=***', '--seeds', '1']

    ```
    """
    out = []
    for previous, arg in zip([None, *args], args):
        flag, equals, _ = arg.partition("=")
        out.append("***" if previous in SECRET_FLAGS else f"{flag}=***" if equals and flag in SECRET_FLAGS else arg)
    return out


def command_line(prefix: str, args: Sequence[str]) -> str:
    """The shell-quoted command line to record, secrets redacted."""
    return " ".join([prefix, *(shlex.quote(a) for a in redact_args(args))])
