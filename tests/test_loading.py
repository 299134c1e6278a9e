"""`load_pruned_model` on every folder kind: compact (several architectures), ticket files, config entry, and
transformers-4 head-pruned checkpoints; dense and compact results equal the gated full model."""

import json
import subprocess
import sys

import pytest
import torch
from safetensors.torch import save_file
from transformers import (
    AutoModel,
    AutoModelForMaskedLM,
    AutoModelForSequenceClassification,
    BertForMaskedLM,
    BertForSequenceClassification,
    BertForTokenClassification,
    BertModel,
)

from hf_lottery import LotteryTicket, apply_ticket, compact_model, load_pruned_model, register_auto_classes
from hf_lottery.downloads import TicketNotFoundError
from hf_lottery.files import CONFIG_TICKET_KEY
from hf_lottery.models.compaction import SPEC_KEY
from hf_lottery.models.loading import ticket_from_pruned_heads
from hf_lottery.structure import EncoderStructure

from .conftest import tiny_batch, tiny_bert, tiny_config
from .test_gates import magnitude_ticket, structured_ticket


PRUNED_HEADS = {"0": [1, 3], "1": [0, 1, 2, 3], "2": [2]}  # layer 1 loses every head


def inputs():
    return {k: v for k, v in tiny_batch().items() if k != "labels"}


def first_output(model):
    with torch.no_grad():
        out = model(**inputs())
    return out.logits if hasattr(out, "logits") else out.last_hidden_state


def gated_output(model, ticket):
    with torch.no_grad(), apply_ticket(model, ticket):
        return first_output(model)


def head_pruned_checkpoint(folder, model, pruned_heads):
    """A transformers-4 style checkpoint: Q/K/V rows and attention-output columns of pruned heads sliced away."""
    structure = EncoderStructure(model)
    size, prefix = structure.head_size, structure.encoder_prefix
    state = {k: v.clone() for k, v in model.state_dict().items()}
    for layer, heads in pruned_heads.items():
        keep = torch.tensor([h * size + i for h in range(structure.num_heads) if h not in heads for i in range(size)],
                            dtype=torch.long)  # fmt: skip
        base = f"{prefix}.layer.{layer}.attention"
        for part in ("query", "key", "value"):
            state[f"{base}.self.{part}.weight"] = state[f"{base}.self.{part}.weight"][keep].contiguous()
            state[f"{base}.self.{part}.bias"] = state[f"{base}.self.{part}.bias"][keep].contiguous()
        state[f"{base}.output.dense.weight"] = state[f"{base}.output.dense.weight"][:, keep].contiguous()
    folder.mkdir(parents=True, exist_ok=True)
    save_file(state, str(folder / "model.safetensors"), metadata={"format": "pt"})
    config = model.config.to_dict()
    config.update(pruned_heads=pruned_heads, architectures=[type(model).__name__], transformers_version="4.44.2")
    (folder / "config.json").write_text(json.dumps(config))
    return folder


def pruned_heads_ticket(model, pruned_heads):
    ticket = LotteryTicket.full(model, kind="custom")
    head_mask = ticket.head_mask.clone()
    for layer, heads in pruned_heads.items():
        head_mask[int(layer), heads] = False
    return ticket.copy(head_mask=head_mask)


# ----------------------------------------------------------------------------------- (d) transformers-4 checkpoints
def test_transformers4_head_pruned_checkpoint_loads_compact_and_dense(tmp_path):
    model = tiny_bert()
    folder = head_pruned_checkpoint(tmp_path / "t4", model, PRUNED_HEADS)
    expected = gated_output(model, pruned_heads_ticket(model, PRUNED_HEADS))
    with pytest.raises(RuntimeError, match="ignore_mismatched_sizes"):  # what this loader exists for
        BertForSequenceClassification.from_pretrained(folder)
    compact = load_pruned_model(folder, compact=True)
    assert EncoderStructure(compact).heads_per_layer == [2, 0, 3]
    torch.testing.assert_close(first_output(compact), expected, atol=1e-5, rtol=0)
    dense = load_pruned_model(folder)
    assert EncoderStructure(dense).heads_per_layer == [4, 4, 4]
    torch.testing.assert_close(first_output(dense), expected, atol=1e-5, rtol=0)
    # dense = full-size architecture whose removed heads are exact zeros (so it is pruned even without the gates)
    dense.hf_lottery_handle.remove()
    torch.testing.assert_close(first_output(dense), expected, atol=1e-5, rtol=0)
    attention = dense.bert.encoder.layer[0].attention
    assert not attention.self.query.weight[8:16].any() and not attention.output.dense.weight[:, 24:32].any()
    assert dense.hf_lottery_ticket.masks_equal(pruned_heads_ticket(model, PRUNED_HEADS))


def test_ticket_from_pruned_heads_can_be_saved_and_compared(tmp_path):
    model = tiny_bert()
    ticket = ticket_from_pruned_heads(model.config.to_dict() | {"pruned_heads": PRUNED_HEADS})
    assert ticket.head_mask.sum(1).tolist() == [2, 0, 3] and ticket.mlp_mask.all()
    assert ticket.model_dims == EncoderStructure(model).dims()
    ticket.save_pretrained(tmp_path / "ticket")
    assert LotteryTicket.from_pretrained(tmp_path / "ticket") == ticket
    assert ticket.masks_equal(pruned_heads_ticket(model, PRUNED_HEADS))
    ticket.validate(model)  # it fits the dense architecture


def test_transformers4_checkpoint_saved_again_is_a_compact_folder(tmp_path):
    model = tiny_bert()
    compact = load_pruned_model(head_pruned_checkpoint(tmp_path / "t4", model, PRUNED_HEADS), compact=True)
    compact.save_pretrained(tmp_path / "again")
    config = json.loads((tmp_path / "again" / "config.json").read_text())
    assert "pruned_heads" not in config and config[SPEC_KEY]["heads_kept"] == [[0, 2], [], [0, 1, 3]]
    reloaded = load_pruned_model(tmp_path / "again", compact=True)
    torch.testing.assert_close(first_output(reloaded), first_output(compact), atol=1e-6, rtol=0)


# ----------------------------------------------------------------------------------- (a) compact folders
@pytest.mark.parametrize(
    "cls", [BertModel, BertForTokenClassification, BertForMaskedLM, BertForSequenceClassification]
)
def test_compact_folders_of_every_architecture_reload(tmp_path, cls):
    torch.manual_seed(0)
    model = cls(tiny_config()).eval()
    ticket = structured_ticket(model)
    expected = gated_output(model, ticket)
    compact_model(model, ticket).save_pretrained(tmp_path)
    config = json.loads((tmp_path / "config.json").read_text())
    assert config[SPEC_KEY]["architecture"] == cls.__name__ and config["architectures"] == [cls.__name__]
    small = load_pruned_model(tmp_path, compact=True)
    assert type(small).__name__ == f"Compact{cls.__name__}"
    torch.testing.assert_close(first_output(small), expected, atol=1e-5, rtol=0)
    dense = load_pruned_model(tmp_path)
    assert type(dense) is cls and EncoderStructure(dense).heads_per_layer == [4, 4, 4]
    torch.testing.assert_close(first_output(dense), expected, atol=1e-5, rtol=0)
    if cls is BertForMaskedLM:  # the tied decoder is restored, in both
        for loaded in (small, dense):
            assert loaded.cls.predictions.decoder.weight is loaded.bert.embeddings.word_embeddings.weight
            assert torch.equal(loaded.cls.predictions.decoder.weight, model.bert.embeddings.word_embeddings.weight)


def test_auto_classes_load_compact_folders_after_registering(tmp_path):
    torch.manual_seed(0)
    model = BertForMaskedLM(tiny_config()).eval()
    ticket = structured_ticket(model)
    compact_model(model, ticket).save_pretrained(tmp_path)
    register_auto_classes()
    for auto in (AutoModelForMaskedLM, AutoModel):
        loaded = auto.from_pretrained(tmp_path)
        assert type(loaded).__name__ == "CompactBertForMaskedLM"  # the recorded architecture
        torch.testing.assert_close(first_output(loaded), gated_output(model, ticket), atol=1e-5, rtol=0)
    config = json.loads((tmp_path / "config.json").read_text())  # a folder written under the old model type
    (tmp_path / "config.json").write_text(json.dumps(config | {"model_type": "hf_lottery_compact"}))
    assert type(AutoModel.from_pretrained(tmp_path)).__name__ == "CompactBertForMaskedLM"


def test_import_does_not_register_and_registering_needs_no_torch_pruning(tmp_path):
    model = tiny_bert()
    compact_model(model, structured_ticket(model)).save_pretrained(tmp_path)
    code = (
        "import sys, hf_lottery, pytest\n"
        "from transformers import AutoModelForSequenceClassification as Auto\n"
        "from transformers.models.auto.configuration_auto import CONFIG_MAPPING\n"
        "assert 'hf_lottery_compact' not in CONFIG_MAPPING, 'import registered'\n"
        "with pytest.raises(ValueError, match=r'type `hf_lottery_compact \\(load it with hf_lottery.load_pruned_model'):\n"
        f"    Auto.from_pretrained({str(tmp_path)!r})\n"
        "hf_lottery.register_auto_classes()\n"
        "assert 'hf_lottery_compact' in CONFIG_MAPPING\n"
        "assert 'torch_pruning' not in sys.modules, 'torch_pruning imported'\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


# ----------------------------------------------------------------------------------- (b), (c) dense folders
def test_dense_folder_with_ticket_files(tmp_path):
    model = tiny_bert()
    ticket = structured_ticket(model)
    model.save_pretrained(tmp_path)  # not baked: the gates make it pruned
    ticket.save_pretrained(tmp_path)
    expected = gated_output(model, ticket)
    torch.testing.assert_close(first_output(load_pruned_model(tmp_path)), expected, atol=1e-6, rtol=0)
    torch.testing.assert_close(first_output(load_pruned_model(tmp_path, compact=True)), expected, atol=1e-5, rtol=0)


def test_subfolder_is_read_whole_model_ticket_and_config(tmp_path):
    # the folder's root holds another model and ticket: everything comes from the subfolder, dense or compact
    model, other = tiny_bert(), tiny_bert(seed=1)
    ticket = structured_ticket(model)
    other.save_pretrained(tmp_path)
    LotteryTicket.full(other).save_pretrained(tmp_path)
    model.save_pretrained(tmp_path / "pruned")
    ticket.save_pretrained(tmp_path / "pruned")
    compact_model(model, ticket).save_pretrained(tmp_path / "small")
    expected = gated_output(model, ticket)
    loaded = load_pruned_model(tmp_path, subfolder="pruned")
    assert loaded.hf_lottery_ticket.masks_equal(ticket)
    torch.testing.assert_close(first_output(loaded), expected, atol=1e-6, rtol=0)
    torch.testing.assert_close(
        first_output(load_pruned_model(tmp_path, subfolder="small")), expected, atol=1e-5, rtol=0
    )
    register_auto_classes()
    small = AutoModelForSequenceClassification.from_pretrained(tmp_path, subfolder="small")
    torch.testing.assert_close(first_output(small), expected, atol=1e-5, rtol=0)
    (tmp_path / "outside").symlink_to(tmp_path.parent)
    with pytest.raises(ValueError, match="leads out of"):
        load_pruned_model(tmp_path, subfolder="outside")


def test_sharded_dense_folder_loads_its_own_shards(tmp_path):
    model = tiny_bert()
    ticket = structured_ticket(model)
    model.save_pretrained(tmp_path, max_shard_size="100KB")  # an index naming its shards: plain names, checked
    ticket.save_pretrained(tmp_path)
    assert len(list(tmp_path.glob("model-*.safetensors"))) > 1
    torch.testing.assert_close(
        first_output(load_pruned_model(tmp_path)), gated_output(model, ticket), atol=1e-6, rtol=0
    )


def test_dense_folder_with_the_ticket_in_its_config(tmp_path):
    model = tiny_bert()
    ticket = structured_ticket(model)
    expected = gated_output(model, ticket)
    ticket.bake(model)
    setattr(model.config, CONFIG_TICKET_KEY, ticket.to_config_entry())
    model.save_pretrained(tmp_path)
    plain = AutoModelForSequenceClassification.from_pretrained(tmp_path).eval()
    torch.testing.assert_close(first_output(plain), expected, atol=1e-6, rtol=0)
    dense = load_pruned_model(tmp_path)
    assert dense.hf_lottery_ticket.masks_equal(ticket)
    torch.testing.assert_close(first_output(dense), expected, atol=1e-6, rtol=0)
    torch.testing.assert_close(first_output(load_pruned_model(tmp_path, compact=True)), expected, atol=1e-5, rtol=0)


def test_a_plain_model_folder_holds_no_ticket(tmp_path):
    tiny_bert().save_pretrained(tmp_path)
    with pytest.raises(TicketNotFoundError, match="holds no hf-lottery ticket"):
        load_pruned_model(tmp_path)


def test_magnitude_ticket_recorded_in_the_config_is_recovered_from_the_zeros(tmp_path):
    model = tiny_bert()
    ticket = magnitude_ticket(model).copy(task="sst2", seed=3)
    expected = gated_output(model, ticket)
    ticket.bake(model)
    setattr(model.config, CONFIG_TICKET_KEY, ticket.to_config_entry(model))
    model.save_pretrained(tmp_path)
    torch.testing.assert_close(first_output(AutoModelForSequenceClassification.from_pretrained(tmp_path).eval()),
                               expected, atol=1e-6, rtol=0)  # fmt: skip
    dense = load_pruned_model(tmp_path)
    assert dense.hf_lottery_ticket.masks_equal(ticket) and dense.hf_lottery_ticket.seed == 3
    torch.testing.assert_close(first_output(dense), expected, atol=1e-6, rtol=0)


def test_a_compacted_model_keeps_the_recorded_tickets_metadata(tmp_path):
    model = tiny_bert()
    ticket = structured_ticket(model).copy(task="sst2", seed=7)
    setattr(model.config, CONFIG_TICKET_KEY, ticket.to_config_entry())
    compact_model(model, ticket).save_pretrained(tmp_path)
    for compact in (True, False):
        loaded = load_pruned_model(tmp_path, compact=compact).hf_lottery_ticket
        assert loaded.masks_equal(ticket) and (loaded.task, loaded.seed) == ("sst2", 7)
