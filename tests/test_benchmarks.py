"""The benchmark's own checks (not timed): the search comparison's equal-ticket condition, the FLOP model."""

import sys
from pathlib import Path

import torch


sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.flops import encoder_flops  # noqa: E402
from benchmarks.run import bench_search  # noqa: E402
from benchmarks.workloads import make_workload, ticket_for  # noqa: E402
from hf_lottery import EncoderStructure, compact_model  # noqa: E402


def test_search_comparison_reaches_the_identical_ticket():
    workload = make_workload(quick=True)
    workload.batches = workload.batches[:2]
    result = bench_search(workload, repeats=1, max_steps=2)
    assert result["identical_ticket"] is True and result["steps"] == 2


def test_flop_model_counts_the_compact_models_real_shapes():
    workload = make_workload(quick=True)
    model = workload.fresh_model()
    ticket = ticket_for(model, heads=0.5, mlps=0.5, weights=None)
    compact = compact_model(model, ticket)
    structure = EncoderStructure(model)
    hidden, inter, size, seq = structure.hidden_size, structure.intermediate_size, structure.head_size, 64
    expected = 0
    for layer in range(structure.num_layers):
        width = int(ticket.head_mask[layer].sum()) * size
        mlp = inter if ticket.mlp_mask[layer] else 0
        expected += 2 * (seq * (4 * hidden * width + 2 * hidden * mlp) + 2 * seq * seq * width)
    assert encoder_flops(compact, seq) == expected
    dense = encoder_flops(model, seq)
    assert dense == 2 * structure.num_layers * (
        seq * (4 * hidden * hidden + 2 * hidden * inter) + 2 * seq * seq * hidden
    )
    # the count follows the modules, not the ticket: shrink one layer further by hand and the count drops
    layer = EncoderStructure(compact).layers[int(torch.nonzero(ticket.mlp_mask)[0])]
    layer.intermediate.weight = torch.nn.Parameter(layer.intermediate.weight[:1])
    assert encoder_flops(compact, seq) < expected


def test_compaction_rows_compare_identical_models():
    from benchmarks.run import bench_compaction

    workload = make_workload(quick=True)
    workload.batches = workload.batches[:1]
    a, b = workload.fresh_model(), workload.fresh_model()
    assert all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))
    rows = bench_compaction(workload, repeats=1)
    assert [r["kept"] for r in rows] == [0.75, 0.5, 0.25]
    assert max(r["max_abs_logit_error"] for r in rows) <= 1e-5


def small_workload():
    """The quick workload with one small batch: the structure of a figure, not its timing."""
    workload = make_workload(quick=True)
    workload.batches = [{k: v[:2, :32] if v.dim() == 2 else v[:2] for k, v in workload.batches[0].items()}]
    return workload


def test_training_flops_count_the_whole_model():
    from benchmarks.flops import EMBEDDING_FLOPS_PER_ELEMENT, model_flops, training_flops

    model = make_workload(quick=True).fresh_model()
    structure = EncoderStructure(model)
    hidden, seq, batch = structure.hidden_size, 32, 2
    head = EMBEDDING_FLOPS_PER_ELEMENT * batch * seq * hidden + 2 * batch * (hidden * hidden + hidden * 2)
    assert model_flops(model, seq, batch) == encoder_flops(model, seq, batch) + head
    assert training_flops(model, seq, batch) == 3 * model_flops(model, seq, batch)
    compact = compact_model(model, ticket_for(model, heads=0.25, mlps=0.25, weights=None))
    # embeddings, pooler and classifier do not shrink: the whole-model ratio is below the encoder-only one
    whole = model_flops(model, seq, batch) / model_flops(compact, seq, batch)
    assert 1 < whole < encoder_flops(model, seq, batch) / encoder_flops(compact, seq, batch)


def test_quick_run_writes_every_figure_and_target(tmp_path, monkeypatch):
    import json

    import benchmarks.run as run

    monkeypatch.setattr(run, "make_workload", lambda quick, device, model: small_workload())
    output = tmp_path / "results.json"
    only = "compact_training,retrain_stage,onnx"
    assert (
        run.main(
            [
                "--quick",
                "--repeats",
                "1",
                "--retrain-steps",
                "1",
                "--only",
                only,
                "--output",
                str(output),
                "--same-process",
            ]
        )
        == 0  # fmt: skip
    )
    results = json.loads(output.read_text())
    rows = results["compact_training"]
    assert [r["kept"] for r in rows] == [0.75, 0.5, 0.25]
    for r in rows:
        assert set(r) >= {"kept", "measured_speedup", "predicted_speedup", "efficiency", "gated_s", "compact_s"}
        assert r["efficiency"] == r["measured_speedup"] / r["predicted_speedup"]
    assert rows[0]["predicted_speedup"] < rows[1]["predicted_speedup"] < rows[2]["predicted_speedup"]
    stage = results["retrain_stage"]
    assert set(stage["tickets"]) == {"good", "random", "bad"} and stage["steps"] == 1
    assert stage["speedup"] == stage["gated_s"] / stage["compact_s"]
    sizes = {(t["kept_heads"], t["kept_mlps"]) for t in stage["tickets"].values()}
    assert len(sizes) == 1  # the random and bad tickets have the good ticket's size
    efficiency = [t for t in results["targets"] if "training step: measured / predicted" in t["figure"]]
    assert [t["target"] for t in efficiency] == [">= 0.7"] * 3
    assert all(t["met"] == (t["value"] >= 0.7) for t in efficiency)
    if "skipped" not in results["onnx"]:
        assert results["onnx"]["dense"]["max_abs_logit_error"] <= 1e-4
        assert results["onnx"]["compact"]["max_abs_logit_error"] <= 1e-4
    assert "| figure | measured | target | met |" in results["table"]


def test_targets_of_the_full_run():
    from benchmarks.run import table, target_rows

    results = {
        "training_step": {"ratio": 1.03, "noise_floor": 1.004, "masking_share": 0.002},
        "compact_training": [{"kept": 0.5, "measured_speedup": 1.8, "predicted_speedup": 2.0, "efficiency": 0.9}],
        "retrain_stage": {"speedup": 1.4, "steps": 20, "tickets": {"good": {"kept_heads": 29, "kept_mlps": 3}}},
    }
    rows = {r["figure"].split(" (")[0].strip(): r for r in target_rows(results, quick=False)}
    assert rows["training step with ticket / without"]["met"] is False  # 1.03 > 1.02
    assert rows["noise floor: the same step, second model without ticket / first"]["value"] == 1.004
    assert rows["training step: measured / predicted at 50%"] == {
        "figure": "  training step: measured / predicted at 50%", "value": 0.9, "target": ">= 0.85", "met": True,
    }  # fmt: skip
    assert rows["retrain stage, gated / compacted wall time"]["met"] is False  # 1.4 < 1.5
    assert "| NO |" in table(target_rows(results, quick=False))


def test_interleaved_rounds_time_every_variant_once_per_round_in_rotating_order():
    from benchmarks.run import interleaved_rounds

    calls = []
    variants = {name: (lambda n=name: calls.append(n)) for name in "ABC"}
    rounds = interleaved_rounds(variants, rounds=4, warmup=1)
    assert calls[:3] == ["A", "B", "C"]  # warm-up, not timed
    assert [calls[3 + 3 * i : 6 + 3 * i] for i in range(4)] == [list("ABC"), list("CBA"), list("BCA"), list("ACB")]
    assert len(rounds) == 4 and all(set(r) == set("ABC") and min(r.values()) >= 0 for r in rounds)


def test_each_figure_runs_in_a_fresh_process_with_the_same_options(monkeypatch):
    import json
    import sys

    import benchmarks.run as run

    seen = []

    def fake_run(command, check, stdout):
        seen.append(command)
        output = command[command.index("--output") + 1]
        name = command[command.index("--only") + 1]
        with open(output, "w") as f:
            json.dump({name: {"figure": name}}, f)

    monkeypatch.setattr(run.subprocess, "run", fake_run)
    argv = ["--quick", "--only", "onnx,memory", "--output", "/elsewhere.json", "--repeats=2"]
    assert run._in_fresh_process("memory", argv) == {"figure": "memory"}
    command = seen[0]
    assert command[:2] == [sys.executable, run.__file__]
    assert command[2:4] == ["--quick", "--repeats=2"] and command[4:6] == ["--only", "memory"]
    assert "/elsewhere.json" not in command
