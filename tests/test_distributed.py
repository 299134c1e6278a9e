"""Two CPU processes (gloo) under `accelerate launch`: identical tickets on both ranks, equal to one process."""

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from transformers import BertForSequenceClassification

from hf_lottery import find_magnitude_ticket, find_structured_ticket
from hf_lottery.search.dataloader import search_dataloader

from .science_helpers import accuracy
from .trainer_helpers import collate, to_dataset


SCRIPT = Path(__file__).with_name("distributed_script.py")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def launch(out: Path, cpu_switch: bool, *script_args: str, script: Path = SCRIPT) -> subprocess.CompletedProcess:
    accelerate = Path(sys.executable).with_name("accelerate")
    env = dict(os.environ, OMP_NUM_THREADS="1", HF_HUB_OFFLINE="1", PYTHONPATH=str(SCRIPT.parents[1]))
    env.pop("ACCELERATE_USE_CPU", None)
    if cpu_switch:
        env["ACCELERATE_USE_CPU"] = "true"
    command = [
        str(accelerate), "launch", "--multi_gpu", "--num_processes", "2", "--num_machines", "1",
        "--mixed_precision", "no", "--dynamo_backend", "no", "--main_process_port", str(free_port()),
        str(script), *([str(out)] if script == SCRIPT else []), *script_args,
    ]  # fmt: skip
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)


@pytest.fixture(scope="module")
def two_process_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("ddp")
    proc = launch(out, cpu_switch=True)
    assert proc.returncode == 0, proc.stderr[-4000:]
    ranks = [json.loads((out / f"rank{r}.json").read_text()) for r in range(2)]
    return out, ranks


def test_world_size_two_and_identical_tickets_on_both_ranks(two_process_run):
    out, (rank0, rank1) = two_process_run
    assert (rank0["world_size"], rank1["world_size"], rank0["backend"]) == (2, 2, "gloo")
    assert (rank0["rank"], rank1["rank"]) == (0, 1)
    assert rank0["param_checksum"] == rank1["param_checksum"]  # DDP kept the replicas equal
    for key in ("structured_head_mask", "structured_mlp_mask", "head_importance", "mlp_importance",
                "structured_history", "magnitude_history", "magnitude_masks_sum"):  # fmt: skip
        assert rank0[key] == rank1[key], key  # bit-identical, not just close
    assert len(rank0["structured_history"]) > 2


def test_only_the_main_process_wrote_the_tickets(two_process_run):
    out, _ = two_process_run
    for method in ("structured", "magnitude"):
        assert sorted(p.name for p in (out / "run" / f"{method}_ticket").iterdir()) == [
            "ticket_config.json",
            "ticket_masks.safetensors",
        ]
    assert not list((out / "run").rglob("*.tmp"))


def test_same_ticket_as_one_process_over_the_same_global_batches(two_process_run):
    out, (rank0, _) = two_process_run
    model = BertForSequenceClassification.from_pretrained(out / "trained").eval()
    model.config._attn_implementation = "eager"
    # 64 examples, batch 16, 2 processes: each rank's contiguous shard gives 2 batches; one process sees the same 4
    loader = search_dataloader(to_dataset(64, seed=5), batch_size=16, collate_fn=collate, model=model)
    single = find_structured_ticket(model, loader, accuracy, threshold=0.95, on_degenerate="ignore", progress=False)
    assert single.head_mask.int().tolist() == rank0["structured_head_mask"]
    assert single.mlp_mask.int().tolist() == rank0["structured_mlp_mask"]
    torch.testing.assert_close(single.head_importance, torch.tensor(rank0["head_importance"]), rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(single.mlp_importance, torch.tensor(rank0["mlp_importance"]), rtol=1e-5, atol=1e-6)
    assert [h["metric"] for h in single.history] == [h["metric"] for h in rank0["structured_history"]]
    magnitude = find_magnitude_ticket(model, loader, accuracy, threshold=0.95, on_degenerate="ignore", magnitude_max_steps=3,
                                      progress=False)  # fmt: skip
    assert [h["metric"] for h in magnitude.history] == [h["metric"] for h in rank0["magnitude_history"]]


def test_duplicate_world_size_one_processes_are_detected(tmp_path):
    # neither ACCELERATE_USE_CPU nor use_cpu=True: on a machine without GPUs each process gets a world of 1
    proc = launch(tmp_path, False, "--no-use-cpu")
    assert proc.returncode != 0, "two duplicate world-size-1 trainings went unnoticed"
    assert "not part of a distributed process group" in proc.stderr


def test_recipe_runs_with_two_cpu_processes(tmp_path, tiny_pretrained):
    recipe = SCRIPT.parents[1] / "recipes" / "lottery_glue.py"
    args = [
        "--task_name", "demo", "--model_name_or_path", tiny_pretrained, "--output_dir", str(tmp_path / "run"),
        "--seeds", "3", "--kinds", "good", "random", "--max_train_samples", "64", "--max_eval_samples", "32",
        "--num_train_epochs", "1", "--per_device_train_batch_size", "8", "--learning_rate", "1e-3",
        "--max_seq_length", "32", "--magnitude_max_steps", "2", "--search_batch_size", "8", "--on_degenerate", "ignore",
        "--pattern_examples", "4",
    ]  # fmt: skip
    proc = launch(tmp_path, True, *args, script=recipe)
    assert proc.returncode == 0, proc.stderr[-4000:]
    run = json.loads((tmp_path / "run" / "run_config.json").read_text())
    assert run["world_size"] == 2
    results = json.loads((tmp_path / "run" / "report" / "results.json").read_text())
    assert set(results["retrained"]["3"]) == {
        "structured/good",
        "structured/random",
        "magnitude/good",
        "magnitude/random",
    }
    assert "Report:" in proc.stdout


def test_library_logs_only_on_the_main_process():
    code = (
        "import logging, hf_lottery.distributed as d; "
        "print(logging.getLogger('hf_lottery.search').getEffectiveLevel(), d.is_main_process())"
    )
    env = dict(os.environ, PYTHONPATH=str(SCRIPT.parents[1]))
    seen = {}
    for rank in ("0", "1"):
        env["RANK"] = rank
        proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
        assert proc.returncode == 0, proc.stderr[-2000:]
        seen[rank] = proc.stdout.split()
    assert seen["0"] == ["30", "True"]  # transformers' default verbosity (warning)
    assert seen["1"] == ["40", "False"]  # errors only on other ranks
