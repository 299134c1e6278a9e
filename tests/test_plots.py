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


def test_magnitude_survival_is_the_share_of_weights_per_head_and_tensor(tmp_path):
    model = tiny_bert()
    ticket = magnitude_ticket(model)
    ticket.weight_masks["layer.1.attention.self.key.weight"][:8] = False  # every weight of head 0 of layer 1's K
    query = ticket.weight_masks["layer.0.attention.self.query.weight"]
    query[:8] = False
    query[:8, 0] = True  # each row of head 0 keeps one weight of 32: 1/32 survives, not "every row survives"
    matrices = plots.qkv_survival_matrices([ticket])
    assert matrices["key"][1, 0] == 0.0 and matrices["query"][0, 0] == 1 / 32
    value = ticket.weight_masks["layer.2.attention.self.value.weight"].double().view(4, 8 * 32).mean(1).numpy()
    assert np.allclose(matrices["value"][2], value)
    output = ticket.weight_masks["layer.2.attention.output.dense.weight"].double().T.reshape(4, 8 * 32).mean(1)
    assert np.allclose(matrices["output"][2], output.numpy())
    parts = [matrices[p] for p in ("query", "key", "value", "output")]
    assert np.allclose(matrices["head"], np.mean(parts, axis=0))
    tensors = plots.tensor_survival_matrix(ticket)
    assert tensors.shape == (3, 6)
    assert tensors[2, 4] == ticket.weight_masks["layer.2.intermediate.dense.weight"].double().mean().item()
    assert_png(plots.plot_magnitude_qkv_survival([ticket, ticket], tmp_path / "qkv.png"))
    assert_png(plots.plot_tensor_survival(ticket, tmp_path / "tensors.png"))
    with pytest.raises(ValueError, match="magnitude ticket"):
        plots.qkv_survival_matrices([LotteryTicket.full(model)])


def test_structural_pruning_counts_in_weight_survival():
    model = tiny_bert()
    ticket = magnitude_ticket(model)
    head_mask = ticket.head_mask.clone()
    head_mask[0, 1] = False
    mlp_mask = ticket.mlp_mask.clone()
    mlp_mask[2] = False
    ticket = ticket.copy(head_mask=head_mask, mlp_mask=mlp_mask)
    assert plots.qkv_survival_matrices([ticket])["head"][0, 1] == 0.0
    assert plots.tensor_survival_matrix(ticket)[2, 4:].tolist() == [0.0, 0.0]


@pytest.fixture
def figures(monkeypatch):
    """The matplotlib figures the plot functions save, for inspection."""
    saved = []
    real = plots.save_figure

    def keep(fig, path):
        saved.append(fig)
        return real(fig, path)

    monkeypatch.setattr(plots, "save_figure", keep)
    return saved


def test_one_ticket_is_a_kept_pruned_map_with_a_legend_and_a_title(tmp_path, figures):
    ticket = tickets()[0].copy(task="sst2", base_model="sentence-transformers/all-MiniLM-L6-v2", seed=42)
    plots.plot_head_survival(ticket, tmp_path / "one.png")
    (fig,) = figures
    assert len(fig.axes) == 1  # no continuous colour bar
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["kept", "pruned"]
    assert ax.get_title() == "Heads kept (3/4) — sst2, sentence-transformers/all-MiniLM-L6-v2, seed 42"
    assert min(label.get_fontsize() for label in ax.get_xticklabels()) >= 9


def test_several_tickets_name_the_seeds_and_use_a_share_colour_bar(tmp_path, figures):
    ts = [t.copy(task="rte", seed=s) for s, t in zip((1, 2, 3), tickets())]
    plots.plot_head_survival(ts, tmp_path / "many.png")
    (fig,) = figures
    assert len(fig.axes) == 2 and fig.axes[1].get_ylabel() == "share of tickets keeping the head"
    assert fig.axes[0].get_title() == "Head survival — rte, 3 seeds"


def test_all_mlps_pruned_is_said_not_left_blank(tmp_path, figures):
    ticket = tickets()[0].copy(mlp_mask=torch.tensor([0, 0]))
    for items in ([ticket], [ticket, ticket]):
        plots.plot_mlp_survival(items, tmp_path / "mlp.png")
        assert "all MLPs pruned" in [t.get_text() for t in figures[-1].axes[0].texts]


def test_a_local_base_model_is_named_by_its_folder_only(tmp_path):
    ticket = tickets()[0].copy(base_model=str(tmp_path / "models" / "my-bert"))
    assert plots.describe(ticket) == "my-bert, one ticket"


def test_bad_shapes(tmp_path):
    with pytest.raises(ValueError, match="same shape|one shape|layers, heads"):
        plots.plot_head_survival([torch.ones(2, 2), torch.ones(3, 2)], tmp_path / "x.png")
    with pytest.raises(ValueError, match="'mean' or 'std'"):
        plots.head_survival_matrix(tickets(), "max")
