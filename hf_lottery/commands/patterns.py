"""`hf-lottery patterns ...` and `hf-lottery label-patterns`: the attention-pattern classifier and analysis."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from . import add_model_and_task, echo, load_model, run_context


def register(subparsers: argparse._SubParsersAction) -> None:
    patterns = subparsers.add_parser(
        "patterns", help="train / evaluate the attention-pattern CNN, classify a model's heads"
    )
    sub = patterns.add_subparsers(dest="patterns_command", metavar="ACTION", required=True)

    train = sub.add_parser("train", help="train the CNN on the paper's labelled maps or on generated synthetic maps")
    source = train.add_mutually_exclusive_group(required=True)
    source.add_argument("--data", help="folder in the paper's format (raw/ or normed/)")
    source.add_argument("--synthetic", type=int, metavar="N", help="generate N synthetic maps per pattern")
    train.add_argument("--format", choices=("raw", "normed"), default="raw")
    train.add_argument("--output_dir", required=True)
    train.add_argument("--epochs", type=int, default=15)
    train.add_argument("--input_size", type=int, default=64)
    train.add_argument("--seed", type=int, default=0)
    train.add_argument("--raw_values", action="store_true", help="feed unnormalised maps, as the paper's code did")
    train.set_defaults(func=_train)

    evaluate = sub.add_parser("evaluate", help="per-class and weighted F1 and the confusion matrix on labelled maps")
    evaluate.add_argument("--classifier", default=None, help="checkpoint folder (default: the shipped one)")
    evaluate.add_argument("--data", default=None, help="paper-format folder (default: fresh synthetic maps)")
    evaluate.add_argument("--format", choices=("raw", "normed"), default="raw")
    evaluate.add_argument("--seed", type=int, default=123)
    evaluate.set_defaults(func=_evaluate)

    predict = sub.add_parser("predict", help="the pattern of every head of a model, and survivors vs. all heads")
    add_model_and_task(predict)
    predict.add_argument("--num_examples", type=int, default=100)
    predict.add_argument("--norm_based", action="store_true", help="classify norm-based maps (Kobayashi et al.)")
    predict.add_argument("--classifier", default=None)
    predict.add_argument("--tickets", nargs="*", default=[], help="ticket folders (seeds): survivors = kept in all")
    predict.add_argument("--output", default=None, help="write the result as JSON here")
    predict.set_defaults(func=_predict)

    label = subparsers.add_parser("label-patterns", help="label attention maps by hand into the paper's format")
    add_model_and_task(label, model_help="model folder or Hub id to take maps from")
    label.add_argument("--num_examples", type=int, default=5)
    label.add_argument("--output_dir", required=True, help="where raw/for_training, raw/labels.txt and png/ go")
    label.set_defaults(func=_label)


def _read_paper_format(args: argparse.Namespace):
    from ..patterns import read_normed, read_raw

    return (read_raw if args.format == "raw" else read_normed)(args.data)


def _train(args: argparse.Namespace) -> int:
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


def _evaluate(args: argparse.Namespace) -> int:
    from ..patterns import PatternClassifier, evaluate_classifier, generate_synthetic_maps

    classifier = PatternClassifier.from_pretrained(args.classifier)
    if args.data:
        maps, labels, _ = _read_paper_format(args)
    else:
        maps, labels = generate_synthetic_maps(100, seed=args.seed)
    echo(json.dumps(evaluate_classifier(classifier, maps, labels), indent=2))
    return 0


def _model_and_loader(args: argparse.Namespace):
    """The fine-tuned model and a loader over the first `--num_examples` dev examples."""
    from ..search.data import search_dataloader

    model, tokenizer = load_model(args.model)
    ctx = run_context(
        args, tokenizer, model_name_or_path=args.model, max_eval_samples=args.num_examples, output_dir="."
    )
    return model, search_dataloader(ctx.splits["dev"], batch_size=16, collate_fn=ctx.collator)


def _predict(args: argparse.Namespace) -> int:
    from ..analysis import mask_agreement
    from ..patterns import PatternClassifier, pattern_survival_table, predict_head_patterns, survival_markdown
    from ..ticket import LotteryTicket

    model, loader = _model_and_loader(args)
    classifier = PatternClassifier.from_pretrained(args.classifier)
    patterns = predict_head_patterns(model, loader, classifier, num_examples=args.num_examples,
                                     norm_based=args.norm_based)  # fmt: skip
    result = {"patterns": patterns.to_dict()}
    if args.tickets:
        tickets = [LotteryTicket.from_pretrained(t) for t in args.tickets]
        survivors = mask_agreement(tickets).survivor_head_mask if len(tickets) > 1 else tickets[0].head_mask
        table = pattern_survival_table({args.task_name: patterns.labels}, {args.task_name: survivors})
        result["survival"] = table
        echo(survival_markdown(table))
    else:
        for layer, row in enumerate(patterns.labels, start=1):
            echo(f"layer {layer}: {', '.join(row)}")
    if args.output:
        Path(args.output).write_text(json.dumps(result, indent=2))
    return 0


def _label(args: argparse.Namespace) -> int:
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
    given = label_maps(flat, names, args.output_dir)
    echo(f"Labelled {len(given)} maps in {args.output_dir}/raw/labels.txt")
    return 0
