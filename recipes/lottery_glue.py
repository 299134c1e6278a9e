"""The paper's whole pipeline on a GLUE task, as an `accelerate launch` recipe.

fine-tune → find structured and magnitude tickets → sample random / bad (and super) subnetworks → evaluate them
pruned → re-fine-tune them from the pre-trained weights → report (tables, statistics, heatmaps) → push.
Every stage is resumable: re-run the same command after a crash and finished work is skipped.

One process (CPU or one GPU):

    python recipes/lottery_glue.py --task_name mrpc --data_dir glue/MRPC --output_dir runs/mrpc \
        --seeds 1337 42 86 71 166 --learning_rate 1e-4

Several GPUs:

    accelerate launch --config_file recipes/accelerate_configs/multi_gpu.yaml recipes/lottery_glue.py \
        --model_name_or_path bert-base-uncased --task_name rte --output_dir runs/rte

Two CPU processes (gloo; the environment variable is required, see recipes/README.md):

    ACCELERATE_USE_CPU=true accelerate launch --config_file recipes/accelerate_configs/cpu_2proc.yaml \
        recipes/lottery_glue.py --task_name demo --output_dir runs/demo-ddp --seeds 42

Publish the structured ticket of the first seed:

    ... --push_to_hub --hub_model_id you/bert-base-rte-lottery-ticket
"""

from __future__ import annotations

import os
import shlex
import sys

from hf_lottery.cli import configure_logging
from hf_lottery.pipeline import config_from_args, make_parser, run_pipeline


def main(argv: list[str] | None = None) -> None:
    configure_logging()  # hf-lottery's progress; transformers' load report of every fresh classifier head is expected
    args = make_parser(prog="lottery_glue.py").parse_args(argv)
    config = config_from_args(args)
    launcher = "accelerate launch" if int(os.environ.get("WORLD_SIZE", "1")) > 1 else "python"
    command = f"{launcher} recipes/lottery_glue.py " + " ".join(shlex.quote(a) for a in (argv or sys.argv[1:]))
    report = run_pipeline(config, command=command)
    if report is not None:
        print(f"Report: {report}")


if __name__ == "__main__":
    main()
