"""The paper's whole pipeline on a GLUE task, as an `accelerate launch` recipe.

fine-tune → find structured and magnitude tickets → sample random / bad (and super) subnetworks → evaluate them
pruned → re-fine-tune them from the pre-trained weights → report (tables, statistics, heatmaps) → push.
Every stage is resumable: re-run the same command after a crash and finished work is skipped.

Flags: `PipelineConfig` (task, data, seeds, stages), `TicketSearchConfig` (--threshold, --max_search_samples, ...)
and every `transformers.TrainingArguments` flag (--learning_rate, --num_train_epochs, --warmup_steps, --bf16, ...),
parsed by `HfArgumentParser`; `--help` lists them all with their defaults. Defaults are the paper's (lr 2e-5,
batch 32, 3 epochs). Every setting is checked before any work starts.

One process (CPU or one GPU):

    python recipes/lottery_glue.py --task_name mrpc --data_dir glue/MRPC --output_dir runs/mrpc \
        --seeds 1337 42 86 71 166 --learning_rate 1e-4

Several GPUs:

    accelerate launch --config_file recipes/accelerate_configs/multi_gpu.yaml recipes/lottery_glue.py \
        --model_name_or_path bert-base-uncased --task_name rte --output_dir runs/rte

Several tasks × seeds in one launch (one run folder per task, units of all of them spread over the processes):

    accelerate launch --config_file recipes/accelerate_configs/multi_gpu.yaml recipes/lottery_glue.py \
        --model_name_or_path bert-base-uncased --task_name cola sst2 mrpc rte --data_dir glue --output_dir runs/grid

Two CPU processes (gloo; the environment variable is required, see recipes/README.md):

    ACCELERATE_USE_CPU=true accelerate launch --config_file recipes/accelerate_configs/cpu_2proc.yaml \
        recipes/lottery_glue.py --task_name demo --output_dir runs/demo-ddp --seeds 42

Publish the structured ticket of the first seed (the token is never written to disk or logs):

    ... --push_to_hub --hub_model_id you/bert-base-rte-lottery-ticket --hub_token hf_...
"""

from __future__ import annotations

import os
import sys

from hf_lottery.cli import configure_logging
from hf_lottery.pipeline.config import flag_message, parse_run_args


PROG = "lottery_glue.py"


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    settings = parse_run_args(argv, prog=PROG)  # exits with status 2 and the flag's name on a bad setting
    configure_logging()
    from hf_lottery.pipeline.runner import run_pipeline

    launcher = "accelerate launch" if int(os.environ.get("WORLD_SIZE", "1")) > 1 else "python"
    try:
        report = run_pipeline(settings, f"{launcher} recipes/{PROG}")
    except (ValueError, TypeError, OSError) as err:  # e.g. a changed-settings refusal: one line, no traceback
        sys.stderr.write(f"{PROG}: error: {flag_message(err)}\n")
        return 1
    if report is not None:
        print(f"Report: {report}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
