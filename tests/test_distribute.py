"""`--distribute units | data` on 2 CPU processes (gloo): units give the one-process results, data keeps the paper's
global batch, and a resume on another number of processes is refused only where it would change results."""

import itertools
import json
import math
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from hf_lottery import LotteryTicket

from .test_distributed import launch
from .test_pipeline import write_sst2


RECIPE = Path(__file__).parents[1] / "recipes" / "lottery_glue.py"
STAGES = ["finetune", "search", "sample", "evaluate", "retrain", "report"]


def recipe_args(model: str, out: Path, *extra: str, tasks: tuple[str, ...] = ("demo",)) -> list[str]:
    return [
        "--task_name", *tasks, "--model_name_or_path", model, "--output_dir", str(out), "--seeds", "3", "4",
        "--kinds", "good", "random", "--max_train_samples", "96", "--max_eval_samples", "32", "--num_train_epochs",
        "1", "--learning_rate", "1e-3", "--max_seq_length", "32", "--magnitude_max_steps", "2",
        "--search_batch_size", "8", "--on_degenerate", "ignore", *extra,
    ]  # fmt: skip


def one_process(*args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, OMP_NUM_THREADS="1", HF_HUB_OFFLINE="1", PYTHONPATH=str(RECIPE.parents[1]))
    for name in ("WORLD_SIZE", "RANK", "LOCAL_RANK", "ACCELERATE_USE_CPU"):
        env.pop(name, None)
    return subprocess.run([sys.executable, str(RECIPE), *args], env=env, capture_output=True, text=True, timeout=900)


def numbers(value, path=""):
    """Every number of a results.json section, by path (wall and CPU times left out)."""
    if isinstance(value, dict):
        return {
            k: v
            for key, item in value.items()
            if "seconds" not in key
            for k, v in numbers(item, f"{path}/{key}").items()
        }
    if isinstance(value, list):
        return {k: v for i, item in enumerate(value) for k, v in numbers(item, f"{path}/{i}").items()}
    return {path: value}


def results(root: Path) -> dict:
    data = json.loads((root / "report" / "results.json").read_text())
    return numbers({k: data[k] for k in ("full", "pruned", "retrained")})


def run_config(root: Path) -> dict:
    return json.loads((root / "run_config.json").read_text())


def finetune_steps(root: Path) -> dict:
    return {seed: json.loads((root / f"seed_{seed}" / "finetuned" / "result.json").read_text())["optimizer_steps"]
            for seed in (3, 4)}  # fmt: skip


def assert_same_weights(root: Path, expected: Path) -> None:
    """The fine-tuned models and the magnitude tickets (which follow every weight) of both runs agree."""
    for seed in (3, 4):
        ours = load_file(root / f"seed_{seed}" / "finetuned" / "model.safetensors")
        theirs = load_file(expected / f"seed_{seed}" / "finetuned" / "model.safetensors")
        assert ours.keys() == theirs.keys()
        for name, tensor in theirs.items():
            torch.testing.assert_close(ours[name], tensor, rtol=1e-5, atol=1e-5)
        folder = Path("tickets") / "magnitude" / "good"
        ours = LotteryTicket.from_pretrained(root / f"seed_{seed}" / folder)
        assert ours.masks_equal(LotteryTicket.from_pretrained(expected / f"seed_{seed}" / folder))


def assert_same_results(got: dict, expected: dict) -> None:
    assert got.keys() == expected.keys()
    for key, value in expected.items():
        if isinstance(value, float) and isinstance(got[key], float):
            assert math.isclose(got[key], value, rel_tol=1e-5, abs_tol=1e-5), key
        else:
            assert got[key] == value, key


@pytest.fixture(scope="module")
def single(tmp_path_factory, tiny_pretrained):
    root = tmp_path_factory.mktemp("single") / "run"
    proc = one_process(*recipe_args(tiny_pretrained, root, "--stages", *STAGES))
    assert proc.returncode == 0, proc.stderr[-4000:]
    return root


def test_units_on_two_processes_give_the_one_process_results(single, tiny_pretrained, tmp_path):
    # two tasks in one launch: the units of both are spread over the processes; demo's equal a one-process run's
    root, glue = tmp_path / "run", write_sst2(tmp_path / "glue")
    args = recipe_args(tiny_pretrained, root, "--data_dir", str(glue), "--distribute", "units", "--stages", *STAGES,
                       tasks=("demo", "sst2"))  # fmt: skip
    proc = launch(tmp_path, True, *args, script=RECIPE)
    assert proc.returncode == 0, proc.stderr[-4000:]
    config = run_config(root / "demo")
    assert (config["world_size"], config["effective_train_batch_size"]) == (2, 32)
    assert "batch 32 (global)" in (root / "demo" / "report" / "report.md").read_text()
    assert_same_results(results(root / "demo"), results(single))
    assert_same_weights(root / "demo", single)
    assert finetune_steps(root / "demo") == finetune_steps(single) == {3: 3, 4: 3}  # 96 examples / 32 per step
    assert "## sst2" in (root / "report" / "report.md").read_text() and results(root / "sst2")
    for task, seed in itertools.product(("demo", "sst2"), (3, 4)):  # each unit logged once, by the process that ran it
        assert proc.stderr.count(f"Fine-tuned {task}, seed {seed}:") == 1, proc.stderr[-4000:]
        retrained = json.loads((root / task / "report" / "results.json").read_text())["retrained"][str(seed)]
        for name in retrained:
            assert proc.stderr.count(f"Re-fine-tuned {task} {name} (seed {seed}):") == 1, proc.stderr[-4000:]


def test_data_keeps_the_global_batch_and_the_number_of_steps(single, tiny_pretrained, tmp_path):
    root = tmp_path / "run"
    proc = launch(tmp_path, True, *recipe_args(tiny_pretrained, root, "--distribute", "data", "--stages", "finetune"),
                  script=RECIPE)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-4000:]
    config = run_config(root)
    assert (config["world_size"], config["effective_train_batch_size"]) == (2, 32)
    assert config["config"]["training"].get("per_device_train_batch_size") is None  # 16 per device, derived
    assert finetune_steps(root) == finetune_steps(single)


def test_resume_on_more_processes_is_refused_under_data(tiny_pretrained, tmp_path):
    # data: the processes share every step, so 1 -> 2 processes would change the results
    root = tmp_path / "run"
    proc = one_process(*recipe_args(tiny_pretrained, root, "--distribute", "data", "--stages", "finetune"))
    assert proc.returncode == 0, proc.stderr[-4000:]
    proc = launch(tmp_path, True, *recipe_args(tiny_pretrained, root, "--distribute", "data"), script=RECIPE)
    assert proc.returncode == 1
    assert "--data_parallel_processes 1 -> 2" in proc.stderr, proc.stderr[-2000:]


@pytest.mark.slow  # over a minute on a shared 2-core CPU
def test_resume_on_more_processes_finishes_under_units(single, tiny_pretrained, tmp_path):
    # units: a unit's result does not depend on the process that ran it, so the run resumes and finishes
    root = tmp_path / "run"
    shutil.copytree(single, root)
    for stage in ("retrained", "pruned"):
        for folder in root.glob(f"seed_*/{stage}"):
            shutil.rmtree(folder)
    shutil.rmtree(root / "report")
    proc = launch(tmp_path, True, *recipe_args(tiny_pretrained, root, "--stages", *STAGES), script=RECIPE)
    assert proc.returncode == 0, proc.stderr[-4000:]
    assert_same_results(results(root), results(single))
    assert len(run_config(root)["commands"]) == 2
