"""`hf-lottery patterns ...` and `hf-lottery label-patterns`: the attention-pattern classifier and analysis."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from . import echo, load_model, parse_dataclasses, run_context
from .table import COMMANDS


ACTIONS = {
    "train": "train the CNN on the paper's labelled maps (--data) or on generated synthetic maps (--synthetic N)",
    "evaluate": "per-class and weighted F1 and the confusion matrix on labelled maps",
    "predict": "the pattern of every head of a model, and survivors vs. all heads",
}


@dataclass
class TrainPatternsArguments:
    output_dir: str = field(metadata={"help": "Where the classifier is saved."})
    data: str | None = field(default=None, metadata={"help": "Folder in the paper's format (raw/ or normed/)."})
    synthetic: int | None = field(default=None, metadata={"help": "Generate N synthetic maps per pattern instead."})
    format: Literal["raw", "normed"] = field(default="raw", metadata={"help": "Layout of --data."})
    epochs: int = field(default=15, metadata={"help": "Training epochs."})
    input_size: int = field(default=64, metadata={"help": "Maps are cropped / padded to this size."})
    seed: int = field(default=0, metadata={"help": "Seed of the split, the initialisation and synthetic maps."})
    raw_values: bool = field(default=False, metadata={"help": "Feed unnormalised maps, as the paper's code did."})

    def __post_init__(self):
        if (self.data is None) == (self.synthetic is None):
            raise ValueError("Give exactly one of `data` (a paper-format folder) or `synthetic` (maps per pattern).")
        if self.synthetic is not None and self.synthetic < 1:
            raise ValueError(f"`synthetic` must be an integer >= 1; got {self.synthetic}.")


@dataclass
class EvaluatePatternsArguments:
    classifier: str | None = field(default=None, metadata={"help": "Checkpoint folder (default: the shipped one)."})
    data: str | None = field(default=None, metadata={"help": "Paper-format folder (default: fresh synthetic maps)."})
    format: Literal["raw", "normed"] = field(default="raw", metadata={"help": "Layout of --data."})
    seed: int = field(default=123, metadata={"help": "Seed of the synthetic maps."})


@dataclass
class MapsArguments:
    model: str = field(metadata={"help": "Fine-tuned model folder or Hub id to take maps from."})
    task_name: str = field(metadata={"help": "GLUE task or 'demo' (its dev set gives the maps)."})
    data_dir: str | None = field(default=None, metadata={"help": "Local GLUE folder (else the Hub)."})
    num_examples: int = field(default=100, metadata={"help": "Dev examples (the first ones) whose maps are used."})

    def __post_init__(self):
        if self.num_examples < 1:
            raise ValueError(f"`num_examples` must be an integer >= 1; got {self.num_examples}.")


@dataclass
class PredictPatternsArguments:
    norm_based: bool = field(default=False, metadata={"help": "Classify norm-based maps (Kobayashi et al.)."})
    classifier: str | None = field(default=None, metadata={"help": "Checkpoint folder (default: the shipped one)."})
    tickets: list[str] = field(
        default_factory=list, metadata={"help": "Ticket folders (seeds): survivors = heads kept in all."}
    )
    output: str | None = field(default=None, metadata={"help": "Write the result as JSON here."})


@dataclass
class LabelArguments:
    output_dir: str = field(metadata={"help": "Where raw/for_training, raw/labels.txt and png/ go."})


def main(name: str, argv: list[str]) -> int:
    if name == "label-patterns":
        types, defaults = [MapsArguments, LabelArguments], {"num_examples": 5}
        return _label(*parse_dataclasses(f"hf-lottery {name}", COMMANDS[name][1], types, argv, defaults=defaults))
    if not argv or argv[0] not in ACTIONS:
        listing = "; ".join(f"{action}: {text}" for action, text in ACTIONS.items())
        if argv and argv[0] in ("-h", "--help"):
            echo(f"usage: hf-lottery patterns ACTION ... ({listing})")
            return 0
        raise ValueError(f"give an action: hf-lottery patterns {{{', '.join(ACTIONS)}}} ... ({listing})")
    types, run = {
        "train": ([TrainPatternsArguments], _train),
        "evaluate": ([EvaluatePatternsArguments], _evaluate),
        "predict": ([MapsArguments, PredictPatternsArguments], _predict),
    }[argv[0]]
    return run(*parse_dataclasses(f"hf-lottery patterns {argv[0]}", ACTIONS[argv[0]], types, argv[1:]))


def _read_paper_format(args):
    from ..patterns import read_normed, read_raw

    return (read_raw if args.format == "raw" else read_normed)(args.data)


def _train(args: TrainPatternsArguments) -> int:
    from ..patterns import generate_synthetic_maps, train_classifier

    if args.synthetic:
        maps, labels = generate_synthetic_maps(args.synthetic, seed=args.seed)
    else:
        maps, labels, _ = _read_paper_format(args)
    classifier, summary = train_classifier(
        maps, labels, epochs=args.epochs, input_size=args.input_size, seed=args.seed, normalize=not args.raw_values
    )
    classifier.save_pretrained(args.output_dir)
    echo(json.dumps(summary["validation"], indent=2))
    echo(f"Saved in {args.output_dir}")
    return 0


def _evaluate(args: EvaluatePatternsArguments) -> int:
    from ..patterns import PatternClassifier, evaluate_classifier, generate_synthetic_maps

    classifier = PatternClassifier.from_pretrained(args.classifier)
    if args.data:
        maps, labels, _ = _read_paper_format(args)
    else:
        maps, labels = generate_synthetic_maps(100, seed=args.seed)
    echo(json.dumps(evaluate_classifier(classifier, maps, labels), indent=2))
    return 0


def _model_and_loader(args: MapsArguments):
    """The fine-tuned model and a loader over the first `--num_examples` dev examples."""
    from ..search.dataloader import search_dataloader

    model, tokenizer = load_model(args.model)
    ctx = run_context(
        args.task_name, args.data_dir, ".", tokenizer, model_name_or_path=args.model,
        max_eval_samples=args.num_examples,
    )  # fmt: skip
    return model, search_dataloader(ctx.splits["dev"], batch_size=16, collate_fn=ctx.collator)


def _predict(args: MapsArguments, predict: PredictPatternsArguments) -> int:
    from ..analysis import mask_agreement
    from ..patterns import PatternClassifier, pattern_survival_table, predict_head_patterns, survival_markdown
    from ..tickets.ticket import LotteryTicket

    model, loader = _model_and_loader(args)
    classifier = PatternClassifier.from_pretrained(predict.classifier)
    patterns = predict_head_patterns(model, loader, classifier, num_examples=args.num_examples,
                                     norm_based=predict.norm_based)  # fmt: skip
    result = {"patterns": patterns.to_dict()}
    if predict.tickets:
        tickets = [LotteryTicket.from_pretrained(t) for t in predict.tickets]
        survivors = mask_agreement(tickets).survivor_head_mask if len(tickets) > 1 else tickets[0].head_mask
        table = pattern_survival_table({args.task_name: patterns.labels}, {args.task_name: survivors})
        result["survival"] = table
        echo(survival_markdown(table))
    else:
        for layer, row in enumerate(patterns.labels, start=1):
            echo(f"layer {layer}: {', '.join(row)}")
    if predict.output:
        Path(predict.output).write_text(json.dumps(result, indent=2))
    return 0


def _label(args: MapsArguments, label: LabelArguments) -> int:
    from ..patterns.extract import extract_attention_maps
    from ..patterns.labelling import label_maps

    model, loader = _model_and_loader(args)
    maps = extract_attention_maps(model, loader, num_examples=args.num_examples)
    flat, names = [], []
    for example, layers in enumerate(maps):
        for layer in range(layers.shape[0]):
            for head in range(layers.shape[1]):
                flat.append(layers[layer, head].numpy())
                names.append(f"ex{example}_l{layer}_h{head}")
    given = label_maps(flat, names, label.output_dir)
    echo(f"Labelled {len(given)} maps in {label.output_dir}/raw/labels.txt")
    return 0
