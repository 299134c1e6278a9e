import json
from pathlib import Path

import pytest
import torch

from hf_lottery import LotteryTicket, load_legacy_ticket
from hf_lottery.structure import EncoderStructure, prunable_parameter_counts
from hf_lottery.tickets.ticket import TICKET_CONFIG_NAME, TICKET_MASKS_NAME

from .conftest import SEED_MASKS_DIR, require_shared, tiny_bert
from .test_gates import magnitude_ticket, structured_ticket


def rich_ticket():
    model = tiny_bert()
    ticket = structured_ticket(model)
    generator = torch.Generator().manual_seed(4)
    return ticket.copy(
        weight_masks=magnitude_ticket(model).weight_masks,
        method="magnitude",
        kind="good",
        base_model="some/bert",
        base_model_revision="abc123",
        task="sst2",
        seed=42,
        threshold=0.9,
        search_data="held-out",
        history=[{"step": 0, "phase": "heads+mlp", "heads_kept": 12, "mlps_kept": 3, "metric": 0.8125}],
        metrics={"full": 0.8125, "ticket": 0.75},
        head_importance=torch.rand(ticket.head_mask.shape, generator=generator),
        mlp_importance=torch.rand(ticket.mlp_mask.shape, generator=generator),
        extra={"note": "x"},
    )


def test_save_load_is_bit_exact(tmp_path):
    ticket = rich_ticket()
    folder = ticket.save_pretrained(tmp_path / "ticket")
    assert sorted(p.name for p in folder.iterdir()) == [TICKET_CONFIG_NAME, TICKET_MASKS_NAME]
    loaded = LotteryTicket.from_pretrained(folder)
    assert loaded == ticket
    assert loaded.head_mask.dtype == torch.bool
    assert torch.equal(loaded.head_importance, ticket.head_importance)
    config = json.loads((folder / TICKET_CONFIG_NAME).read_text())
    assert config["format_version"] == 1 and config["library"] == "hf-lottery"
    assert config["kept_heads"] == int(ticket.head_mask.sum())
    assert list(config) == sorted(config)  # sorted keys, stable diffs


def test_safetensors_metadata_carries_format_version(tmp_path):
    from safetensors import safe_open

    folder = rich_ticket().save_pretrained(tmp_path)
    with safe_open(str(folder / TICKET_MASKS_NAME), framework="pt") as handle:
        assert handle.metadata()["hf_lottery_format_version"] == "1"


def test_overwrite_leaves_no_temporary_files(tmp_path):
    ticket = rich_ticket()
    ticket.save_pretrained(tmp_path)
    ticket.copy(seed=7).save_pretrained(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == [TICKET_CONFIG_NAME, TICKET_MASKS_NAME]
    assert LotteryTicket.from_pretrained(tmp_path).seed == 7


def test_failed_write_keeps_previous_ticket(tmp_path, monkeypatch):
    ticket = rich_ticket()
    ticket.save_pretrained(tmp_path)
    import hf_lottery.tickets.serialization as serialization

    def broken(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(serialization, "masks_file_bytes", broken)
    with pytest.raises(OSError, match="disk full"):
        ticket.copy(seed=99).save_pretrained(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == [TICKET_CONFIG_NAME, TICKET_MASKS_NAME]
    assert LotteryTicket.from_pretrained(tmp_path) == ticket


def test_truncated_masks_file(tmp_path):
    folder = rich_ticket().save_pretrained(tmp_path)
    data = (folder / TICKET_MASKS_NAME).read_bytes()
    (folder / TICKET_MASKS_NAME).write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match="does not match the checksum.*truncated or corrupted. The way out"):
        LotteryTicket.from_pretrained(folder)


def test_corrupted_masks_without_checksum(tmp_path):
    folder = rich_ticket().save_pretrained(tmp_path)
    config = json.loads((folder / TICKET_CONFIG_NAME).read_text())
    del config["masks_sha256"]
    (folder / TICKET_CONFIG_NAME).write_text(json.dumps(config))
    (folder / TICKET_MASKS_NAME).write_bytes(b"\x10\x00\x00\x00garbage")
    with pytest.raises(ValueError, match="corrupted or truncated"):
        LotteryTicket.from_pretrained(folder)


def test_corrupted_config(tmp_path):
    folder = rich_ticket().save_pretrained(tmp_path)
    (folder / TICKET_CONFIG_NAME).write_text("{not json")
    with pytest.raises(ValueError, match="not valid JSON"):
        LotteryTicket.from_pretrained(folder)


def test_newer_format_version_is_refused(tmp_path):
    folder = rich_ticket().save_pretrained(tmp_path)
    config = json.loads((folder / TICKET_CONFIG_NAME).read_text())
    config["format_version"] = 99
    (folder / TICKET_CONFIG_NAME).write_text(json.dumps(config))
    with pytest.raises(ValueError, match="Upgrade hf-lottery"):
        LotteryTicket.from_pretrained(folder)


def test_missing_folder_and_incomplete_folder(tmp_path):
    with pytest.raises(FileNotFoundError):
        LotteryTicket.from_pretrained(tmp_path / "does-not-exist")
    (tmp_path / "half").mkdir()
    (tmp_path / "half" / TICKET_CONFIG_NAME).write_text("{}")
    with pytest.raises(FileNotFoundError, match="missing ticket_masks.safetensors"):
        LotteryTicket.from_pretrained(tmp_path / "half")


def test_ticket_for_another_model_size(tmp_path):
    ticket = structured_ticket(tiny_bert())
    with pytest.raises(ValueError, match=r"head_mask has shape \(3, 4\).*2 layers × 4 heads"):
        ticket.validate(tiny_bert(num_hidden_layers=2))
    with pytest.raises(ValueError, match="intermediate_size: ticket 37, model 40"):
        ticket.validate(tiny_bert(intermediate_size=40))


def test_unknown_weight_mask_key_and_wrong_shape():
    model = tiny_bert()
    ticket = LotteryTicket.full(model).copy(weight_masks={"layer.9.attention.self.query.weight": torch.ones(32, 32)})
    with pytest.raises(ValueError, match=r"does not have: \['layer.9.attention.self.query.weight'\]"):
        ticket.validate(model)
    ticket = LotteryTicket.full(model).copy(weight_masks={"layer.0.attention.self.query.weight": torch.ones(3, 3)})
    with pytest.raises(ValueError, match=r"shape \(3, 3\); the model's parameter has shape \(32, 32\)"):
        ticket.validate(model)
    with pytest.raises(ValueError, match="not an encoder parameter name"):
        LotteryTicket(
            head_mask=torch.ones(1, 2),
            mlp_mask=torch.ones(1),
            weight_masks={"bert.pooler.dense.weight": torch.ones(2)},
        )


def test_mask_values_other_than_zero_and_one():
    with pytest.raises(ValueError, match=r"`head_mask` must contain only 0 and 1.*0\.5"):
        LotteryTicket(head_mask=torch.full((2, 2), 0.5), mlp_mask=torch.ones(2))
    with pytest.raises(ValueError, match="NaN"):
        LotteryTicket(head_mask=torch.ones(2, 2), mlp_mask=torch.tensor([1.0, float("nan")]))
    with pytest.raises(ValueError, match="one entry per layer"):
        LotteryTicket(head_mask=torch.ones(2, 2), mlp_mask=torch.ones(3))
    with pytest.raises(ValueError, match="`kind` must be one of"):
        LotteryTicket(head_mask=torch.ones(2, 2), mlp_mask=torch.ones(2), kind="lucky")


def test_masks_file_with_non_binary_values_is_rejected(tmp_path):
    from safetensors.torch import save_file

    folder = rich_ticket().save_pretrained(tmp_path)
    config = json.loads((folder / TICKET_CONFIG_NAME).read_text())
    for key in ("masks_sha256", "kept_heads", "heads_kept_per_layer", "kept_mlps", "mlps_kept", "weight_masks_kept"):
        del config[key]
    config["weight_mask_names"] = []
    (folder / TICKET_CONFIG_NAME).write_text(json.dumps(config))
    save_file({"head_mask": torch.full((3, 4), 2.0), "mlp_mask": torch.ones(3)}, str(folder / TICKET_MASKS_NAME))
    with pytest.raises(ValueError, match="only 0 and 1"):
        LotteryTicket.from_pretrained(folder)


def test_summary_counts_kept_weights_exactly():
    model = tiny_bert()
    ticket = structured_ticket(model)
    counts = prunable_parameter_counts(EncoderStructure(model).dims())
    pruned_heads = int((~ticket.head_mask).sum())
    pruned_mlps = int((~ticket.mlp_mask).sum())
    summary = ticket.summary()
    assert summary["weights_total"] == counts["total"]
    assert (
        summary["weights_kept"]
        == counts["total"] - pruned_heads * counts["per_head"] - pruned_mlps * counts["per_mlp"]
    )
    magnitude = magnitude_ticket(model)
    kept = sum(int(m.sum()) for m in magnitude.weight_masks.values())
    assert magnitude.summary()["weights_kept"] == kept
    assert magnitude.sparsity == pytest.approx(1 - kept / counts["total"])


def test_legacy_import_of_the_papers_masks(tmp_path):
    folder = require_shared(SEED_MASKS_DIR / "CoLA" / "seed_1337")
    ticket = load_legacy_ticket(folder)
    summary = ticket.summary()
    assert (summary["kept_heads"], summary["kept_mlps"]) == (95, 11)
    assert (ticket.task, ticket.seed, ticket.base_model) == ("CoLA", 1337, "bert-base-uncased")
    assert ticket.head_importance is not None and ticket.head_importance.shape == (12, 12)
    assert LotteryTicket.from_pretrained(ticket.save_pretrained(tmp_path)) == ticket


def test_legacy_import_errors(tmp_path):
    import numpy as np

    with pytest.raises(FileNotFoundError, match="no head_mask.npy"):
        load_legacy_ticket(tmp_path)
    np.save(tmp_path / "head_mask.npy", np.full((2, 2), 3.0))
    with pytest.raises(ValueError, match="only 0 and 1"):
        load_legacy_ticket(tmp_path)
    (tmp_path / "head_mask.npy").write_bytes(b"\x93NUMPY garbage")
    with pytest.raises(ValueError, match="not a readable .npy"):
        load_legacy_ticket(tmp_path)


# ---------------------------------------------------------------- the ticket recorded in a model's config.json
def test_config_entry_round_trip_structured_is_exact():
    ticket = rich_ticket().copy(weight_masks={}, method="structured")
    entry = json.loads(json.dumps(ticket.to_config_entry()))
    assert entry["head_mask"] == ticket.head_mask.int().tolist() and entry["format_version"] == 1
    assert entry["weight_masks"] == {}
    assert LotteryTicket.from_config_entry(entry) == ticket


def test_config_entry_round_trip_magnitude_recovers_masks_from_exact_zeros():
    model = tiny_bert()
    ticket = rich_ticket()
    ticket.bake(model)
    entry = json.loads(json.dumps(ticket.to_config_entry(model)))
    record = entry["weight_masks"]["layer.0.attention.self.query.weight"]
    assert record["kept"] == int(ticket.weight_masks["layer.0.attention.self.query.weight"].sum())
    assert "head_mask" in entry and not any(isinstance(r, list) and len(r) > 2 for r in record)  # no mask lists
    assert LotteryTicket.from_config_entry(entry, model) == ticket


def test_config_entry_magnitude_without_model_structural_zeros_recorded():
    # Without the model, the entries a head/MLP pruning zeroes are recorded; trained weights are non-zero elsewhere.
    model = tiny_bert()
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.5)  # no weight is exactly zero any more (zero-initialised biases included)
    ticket = rich_ticket()
    entry = ticket.to_config_entry()
    ticket.bake(model)
    assert LotteryTicket.from_config_entry(entry, model) == ticket


def test_config_entry_detects_changed_weights():
    model = tiny_bert()
    ticket = rich_ticket()
    ticket.bake(model)
    entry = ticket.to_config_entry(model)
    with pytest.raises(ValueError, match="needs|pass the model"):
        LotteryTicket.from_config_entry(entry)
    with torch.no_grad():
        model.bert.encoder.layer[0].attention.self.query.weight.add_(1.0)  # pruned weights no longer zero
    with pytest.raises(ValueError, match="no longer match the recorded ticket"):
        LotteryTicket.from_config_entry(entry, model)
    with pytest.raises(ValueError, match="no longer match the recorded ticket"):
        LotteryTicket.from_config_entry(entry, tiny_bert(intermediate_size=40))


def test_config_entry_same_counts_other_masks_fail_the_checksum():
    model = tiny_bert()
    ticket = rich_ticket()
    ticket.bake(model)
    entry = ticket.to_config_entry(model)
    name = "layer.0.attention.self.query.weight"
    weight = EncoderStructure(model).named_encoder_parameters()[name]
    with torch.no_grad():  # move one zero: same kept count, other mask
        kept = torch.nonzero(weight.reshape(-1) != 0).flatten()
        pruned = torch.nonzero(weight.reshape(-1) == 0).flatten()
        weight.view(-1)[pruned[0]] = weight.view(-1)[kept[0]]
        weight.view(-1)[kept[0]] = 0
    with pytest.raises(ValueError, match="sha256 mismatch"):
        LotteryTicket.from_config_entry(entry, model)


@pytest.mark.parametrize(
    ("change", "match"),
    [
        ({"format_version": 0}, "format_version"),
        ({"format_version": True}, "format_version"),
        ({"format_version": "1"}, "format_version"),
        ({"format_version": 7}, "Upgrade hf-lottery"),
        ({"head_mask": [[1, 0], [1]]}, "`head_mask`"),
        ({"mlp_mask": [1, 2, 1]}, "`mlp_mask` must contain only 0 and 1"),
        ({"seed": "x"}, "`seed`"),
        ({"model_dims": [3, 4]}, "`model_dims`"),
        ({"weight_masks": []}, "`weight_masks`"),
        ({"method": "lucky"}, "`method`"),
    ],
)
def test_config_entry_validation_names_the_field(change, match):
    entry = structured_ticket(tiny_bert()).to_config_entry()
    entry.update(change)
    with pytest.raises((ValueError, TypeError), match=match):
        LotteryTicket.from_config_entry(entry)
    with pytest.raises(TypeError, match="must be a dict"):
        LotteryTicket.from_config_entry([entry])


# ---------------------------------------------------------------- the two files as one atomic commit
def _files(folder):
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


def _fail_renames(monkeypatch, failing, error):
    """Make the listed calls (1-based) of os.replace raise `error`; return the list of (src, dst) calls."""
    import os

    real, calls = os.replace, []

    def replace(src, dst):
        calls.append((str(src), str(dst)))
        if len(calls) in failing:
            raise error
        return real(src, dst)

    monkeypatch.setattr(os, "replace", replace)
    return calls


class Killed(BaseException):
    """Stands for a kill: nothing after it runs, not even a roll-back."""


def _other_ticket(ticket):
    return ticket.copy(weight_masks={k: ~v for k, v in ticket.weight_masks.items()}, seed=7, kind="bad")


def test_other_files_in_the_folder_are_kept(tmp_path):
    (tmp_path / "model.safetensors").write_bytes(b"weights")
    ticket = rich_ticket()
    ticket.save_pretrained(tmp_path)
    _other_ticket(ticket).save_pretrained(tmp_path)
    assert sorted(_files(tmp_path)) == ["model.safetensors", TICKET_CONFIG_NAME, TICKET_MASKS_NAME]
    assert (tmp_path / "model.safetensors").read_bytes() == b"weights"
    assert LotteryTicket.from_pretrained(tmp_path) == _other_ticket(ticket)


def test_failure_at_the_config_rename_rolls_back_to_the_previous_ticket(tmp_path, monkeypatch):
    old = rich_ticket()
    old.save_pretrained(tmp_path)
    (tmp_path / "model.safetensors").write_bytes(b"weights")
    before = _files(tmp_path)
    calls = _fail_renames(monkeypatch, {2}, PermissionError("ticket_config.json is not writable"))
    with pytest.raises(PermissionError, match="not writable"):
        _other_ticket(old).save_pretrained(tmp_path)
    monkeypatch.undo()
    assert [Path(dst).name for _, dst in calls[:2]] == [TICKET_MASKS_NAME, TICKET_CONFIG_NAME]  # masks, then config
    assert _files(tmp_path) == before  # previous masks put back; no temporary or kept file left
    assert LotteryTicket.from_pretrained(tmp_path) == old
    _other_ticket(old).save_pretrained(tmp_path)  # and the next save goes through
    assert LotteryTicket.from_pretrained(tmp_path) == _other_ticket(old)
    assert sorted(_files(tmp_path)) == ["model.safetensors", TICKET_CONFIG_NAME, TICKET_MASKS_NAME]


def test_kill_between_the_two_renames_leaves_the_previous_ticket_loadable(tmp_path, monkeypatch, caplog):
    old = rich_ticket()
    old.save_pretrained(tmp_path)
    _fail_renames(monkeypatch, set(range(2, 50)), Killed())  # the config rename never happens, nor any roll-back
    with pytest.raises(Killed):
        _other_ticket(old).save_pretrained(tmp_path)
    monkeypatch.undo()
    kept = [name for name in _files(tmp_path) if name.startswith(".ticket_masks.")]
    assert len(kept) == 1  # the previous masks, under their content address
    with caplog.at_level("WARNING"):
        assert LotteryTicket.from_pretrained(tmp_path) == old  # torn on disk, the previous ticket still loads
    assert "unfinished save" in caplog.text
    _other_ticket(old).save_pretrained(tmp_path)
    assert sorted(_files(tmp_path)) == [TICKET_CONFIG_NAME, TICKET_MASKS_NAME]  # stale masks cleaned
    assert LotteryTicket.from_pretrained(tmp_path) == _other_ticket(old)


def test_torn_ticket_without_the_kept_masks_names_the_way_out(tmp_path, monkeypatch):
    old = rich_ticket()
    old.save_pretrained(tmp_path)
    _fail_renames(monkeypatch, set(range(2, 50)), Killed())
    with pytest.raises(Killed):
        _other_ticket(old).save_pretrained(tmp_path)
    monkeypatch.undo()
    for path in tmp_path.glob(".ticket_masks.*"):
        path.unlink()  # e.g. only the two files were copied elsewhere
    with pytest.raises(ValueError, match=r"does not match the checksum.*cut off.*The way out: save the ticket again"):
        LotteryTicket.from_pretrained(tmp_path)


def test_masks_file_is_byte_identical_for_the_same_ticket(tmp_path):
    ticket = rich_ticket()
    folders = [ticket.copy().save_pretrained(tmp_path / str(i)) for i in range(4)]
    files = {(folder / TICKET_MASKS_NAME).read_bytes() for folder in folders}
    shas = {json.loads((folder / TICKET_CONFIG_NAME).read_text())["masks_sha256"] for folder in folders}
    assert len(files) == 1 and len(shas) == 1
    script = (
        "import sys, json; sys.path.insert(0, '.'); from tests.test_ticket import rich_ticket; "
        f"rich_ticket().save_pretrained({str(tmp_path / 'other-process')!r})"
    )
    import subprocess
    import sys

    subprocess.run([sys.executable, "-c", script], check=True, cwd=Path(__file__).resolve().parents[1])
    assert (tmp_path / "other-process" / TICKET_MASKS_NAME).read_bytes() in files


# ---------------------------------------------------------------- refused at load
def _edit_config(folder, **changes):
    config = json.loads((folder / TICKET_CONFIG_NAME).read_text())
    for key, value in changes.items():
        if value is None:
            config.pop(key, None)
        else:
            config[key] = value
    (folder / TICKET_CONFIG_NAME).write_text(json.dumps(config))


@pytest.mark.parametrize("version", [0, -3, True, "1", 1.0, None])
def test_unreadable_format_versions_are_refused(tmp_path, version):
    folder = rich_ticket().save_pretrained(tmp_path)
    config = json.loads((folder / TICKET_CONFIG_NAME).read_text())
    config["format_version"] = version
    (folder / TICKET_CONFIG_NAME).write_text(json.dumps(config))
    with pytest.raises(ValueError, match=r"`format_version` .*integer format version from 1 to 1"):
        LotteryTicket.from_pretrained(folder)


def test_masks_contradicting_the_config_counts_are_refused(tmp_path):
    from safetensors.torch import save_file

    ticket = structured_ticket(tiny_bert())
    folder = ticket.save_pretrained(tmp_path)
    _edit_config(folder, masks_sha256=None)  # checksum removed, masks replaced by a full ticket's
    save_file({"head_mask": torch.ones(3, 4, dtype=torch.bool), "mlp_mask": torch.ones(3, dtype=torch.bool)},
              str(folder / TICKET_MASKS_NAME))  # fmt: skip
    with pytest.raises(ValueError, match=r"records `kept_heads` = \d+ but the masks file holds 12"):
        LotteryTicket.from_pretrained(folder)


def test_weight_masks_contradicting_their_recorded_counts_are_refused(tmp_path):
    from safetensors.torch import load_file, save_file

    folder = rich_ticket().save_pretrained(tmp_path)
    tensors = load_file(str(folder / TICKET_MASKS_NAME))
    tensors["layer.0.attention.self.query.weight"] = ~tensors["layer.0.attention.self.query.weight"]
    save_file(tensors, str(folder / TICKET_MASKS_NAME))
    _edit_config(folder, masks_sha256=None)
    with pytest.raises(ValueError, match="kept entries of layer.0.attention.self.query.weight"):
        LotteryTicket.from_pretrained(folder)


def test_negative_counts_are_refused(tmp_path):
    folder = rich_ticket().save_pretrained(tmp_path)
    _edit_config(folder, kept_mlps=-1)
    with pytest.raises(ValueError, match="`kept_mlps` -1; expected a non-negative integer"):
        LotteryTicket.from_pretrained(folder)


def test_all_nan_head_importance_is_refused(tmp_path):
    from safetensors.torch import load_file, save_file

    folder = rich_ticket().save_pretrained(tmp_path)
    tensors = load_file(str(folder / TICKET_MASKS_NAME))
    tensors["head_importance"] = torch.full_like(tensors["head_importance"], float("nan"))
    save_file(tensors, str(folder / TICKET_MASKS_NAME))
    _edit_config(folder, masks_sha256=None)
    with pytest.raises(
        ValueError, match=r"ticket_config.json: `head_importance` must hold finite scores; it holds 12"
    ):
        LotteryTicket.from_pretrained(folder)


def test_old_config_with_importance_source_loads_into_search_data(tmp_path):
    folder = rich_ticket().copy(search_data=None).save_pretrained(tmp_path)
    _edit_config(folder, search_data=None, importance_source="held-out", library_versions=None)
    loaded = LotteryTicket.from_pretrained(folder)
    assert loaded.search_data == "held-out"
    assert loaded.library_versions == {}  # an old ticket does not claim today's versions


# ---------------------------------------------------------------- metadata: paths, versions, search config
def test_path_base_model_and_revision_are_stored_as_strings(tmp_path):
    base = tmp_path / "pretrained-bert"
    ticket = rich_ticket().copy(base_model=base, base_model_revision=Path("v1"))
    assert ticket.base_model == str(base) and ticket.base_model_revision == "v1"
    loaded = LotteryTicket.from_pretrained(ticket.save_pretrained(tmp_path / "ticket"))
    assert loaded.base_model == str(base) and loaded == ticket


def test_library_versions_and_search_config_are_recorded(tmp_path):
    from importlib.metadata import version

    import huggingface_hub
    import transformers

    from hf_lottery import TicketSearchConfig, __version__

    ticket = rich_ticket().copy(extra={"search_config": TicketSearchConfig(threshold=0.8), "note": "x"})
    assert ticket.extra["search_config"]["threshold"] == 0.8  # a plain dict, JSON-ready
    folder = ticket.save_pretrained(tmp_path)
    config = json.loads((folder / TICKET_CONFIG_NAME).read_text())
    assert config["library_versions"] == {
        "hf_lottery": __version__,
        "huggingface_hub": huggingface_hub.__version__,
        "torch": version("torch"),
        "transformers": transformers.__version__,
    }
    assert config["extra"]["search_config"] == ticket.extra["search_config"]
    assert LotteryTicket.from_pretrained(folder) == ticket


@pytest.mark.parametrize(
    ("field", "value", "error", "match"),
    [
        ("model_dims", [3, 4, 8, 32, 37], ValueError, "`model_dims` must be a dict"),
        ("model_dims", {"num_layers": 3, "num_heads": 4}, ValueError, "`model_dims` must have exactly the keys"),
        ("seed", "42", TypeError, "`seed` must be an integer"),
        ("seed", 4.5, TypeError, "`seed`"),
        ("history", {"step": 0}, TypeError, "`history` must be a list of dicts"),
        ("history", [1, 2], TypeError, "`history` must be a list of dicts"),
        ("metrics", [0.5], TypeError, "`metrics` must be a dict"),
        ("metrics", {"acc": object()}, TypeError, r"`metrics\['acc'\]` must hold JSON values"),
        ("extra", "note", TypeError, "`extra` must be a dict"),
        ("threshold", 1.5, ValueError, r"`threshold` must be in \(0, 1\]"),
        ("base_model", 3, TypeError, "`base_model` must be a Hub id, a local path or None"),
        ("task", 3, TypeError, "`task` must be a string"),
    ],
)
def test_bad_metadata_fails_at_construction_naming_the_field(field, value, error, match):
    ticket = structured_ticket(tiny_bert())
    with pytest.raises(error, match=match):
        ticket.copy(**{field: value})


@pytest.mark.parametrize("key", ["hidden_size", "num_layers", "head_size"])
@pytest.mark.parametrize("value", [0, -768])
def test_zero_or_negative_dims_fail_at_construction(key, value):
    ticket = structured_ticket(tiny_bert())
    with pytest.raises(ValueError, match=rf"`model_dims\['{key}'\]` must be a positive integer; got {value}"):
        ticket.copy(model_dims={**ticket.model_dims, key: value})


# ---------------------------------------------------------------- compatibility with a model (for apply_ticket to warn)
def test_compatibility_problems():
    from transformers import ElectraConfig, ElectraForSequenceClassification

    model = tiny_bert()
    ticket = structured_ticket(model).copy(base_model="google-bert/bert-base-uncased")
    assert ticket.compatibility_problems(model) == []
    model.config._name_or_path = "bert-base-uncased"  # the same model under its short name
    assert ticket.compatibility_problems(model) == []
    model.config.hf_lottery_base_model = "google/electra-small-discriminator"
    assert ticket.compatibility_problems(model) == [
        "The ticket was found on 'google-bert/bert-base-uncased' but the model comes from "
        "'google/electra-small-discriminator'."
    ]
    model.config.hf_lottery_base_model = "/some/local/folder"  # a path: no id to compare
    assert ticket.compatibility_problems(model) == []
    electra = ElectraForSequenceClassification(
        ElectraConfig(
            vocab_size=99,
            embedding_size=16,
            hidden_size=48,
            num_hidden_layers=3,
            num_attention_heads=4,
            intermediate_size=37,
        )  # fmt: skip
    )
    without_dims = ticket.copy(model_dims=None, base_model=None)
    assert without_dims.compatibility_problems(electra) == [
        "The ticket records no `model_dims`, so it cannot be checked that it was found on a model of this size "
        "(hidden_size=48, intermediate_size=37)."
    ]
    assert ticket.compatibility_problems(electra) == [
        "The ticket was found on a model of other dimensions (head_size: ticket 8, model 12; hidden_size: ticket 32, "
        "model 48)."
    ]
