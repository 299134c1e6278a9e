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
