import numpy as np
import pytest
import torch

from hf_lottery import LotteryTicket
from hf_lottery.analysis import plots

from .conftest import tiny_bert
from .test_gates import magnitude_ticket


PNG = b"\x89PNG\r\n\x1a\n"


def tickets():
    masks = [torch.tensor([[1, 0], [1, 1]]), torch.tensor([[1, 1], [0, 1]]), torch.tensor([[1, 0], [0, 1]])]
    return [
        LotteryTicket(head_mask=m, mlp_mask=torch.tensor([1, i % 2]), head_importance=torch.rand(2, 2))
        for i, m in enumerate(masks)
    ]


def assert_png(path):
    data = path.read_bytes()
    assert data[:8] == PNG and len(data) > 2000


def test_head_survival_mean_and_std(tmp_path):
    ts = tickets()
    expected_mean = np.array([[3, 1], [1, 3]]) / 3
    assert np.allclose(plots.head_survival_matrix(ts), expected_mean)
    assert np.allclose(plots.head_survival_matrix(ts, "std"), np.sqrt(expected_mean * (1 - expected_mean)))
    assert_png(plots.plot_head_survival(ts, tmp_path / "mean.png"))
    assert_png(plots.plot_head_survival_std(ts, tmp_path / "std.png"))
    assert_png(plots.plot_head_survival(ts[0].head_mask, tmp_path / "one.png"))
    assert not list(tmp_path.glob("*.tmp"))


def test_mlp_survival_and_importance(tmp_path):
    ts = tickets()
    assert np.allclose(plots.mlp_survival_vector(ts), [1.0, 1 / 3])
    assert_png(plots.plot_mlp_survival(ts, tmp_path / "mlp.png"))
    assert_png(plots.plot_importance(ts[0], tmp_path / "importance.png"))
    with pytest.raises(ValueError, match="no head_importance"):
        plots.plot_importance(ts[0].copy(head_importance=None), tmp_path / "x.png")


def test_magnitude_qkv_survival(tmp_path):
    model = tiny_bert()
    ticket = magnitude_ticket(model)
    name = "layer.1.attention.self.key.weight"
    ticket.weight_masks[name][:8] = False  # every row of head 0 (head size 8) of layer 1's K is pruned
    matrices = plots.qkv_survival_matrices([ticket])
    assert matrices["key"][1, 0] == 0.0
    expected = ticket.weight_masks["layer.2.attention.self.value.weight"].any(1).float().view(4, 8).mean(1).numpy()
    assert np.allclose(matrices["value"][2], expected)
    assert_png(plots.plot_magnitude_qkv_survival([ticket, ticket], tmp_path / "qkv.png"))
    with pytest.raises(ValueError, match="magnitude ticket"):
        plots.qkv_survival_matrices([LotteryTicket.full(model)])


def test_bad_shapes(tmp_path):
    with pytest.raises(ValueError, match="same shape|one shape|layers, heads"):
        plots.plot_head_survival([torch.ones(2, 2), torch.ones(3, 2)], tmp_path / "x.png")
    with pytest.raises(ValueError, match="'mean' or 'std'"):
        plots.head_survival_matrix(tickets(), "max")
