"""Iterative magnitude pruning with rewinding (`find_imp_ticket`) on a tiny model."""

import json

import pytest
import torch
from transformers import TrainerCallback

from hf_lottery import EncoderStructure
from hf_lottery.gates import active_handles
from hf_lottery.imp import find_imp_ticket

from .conftest import tiny_bert
from .science_helpers import accuracy
from .trainer_helpers import collate, to_dataset, training_args


class ZerosChecker(TrainerCallback):
    """After every optimizer step, every weight the applied ticket prunes is exactly zero."""

    def __init__(self):
        self.checked = 0
        self.trainings = 0

    def on_train_begin(self, args, state, control, **kwargs):
        self.trainings += 1

    def on_step_end(self, args, state, control, model=None, **kwargs):
        for handle in active_handles(model):
            params = EncoderStructure(model).named_encoder_parameters()
            for name, mask in handle.ticket.weight_masks.items():
                assert (params[name].detach()[~mask] == 0).all(), name
            self.checked += 1


def run_imp(output_dir, rounds, checker=None):
    args = training_args(output_dir, max_steps=2, gradient_accumulation_steps=1, save_strategy="no")
    return find_imp_ticket(
        tiny_bert(seed=3), args, to_dataset(48, 1), to_dataset(32, 2), accuracy, rounds=rounds,
        data_collator=collate, threshold=0.01, on_degenerate="ignore", base_model="tiny-pretrained",
        callbacks=[checker] if checker else None,
    )  # fmt: skip


def expected_kept(total, rounds):
    kept = [total]
    for _ in range(rounds):
        kept.append(kept[-1] - round(0.1 * kept[-1]))
    return kept


@pytest.mark.slow  # 8 fine-tunes: about a minute on 2 busy cores
def test_three_rounds_prune_ten_percent_of_the_rest_and_resume_after_an_interruption(tmp_path):
    checker = ZerosChecker()
    ticket = run_imp(tmp_path / "imp", 3, checker)
    total = ticket.kept_weight_counts()[1]
    kept = expected_kept(total, 3)
    assert [h["weights_kept"] for h in ticket.history] == kept
    for k, entry in enumerate(ticket.history):
        assert entry["sparsity"] == pytest.approx(1 - 0.9**k, abs=1 / total)
        assert entry["accepted"] and entry["step"] == k
    assert ticket.kept_weight_counts()[0] == kept[-1]
    assert checker.trainings == 4 and checker.checked == 3 * 2  # rounds 1-3 train with the ticket applied
    assert (ticket.method, ticket.base_model, ticket.seed) == ("magnitude", "tiny-pretrained", 7)
    folder = tmp_path / "imp" / "imp_ticket"
    for k in range(4):
        assert json.loads((folder / f"round_{k}" / "result.json").read_text())["weights_kept"] == kept[k]
    assert (folder / "ticket_config.json").is_file()
    # interrupted after round 2, then run again: rounds 0-2 are skipped and the result is the same
    run_imp(tmp_path / "resumed", 2)
    checker = ZerosChecker()
    resumed = run_imp(tmp_path / "resumed", 3, checker)
    assert checker.trainings == 1
    assert resumed.masks_equal(ticket)
    assert [h["metric"] for h in resumed.history] == [h["metric"] for h in ticket.history]


def test_the_stop_rule_keeps_the_last_passing_round(tmp_path, monkeypatch):
    from hf_lottery import imp

    metrics = iter([1.0, 0.95, 0.5, 0.99])
    real = imp.evaluate

    def evaluate(*args, **kwargs):
        result = real(*args, **kwargs)
        result.metric = next(metrics)
        return result

    monkeypatch.setattr(imp, "evaluate", evaluate)
    args = training_args(tmp_path, max_steps=2, gradient_accumulation_steps=1, save_strategy="no")
    checker = ZerosChecker()
    ticket = find_imp_ticket(
        tiny_bert(seed=3), args, to_dataset(16, 1), to_dataset(16, 2), accuracy, rounds=3, data_collator=collate,
        on_degenerate="ignore", callbacks=[checker],
    )  # fmt: skip
    assert checker.trainings == 3 and checker.checked == 2 * 2  # pruned weights exactly zero after every step
    assert [h["weights_kept"] for h in ticket.history] == expected_kept(ticket.kept_weight_counts()[1], 2)
    assert [h["accepted"] for h in ticket.history] == [True, True, False]
    assert ticket.metrics["metric"] == 0.95 and ticket.sparsity == pytest.approx(ticket.history[1]["sparsity"])
    assert ticket.threshold == 0.9 and ticket.base_model is None
    torch.testing.assert_close(torch.tensor(ticket.metrics["full_metric"]), torch.tensor(1.0))


def test_late_rewinding_restarts_from_the_weights_after_k_steps(tmp_path):
    class StartWeights(TrainerCallback):
        def __init__(self):
            self.starts = []

        def on_train_begin(self, args, state, control, model=None, **kwargs):
            self.starts.append(model.classifier.weight.detach().clone())

    starts = StartWeights()
    args = training_args(tmp_path, max_steps=2, gradient_accumulation_steps=1, save_strategy="no")
    find_imp_ticket(
        tiny_bert(seed=3), args, to_dataset(16, 1), to_dataset(16, 2), accuracy, rounds=1, rewind_step=1,
        data_collator=collate, on_degenerate="ignore", threshold=0.01, callbacks=[starts],
    )  # fmt: skip
    from safetensors.torch import load_file

    point = load_file(str(tmp_path / "imp_ticket" / "round_0" / "rewind_point.safetensors"))
    assert torch.equal(starts.starts[1], point["classifier.weight"])  # round 1 starts from step 1 of round 0
    assert not torch.equal(starts.starts[0], point["classifier.weight"])
