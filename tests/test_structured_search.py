import warnings

import pytest
import torch

from hf_lottery import LotteryTicket, find_structured_ticket
from hf_lottery.search.selection import heads_per_step, least_important, phase_step_sizes
from hf_lottery.search.stop_rule import DegenerateStopRuleWarning

from .conftest import tiny_bert
from .science_helpers import accuracy, search_batches, trained_model


def run(threshold=0.99, **kwargs):
    kwargs.setdefault("progress", False)
    return find_structured_ticket(trained_model(), search_batches(), accuracy, threshold=threshold, **kwargs)


@pytest.fixture(scope="module")
def ticket():
    return run()


def test_schedule_is_the_papers():
    assert heads_per_step(12, 12) == 14  # bert-base: 14 of 144
    assert phase_step_sizes(14) == {"heads+mlp": (14, 1), "heads": (7, 0), "mlp": (0, 1)}
    assert heads_per_step(2, 2) == 1 and phase_step_sizes(1)["heads"] == (1, 0)


def test_least_important_picks_among_kept_with_stable_ties():
    scores = torch.tensor([[0.5, 0.1], [0.1, 0.9]])
    kept = torch.tensor([[True, False], [True, True]])
    assert least_important(scores, kept, 1).tolist() == [[False, False], [True, False]]
    assert least_important(scores, kept, 5).sum() == 3  # never more than what is kept
    assert not least_important(scores, torch.zeros_like(kept), 2).any()


def test_accepted_steps_pass_the_stop_rule_and_masks_only_shrink(ticket):
    history = ticket.history
    full = ticket.metrics["full_metric"]
    assert history[0]["phase"] == "full" and history[0]["metric"] == full
    for step in history:
        if step["accepted"]:
            assert step["metric"] >= 0.99 * full
        else:
            assert step["metric"] < 0.99 * full
    accepted = [h for h in history if h["accepted"]]
    assert all(
        a["heads_kept"] >= b["heads_kept"] and a["mlps_kept"] >= b["mlps_kept"] for a, b in zip(accepted, accepted[1:])
    )
    last = accepted[-1]
    assert (int(ticket.head_mask.sum()), int(ticket.mlp_mask.sum())) == (last["heads_kept"], last["mlps_kept"])
    assert ticket.metrics["metric"] == last["metric"] >= ticket.metrics["threshold_value"]
    assert ticket.extra["search"]["finished"]


def test_step_sizes_follow_the_schedule(ticket):
    step = ticket.extra["search"]["head_step"]
    assert step == 5  # 10 % of 5 layers × 10 heads
    kept_heads, kept_mlps = 50, 5
    phases_seen = []
    for entry in ticket.history[1:]:
        phases_seen.append(entry["phase"])
        masked_heads, masked_mlps = len(entry["masked_heads"]), len(entry["masked_mlps"])
        expected_heads = {"heads+mlp": min(step, kept_heads), "heads": min(step // 2, kept_heads), "mlp": 0}[
            entry["phase"]
        ]
        expected_mlps = {"heads+mlp": 1, "heads": 0, "mlp": 1}[entry["phase"]]
        assert (masked_heads, masked_mlps) == (expected_heads, expected_mlps), entry
        if entry["accepted"]:
            kept_heads -= masked_heads
            kept_mlps -= masked_mlps
    # phases only move forward
    order = ["heads+mlp", "heads", "mlp"]
    assert [order.index(p) for p in phases_seen] == sorted(order.index(p) for p in phases_seen)
    assert len(set(phases_seen)) >= 2


def test_one_forward_backward_pass_per_step():
    model = trained_model()
    data = search_batches()
    forwards = []
    model.register_forward_hook(lambda *a: forwards.append(1))
    ticket = find_structured_ticket(model, data, accuracy, threshold=0.99, progress=False)
    passes = len(forwards) / len(data)
    assert passes == len(ticket.history)  # the full model's pass + one per step


def test_two_pass_reference_finds_the_identical_ticket(ticket):
    reference = run(passes_per_step=2)
    assert reference.masks_equal(ticket)
    assert [h["metric"] for h in reference.history] == [h["metric"] for h in ticket.history]


def test_ticket_metadata(ticket):
    assert ticket.method == "structured" and ticket.kind == "good" and ticket.threshold == 0.99
    assert ticket.search_data == "dev"
    assert ticket.head_importance is not None and ticket.extra["degenerate_stop_rule"] is False
    tagged = run(search_data="held-out", base_model="my/base", task="demo", seed=3, structured_max_steps=1)
    assert (tagged.search_data, tagged.base_model, tagged.task, tagged.seed) == (
        "held-out",
        "my/base",
        "demo",
        3,
    )
    named = find_structured_ticket(trained_model(), search_batches(), "SST-2", structured_max_steps=1, progress=False,
                                   on_degenerate="ignore")  # fmt: skip
    assert named.task == "sst2"  # a GLUE metric name records its task (the card then knows the dataset)


def test_resume_after_interruption_gives_the_same_ticket(ticket, tmp_path):
    calls = {"n": 0}

    def flaky(predictions, labels):
        calls["n"] += 1
        if calls["n"] == 6:  # 1 full pass, 2 constant-predictor scores, then steps 1, 2 and a crash in 3
            raise KeyboardInterrupt("simulated crash")
        return accuracy(predictions, labels)

    with pytest.raises(KeyboardInterrupt):
        find_structured_ticket(
            trained_model(), search_batches(), flaky, threshold=0.99, output_dir=tmp_path, progress=False
        )
    partial = LotteryTicket.from_pretrained(tmp_path)
    assert len(partial.history) == 3 and not partial.extra["search"]["finished"]
    resumed = find_structured_ticket(
        trained_model(), search_batches(), accuracy, threshold=0.99, output_dir=tmp_path, progress=False
    )
    assert resumed.masks_equal(ticket)
    assert [h["metric"] for h in resumed.history] == [h["metric"] for h in ticket.history]
    # a finished search is returned as is, without any pass
    again = find_structured_ticket(trained_model(), [], accuracy, threshold=0.99, output_dir=tmp_path, progress=False)
    assert again == resumed


def test_resume_refuses_another_model(tmp_path):
    run(output_dir=tmp_path, structured_max_steps=1)
    with pytest.raises(ValueError, match="other weights"):
        find_structured_ticket(tiny_bert(seed=9, hidden_size=40, num_hidden_layers=5, num_attention_heads=10,
                                         intermediate_size=48), search_batches(), accuracy, output_dir=tmp_path,
                               progress=False)  # fmt: skip


def test_degenerate_stop_rule_warns_records_or_refuses():
    model = tiny_bert()  # untrained: near-chance accuracy, 0.9 × it is below the majority class
    data = search_batches()
    with pytest.warns(DegenerateStopRuleWarning, match="constant predictor"):
        ticket = find_structured_ticket(model, data, accuracy, structured_max_steps=1, progress=False)
    assert ticket.extra["degenerate_stop_rule"] is True
    assert ticket.metrics["constant_baseline"] == 0.5
    with pytest.raises(ValueError, match="constant predictor"):
        find_structured_ticket(model, data, accuracy, on_degenerate="raise", progress=False)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        find_structured_ticket(model, data, accuracy, structured_max_steps=1, on_degenerate="ignore", progress=False)


def test_bad_arguments():
    model = trained_model()
    with pytest.raises(ValueError, match=r"`threshold` must be in \(0, 1\]"):
        find_structured_ticket(model, search_batches(), accuracy, threshold=90)
    with pytest.raises(ValueError, match="passes_per_step"):
        find_structured_ticket(model, search_batches(), accuracy, passes_per_step=3)
    with pytest.raises(TypeError, match="`metric` must be"):
        find_structured_ticket(model, search_batches(), 42)


def test_config_and_metric_name_are_recorded(tmp_path):
    from pathlib import Path

    from hf_lottery import TicketSearchConfig
    from hf_lottery.tasks.metrics import get_task_metric

    config = TicketSearchConfig(threshold=0.99, structured_max_steps=1)
    ticket = find_structured_ticket(trained_model(), search_batches(), get_task_metric("cola"), config=config,
                                    base_model=Path("models") / "base", progress=False)  # fmt: skip
    assert ticket.extra["search_config"] == config.to_dict()
    assert ticket.search_data == "dev" and ticket.threshold == 0.99
    assert ticket.metrics["metric_name"] == "matthews_correlation"
    assert ticket.base_model == str(Path("models") / "base") and isinstance(ticket.base_model, str)
    # keyword settings override the config; an unknown one is a TypeError naming it
    assert find_structured_ticket(trained_model(), search_batches(), "sst2", config=config, threshold=0.5, on_degenerate="ignore",
                                  progress=False).threshold == 0.5  # fmt: skip
    with pytest.raises(TypeError, match="thresold"):
        find_structured_ticket(trained_model(), search_batches(), "sst2", config=config, thresold=0.5)


def test_resume_with_other_settings_lists_the_changes(tmp_path):
    run(output_dir=tmp_path, structured_max_steps=1)
    with pytest.raises(ValueError, match=r"threshold: 0\.99 -> 0\.8; head_fraction: 0\.1 -> 0\.2"):
        run(threshold=0.8, head_fraction=0.2, output_dir=tmp_path, structured_max_steps=1)


def test_torn_state_names_the_folder_and_the_way_out(tmp_path):
    run(output_dir=tmp_path, structured_max_steps=1)
    (tmp_path / "ticket_masks.safetensors").write_bytes(b"torn")
    with pytest.raises(ValueError, match=rf"{tmp_path}.*delete that folder.*another `output_dir`"):
        run(output_dir=tmp_path, structured_max_steps=1)


def test_target_heads_and_mlps_are_met_exactly_whatever_the_metric():
    model = tiny_bert(seed=1)  # 3 layers × 4 heads, untrained: the stop rule would refuse most steps
    data = search_batches()[:2]
    ticket = find_structured_ticket(model, data, accuracy, target_heads=5, target_mlps=1, head_fraction=0.25,
                                    progress=False)  # fmt: skip
    assert (int(ticket.head_mask.sum()), int(ticket.mlp_mask.sum())) == (5, 1)
    steps = ticket.history[1:]
    assert all(h["accepted"] and h["phase"] == "budget" for h in steps)
    assert [len(h["masked_heads"]) for h in steps] == [3, 3, 1]  # 25 % of 12 heads a step, the last one trimmed
    assert [len(h["masked_mlps"]) for h in steps] == [1, 1, 0]
    assert ticket.metrics["metric"] == steps[-1]["metric"] and "passes_stop_rule" in ticket.metrics
    only_heads = find_structured_ticket(model, data, accuracy, target_heads=10, progress=False)
    assert int(only_heads.head_mask.sum()) == 10 and bool(only_heads.mlp_mask.all())  # no MLP target: none pruned


def test_fisher_importance_drives_the_search():
    ticket = run(importance="fisher", structured_max_steps=2)
    assert ticket.extra["search_config"]["importance"] == "fisher"
    assert len(ticket.history) == 3


@pytest.mark.slow
def test_target_sparsity_on_minilm_lands_within_one_step():
    from transformers import AutoTokenizer, BertForSequenceClassification

    from .conftest import minilm_path

    path = minilm_path()
    tokenizer = AutoTokenizer.from_pretrained(path)
    model = BertForSequenceClassification.from_pretrained(path, num_labels=2).eval()
    words = ["good", "bad", "fine", "awful", "great", "poor", "nice", "dull"]
    sentences = [f"a {w} film with {v} acting" for w in words for v in words[:4]]
    encoded = tokenizer(sentences, padding=True, return_tensors="pt")
    labels = torch.tensor([i % 2 for i in range(len(sentences))])
    data = [{**{k: v[i : i + 16] for k, v in encoded.items()}, "labels": labels[i : i + 16]} for i in range(0, 32, 16)]
    ticket = find_structured_ticket(model, data, accuracy, target_sparsity=0.5, progress=False)
    structure_step = ticket.extra["search"]["head_step"]
    sparsities = [h["sparsity"] for h in ticket.history]
    assert sparsities[-1] >= 0.5 > sparsities[-2]  # stops at the first step that reaches the budget
    dims = ticket.model_dims
    from hf_lottery.structure import prunable_parameter_counts

    counts = prunable_parameter_counts(dims)
    one_step = (structure_step * counts["per_head"] + counts["per_mlp"]) / counts["total"]
    assert ticket.sparsity - 0.5 < one_step
