"""Run by tests/test_distributed.py under `accelerate launch` with 2 CPU processes (gloo).

A plain user-style Trainer with the pruning callbacks; each rank writes what it saw to OUT/rank<r>.json, and rank 0
saves the trained model so the test can compare with a single-process search over the same global batches.
"""

import json
import os
import sys
from pathlib import Path


sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402
import torch.distributed as dist  # noqa: E402
from transformers import Trainer  # noqa: E402

from hf_lottery import distributed  # noqa: E402
from tests.conftest import tiny_bert  # noqa: E402
from tests.science_helpers import SEARCH_CONFIG, accuracy  # noqa: E402
from tests.trainer_helpers import collate, to_dataset, training_args  # noqa: E402
from trainer_callbacks import MagnitudePruningCallback, StructuredPruningCallback  # noqa: E402


def main(out: Path, use_cpu: bool) -> None:
    model = tiny_bert(seed=3, **SEARCH_CONFIG)
    dev = to_dataset(64, seed=5)
    common = dict(
        eval_dataset=dev, metric=accuracy, search_batch_size=16, data_collator=collate, threshold=0.95,
        on_degenerate="ignore",
    )  # fmt: skip
    structured = StructuredPruningCallback(**common)
    magnitude = MagnitudePruningCallback(**common, magnitude_max_steps=3)
    args = training_args(
        out / "run", max_steps=10, learning_rate=2e-3, gradient_accumulation_steps=1, save_steps=5, use_cpu=use_cpu
    )
    trainer = Trainer(
        model=model,
        args=args,
        train_dataset=to_dataset(128, seed=11),
        data_collator=collate,
        callbacks=[structured, magnitude],
    )
    trainer.train()
    rank = distributed.rank()
    result = {
        "world_size": distributed.world_size(),
        "dist_world_size": dist.get_world_size() if dist.is_initialized() else 1,
        "backend": dist.get_backend() if dist.is_initialized() else None,
        "rank": rank,
        "structured_head_mask": structured.ticket.head_mask.int().tolist(),
        "structured_mlp_mask": structured.ticket.mlp_mask.int().tolist(),
        "head_importance": structured.ticket.head_importance.tolist(),
        "mlp_importance": structured.ticket.mlp_importance.tolist(),
        "structured_history": structured.ticket.history,
        "magnitude_history": magnitude.ticket.history,
        "magnitude_masks_sum": {k: int(v.sum()) for k, v in magnitude.ticket.weight_masks.items()},
        "param_checksum": float(sum(p.double().sum() for p in model.parameters())),
        "files_written_by": os.listdir(out / "run"),
    }
    (out / f"rank{rank}.json").write_text(json.dumps(result))
    if rank == 0:
        model.save_pretrained(out / "trained")
    distributed.barrier()


if __name__ == "__main__":
    torch.set_num_threads(1)
    main(Path(sys.argv[1]), use_cpu="--no-use-cpu" not in sys.argv)
