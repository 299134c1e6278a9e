import copy
import json

import pytest
import torch
from transformers import AutoModelForSequenceClassification, BertForSequenceClassification

from hf_lottery import (
    EncoderStructure,
    LotteryTicket,
    apply_ticket,
    compact_model,
    load_pruned_model,
    register_auto_classes,
)
from hf_lottery.models.compaction import COMPACT_WEIGHTS_NAME, SPEC_KEY
from hf_lottery.structure import prunable_parameter_counts

from .conftest import minilm_path, tiny_batch, tiny_bert
from .test_gates import magnitude_ticket, structured_ticket


def inputs(batch):
    return {k: v for k, v in batch.items() if k != "labels"}


def gated_and_compact(model, ticket, batch):
    compact = compact_model(model, ticket)
    with torch.no_grad(), apply_ticket(model, ticket):
        gated = model(**inputs(batch)).logits
    with torch.no_grad():
        small = compact(**inputs(batch)).logits
    return gated, small, compact


def n_params(model):
    return sum(p.numel() for p in model.parameters())


@pytest.mark.parametrize("attn", ["eager", "sdpa"])
def test_compact_logits_equal_gated_logits(attn):
    model = tiny_bert(attn_implementation=attn)
    ticket = structured_ticket(model)  # includes a layer with every head pruned and a pruned MLP
    gated, small, compact = gated_and_compact(model, ticket, tiny_batch())
    torch.testing.assert_close(small, gated, atol=1e-5, rtol=0)
    structure = EncoderStructure(compact)
    assert structure.heads_per_layer == ticket.head_mask.sum(1).tolist()
    assert structure.layers[1].query.out_features == 0 and structure.layers[1].attention_self.all_head_size == 0
    assert structure.layers[2].intermediate.out_features == 0
    assert not structure.layers[2].mlp_output.bias.detach().any()


def test_parameter_count_is_exactly_what_the_ticket_predicts():
    model = tiny_bert()
    ticket = structured_ticket(model)
    compact = compact_model(model, ticket)
    counts = prunable_parameter_counts(EncoderStructure(model).dims())
    expected = (
        n_params(model)
        - int((~ticket.head_mask).sum()) * counts["per_head"]
        - int((~ticket.mlp_mask).sum()) * counts["per_mlp"]
    )
    assert n_params(compact) == expected < n_params(model)


def test_original_model_is_untouched_and_applied_gates_are_not_copied():
    model = tiny_bert()
    ticket = structured_ticket(model)
    handle = apply_ticket(model, ticket)  # bakes the ticket's zeros into the weights
    before = {k: v.clone() for k, v in model.state_dict().items()}
    compact = compact_model(model, ticket)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert not any(m._forward_pre_hooks or m._forward_hooks for m in compact.modules())
    handle.remove()


def test_weight_masks_are_baked_as_zeros():
    model = tiny_bert()
    ticket = structured_ticket(model).copy(weight_masks=magnitude_ticket(model).weight_masks, method="magnitude")
    gated, small, _ = gated_and_compact(model, ticket, tiny_batch())
    torch.testing.assert_close(small, gated, atol=1e-5, rtol=0)


def test_save_and_reload_the_identical_compact_model(tmp_path):
    model = tiny_bert()
    ticket = structured_ticket(model)
    compact = compact_model(model, ticket)
    compact.save_pretrained(tmp_path)
    assert (tmp_path / COMPACT_WEIGHTS_NAME).is_file() and not (tmp_path / "model.safetensors").exists()
    reloaded = load_pruned_model(tmp_path, compact=True)
    assert type(reloaded).__name__ == type(compact).__name__
    for (name, a), b in zip(compact.state_dict().items(), reloaded.state_dict().values()):
        assert torch.equal(a, b), name
    batch = inputs(tiny_batch())
    with torch.no_grad():  # the reload uses the default (sdpa) attention, the original eager
        torch.testing.assert_close(reloaded(**batch).logits, compact.eval()(**batch).logits, atol=1e-6, rtol=0)
    # after `hf_lottery.register_auto_classes()` the Auto class works too
    register_auto_classes()
    auto = AutoModelForSequenceClassification.from_pretrained(tmp_path)
    assert n_params(auto) == n_params(compact)


def test_compact_config_keeps_dense_sizes_and_plain_from_pretrained_fails_loudly(tmp_path):
    ticket = structured_ticket(tiny_bert())
    compact_model(tiny_bert(), ticket).save_pretrained(tmp_path)
    config = json.loads((tmp_path / "config.json").read_text())
    assert (config["num_attention_heads"], config["intermediate_size"]) == (4, 37)  # numbers: the dense sizes
    spec = config[SPEC_KEY]
    assert [len(heads) for heads in spec["heads_kept"]] == ticket.head_mask.sum(1).tolist()
    assert spec["mlps_kept"] == ticket.mlp_mask.tolist() and spec["num_attention_heads"] == 4
    for kwargs in ({}, {"ignore_mismatched_sizes": True}):  # never silently re-initialised
        with pytest.raises(OSError, match=r"no file named model\.safetensors"):
            BertForSequenceClassification.from_pretrained(tmp_path, **kwargs)
    # the Auto classes reject the unknown model type until registered: tests/test_loading.py (a fresh process)
    readme = (tmp_path / "README_LOADING.txt").read_text()
    assert "load_pruned_model(path, compact=True)" in readme and "register_auto_classes()" in readme


def test_a_compact_model_takes_no_ticket():
    model = tiny_bert()
    compact = compact_model(model, structured_ticket(model))
    with pytest.raises(ValueError, match="physically compacted"):
        apply_ticket(compact, LotteryTicket.full(model))


def test_compaction_on_packaged_minilm():
    model = BertForSequenceClassification.from_pretrained(minilm_path(), num_labels=2).eval()
    from transformers import AutoTokenizer

    batch = AutoTokenizer.from_pretrained(minilm_path())(
        ["a gripping, funny film", "the plot never comes together."], padding=True, return_tensors="pt"
    )
    ticket = structured_ticket(model, seed=2)
    compact = compact_model(model, ticket)
    with torch.no_grad(), apply_ticket(model, ticket):
        gated = model(**batch).logits
    with torch.no_grad():
        torch.testing.assert_close(compact(**batch).logits, gated, atol=1e-5, rtol=0)
    assert n_params(compact) < n_params(model)
    assert copy.deepcopy(compact) is not None
