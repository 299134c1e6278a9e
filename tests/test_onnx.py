"""ONNX export (`export_onnx`): onnxruntime gives torch's logits at two input shapes, for every kind of pruned model."""

import json

import numpy as np
import pytest
import torch
from transformers import AutoModelForSequenceClassification

from hf_lottery import EncoderStructure, LotteryTicket, apply_ticket, compact_model, export_onnx, load_pruned_model
from hf_lottery.models.onnx_export import uses_token_type_ids

from .conftest import tiny_batch
from .conftest import tiny_bert as _tiny_bert
from .test_gates import magnitude_ticket
from .test_hub_protocol import hub  # noqa: F401  (the fake-Hub fixture)
from .test_loading import PRUNED_HEADS, head_pruned_checkpoint


ort = pytest.importorskip("onnxruntime", reason="ONNX tests need onnxruntime: pip install 'hf-lottery[onnx]'")

SHAPES = ((2, 11), (5, 7))


def tiny_bert(**overrides):
    """Weights drawn wider than BERT's 0.02, so logits are O(1) and a 1e-4 tolerance is a tight check."""
    return _tiny_bert(initializer_range=0.1, **overrides)


def varied_ticket(model) -> LotteryTicket:
    """A different head count in every layer (3, 1, 4 of 4) and the middle MLP removed."""
    head_mask = torch.tensor([[1, 0, 1, 1], [0, 0, 1, 0], [1, 1, 1, 1]], dtype=torch.bool)
    return LotteryTicket.full(model, kind="good").copy(head_mask=head_mask, mlp_mask=torch.tensor([True, False, True]))


def onnx_logits(path, batch, names):
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    feeds = {"input_ids": batch["input_ids"], "attention_mask": batch["attention_mask"]}
    if "token_type_ids" in names:
        feeds["token_type_ids"] = torch.zeros_like(batch["input_ids"])
    assert [i.name for i in session.get_inputs()] == list(names)
    assert session.get_outputs()[0].name == "logits"
    return session.run(None, {k: v.numpy() for k, v in feeds.items()})[0]


def assert_matches_torch(path, model, names=("input_ids", "attention_mask", "token_type_ids")):
    for batch_size, seq_len in SHAPES:
        batch = tiny_batch(batch_size=batch_size, seq_len=seq_len, seed=batch_size)  # row 0 is padded
        with torch.no_grad():
            expected = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits.numpy()
        got = onnx_logits(path, batch, names)
        assert got.shape == expected.shape == (batch_size, 2)
        np.testing.assert_allclose(got, expected, rtol=0, atol=1e-4)


@pytest.mark.parametrize("attn", ["eager", "sdpa"])
def test_dense_model_with_a_ticket_exports_the_pruned_outputs(tmp_path, attn):
    model = tiny_bert(attn_implementation=attn)
    ticket = varied_ticket(model)
    handle = apply_ticket(model, ticket)
    path = export_onnx(model, tmp_path / "onnx")
    assert path == tmp_path / "onnx" / "model.onnx"
    assert_matches_torch(path, model)
    # the ticket is in the graph: the unpruned model gives other logits
    batch = tiny_batch(batch_size=2, seq_len=11, seed=2)
    handle.remove()
    with torch.no_grad():
        full = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits.numpy()
    assert np.abs(onnx_logits(path, batch, ("input_ids", "attention_mask", "token_type_ids")) - full).max() > 1e-2
    assert json.loads((tmp_path / "onnx" / "config.json").read_text())["model_type"] == "bert"


def test_the_users_model_keeps_its_gates_after_export(tmp_path):
    model = tiny_bert()
    handle = apply_ticket(model, varied_ticket(model))
    hooks = sum(len(m._forward_pre_hooks) + len(m._forward_hooks) for m in model.modules())
    export_onnx(model, tmp_path)
    assert handle.is_active and hooks == sum(
        len(m._forward_pre_hooks) + len(m._forward_hooks) for m in model.modules()
    )
    assert EncoderStructure(model).heads_per_layer == [4, 4, 4]


def test_magnitude_ticket_exports_the_masked_weights(tmp_path):
    model = tiny_bert()
    apply_ticket(model, magnitude_ticket(model))
    assert_matches_torch(export_onnx(model, tmp_path), model)


def test_compacted_model_exports_with_a_head_count_per_layer_and_a_removed_mlp(tmp_path):
    model = tiny_bert()
    ticket = varied_ticket(model)
    small = compact_model(model, ticket)
    assert EncoderStructure(small).heads_per_layer == [3, 1, 4]
    assert EncoderStructure(small).layers[1].intermediate.out_features == 0
    path = export_onnx(small, tmp_path)
    assert_matches_torch(path, small)
    # compact=True on the gated dense model gives the same graph size and outputs
    gated = tiny_bert()
    apply_ticket(gated, ticket)
    path2 = export_onnx(gated, tmp_path / "from_gated", compact=True, verify=True)
    assert_matches_torch(path2, gated)
    assert abs(path2.stat().st_size - path.stat().st_size) < 0.01 * path.stat().st_size
    assert path.stat().st_size < 0.9 * export_onnx(tiny_bert(), tmp_path / "full").stat().st_size


def test_folders_export_through_load_pruned_model_with_their_files(tmp_path):
    model = tiny_bert()
    ticket = varied_ticket(model)
    dense_folder, compact_folder = tmp_path / "dense", tmp_path / "compact"
    ticket.bake(model).save_pretrained(dense_folder)  # as push_to_hub writes it: weights baked + ticket files
    ticket.save_pretrained(dense_folder)
    compact_model(tiny_bert(), ticket).save_pretrained(compact_folder)
    t4_folder = head_pruned_checkpoint(tmp_path / "t4", tiny_bert(), PRUNED_HEADS)  # transformers-4 head-pruned
    for folder, compact in ((dense_folder, False), (dense_folder, True), (compact_folder, False), (t4_folder, True)):
        out = tmp_path / f"onnx_{folder.name}_{compact}"
        path = export_onnx(folder, out, compact=compact)
        reference = load_pruned_model(folder)
        assert_matches_torch(path, reference)
        assert (out / "config.json").read_text() == (folder / "config.json").read_text()
        assert not (out / "model.safetensors").exists()
    assert (tmp_path / "onnx_dense_False" / "ticket_config.json").is_file()


def test_a_plain_folder_exports_with_auto_model(tmp_path):
    tiny_bert().save_pretrained(tmp_path / "plain")
    path = export_onnx(tmp_path / "plain", tmp_path / "onnx")
    assert_matches_torch(path, AutoModelForSequenceClassification.from_pretrained(tmp_path / "plain").eval())
    with pytest.raises(ValueError, match="holds no hf-lottery ticket"):
        export_onnx(tmp_path / "plain", tmp_path / "onnx2", compact=True)


def test_token_type_ids_only_where_the_model_has_token_types(tmp_path):
    model = tiny_bert(type_vocab_size=1)
    assert uses_token_type_ids(tiny_bert()) and not uses_token_type_ids(model)
    path = export_onnx(model, tmp_path)
    assert_matches_torch(path, model, names=("input_ids", "attention_mask"))


def test_fractional_gates_are_exported_as_traced_hooks(tmp_path):
    model = tiny_bert()
    handle = apply_ticket(model, None)
    handle.set_masks(head_mask=torch.full((3, 4), 0.5))
    path = export_onnx(model, tmp_path, verify=True)
    assert_matches_torch(path, model)
    reference = tiny_bert()
    batch = tiny_batch(batch_size=2, seq_len=11, seed=2)
    with torch.no_grad():
        plain = reference(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits.numpy()
    assert np.abs(onnx_logits(path, batch, ("input_ids", "attention_mask", "token_type_ids")) - plain).max() > 1e-2


def onnx_weight_count(path) -> int:
    """Numbers stored in the graph's initializers (its weights), the accounting of the issue's 16.8 M vs 12.7 M."""
    import onnx

    return sum(int(np.prod(tensor.dims)) for tensor in onnx.load(str(path)).graph.initializer)


def distinct_weights_bert():
    """tiny_bert with no two equal tensors (the exporter stores equal ones, e.g. fresh LayerNorms, once)."""
    model = tiny_bert()
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.normal_(0, 0.1)
    return model


def test_cli_exports_a_compact_folder_compact_and_verifies_it(tmp_path, capsys):
    from hf_lottery.cli import main

    model = distinct_weights_bert()
    ticket = varied_ticket(model)
    small = compact_model(model, ticket)
    small.save_pretrained(tmp_path / "compact")
    assert main(["export", "--onnx", str(tmp_path / "compact"), "--output_dir", str(tmp_path / "onnx")]) == 0
    assert onnx_weight_count(tmp_path / "onnx" / "model.onnx") == sum(p.numel() for p in small.parameters())
    assert "largest logit difference to torch" in capsys.readouterr().err  # verified by default
    # --compact: a dense folder with its ticket exports the same compact graph
    ticket.bake(model).save_pretrained(tmp_path / "dense")
    ticket.save_pretrained(tmp_path / "dense")
    assert main(["export", "--onnx", str(tmp_path / "dense"), "--output_dir", str(tmp_path / "o2"), "--compact"]) == 0
    assert onnx_weight_count(tmp_path / "o2" / "model.onnx") == sum(p.numel() for p in small.parameters())
    assert onnx_weight_count(export_onnx(tmp_path / "dense", tmp_path / "o3")) == sum(
        p.numel() for p in model.parameters()
    )  # without --compact: the dense graph, pruned parts as zeros


def test_protocol_export_takes_a_hub_id(hub, tmp_path):  # noqa: F811
    import huggingface_hub

    small = compact_model(tiny_bert(), varied_ticket(tiny_bert()))
    small.save_pretrained(tmp_path / "compact")
    huggingface_hub.HfApi().create_repo("user/compact")
    huggingface_hub.HfApi().upload_folder(repo_id="user/compact", folder_path=str(tmp_path / "compact"))
    assert_matches_torch(export_onnx("user/compact", tmp_path / "onnx"), small)
    assert (tmp_path / "onnx" / "config.json").is_file()


def test_a_graph_that_differs_from_torch_is_refused(tmp_path, monkeypatch):
    run = ort.InferenceSession.run
    monkeypatch.setattr(ort.InferenceSession, "run", lambda self, *args: [run(self, *args)[0] + 1])
    with pytest.raises(ValueError, match=r"differ from torch's by 1\.00e\+00 \(more than 1e-4\)"):
        export_onnx(tiny_bert(), tmp_path)
