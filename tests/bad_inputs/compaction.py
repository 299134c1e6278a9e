"""Bad compact folders, head-pruned checkpoints and compaction calls: each a `ValueError` naming the field or file."""

from __future__ import annotations

import json

import torch

from hf_lottery import LotteryTicket, compact_model, load_pruned_model
from hf_lottery.models.compaction import COMPACT_WEIGHTS_NAME, SPEC_KEY
from hf_lottery.models.loading import ticket_from_pruned_heads

from ..conftest import tiny_bert
from ..test_gates import structured_ticket
from . import BadInput


def _compact_folder(tmp_path):
    model = tiny_bert()
    folder = tmp_path / "compact"
    compact_model(model, structured_ticket(model)).save_pretrained(folder)
    return folder


def _tampered(change):
    """Load a compact folder whose config.json was changed by `change(config)`."""

    def call(tmp_path):
        folder = _compact_folder(tmp_path)
        path = folder / "config.json"
        config = json.loads(path.read_text())
        change(config)
        path.write_text(json.dumps(config))
        return load_pruned_model(folder, compact=True)

    return call


def _set_spec(key, value):
    return _tampered(lambda config: config[SPEC_KEY].__setitem__(key, value))


def _drop_spec(key):
    return _tampered(lambda config: config[SPEC_KEY].pop(key))


def _truncated_weights(tmp_path):
    folder = _compact_folder(tmp_path)
    weights = folder / COMPACT_WEIGHTS_NAME
    weights.write_bytes(weights.read_bytes()[:1000])
    return load_pruned_model(folder, compact=True)


def _weights_of_another_ticket(tmp_path):
    folder = _compact_folder(tmp_path)
    other = tmp_path / "other"
    model = tiny_bert()
    compact_model(model, LotteryTicket.full(model)).save_pretrained(other)
    (other / COMPACT_WEIGHTS_NAME).replace(folder / COMPACT_WEIGHTS_NAME)
    return load_pruned_model(folder, compact=True)


def _config_not_json(tmp_path):
    folder = _compact_folder(tmp_path)
    (folder / "config.json").write_text('{"model_type": "hf_lottery_compact",\n  "oops"\n}')
    return load_pruned_model(folder)


def _pruned_heads_config(**changes):
    config = tiny_bert().config.to_dict() | {"pruned_heads": {"0": [1]}}
    config.update(changes)
    return lambda tmp_path: ticket_from_pruned_heads(config)


def _bin_only_checkpoint(tmp_path):
    folder = tmp_path / "t4"
    folder.mkdir()
    config = tiny_bert().config.to_dict() | {"pruned_heads": {"0": [1]}}
    (folder / "config.json").write_text(json.dumps(config))
    (folder / "pytorch_model.bin").write_bytes(b"not unpickled")
    return load_pruned_model(folder)


def _wrong_ticket_shape(tmp_path):
    ticket = LotteryTicket(head_mask=torch.ones(2, 4, dtype=torch.bool), mlp_mask=torch.ones(2, dtype=torch.bool))
    return compact_model(tiny_bert(), ticket)


def _kwargs_for_a_compact_folder(tmp_path):
    return load_pruned_model(_compact_folder(tmp_path), dtype=torch.float16)


CASES = [
    BadInput("compact-heads-kept-index-out-of-range", "compaction", _set_spec("heads_kept", [[0, 9], [], [0, 1, 2, 3]]),
             ValueError, r"heads_kept\[0\].*\[0, 3\].*9"),
    BadInput("compact-heads-kept-missing", "compaction", _drop_spec("heads_kept"), ValueError, r"no `heads_kept`"),
    BadInput("compact-heads-kept-duplicate", "compaction", _set_spec("heads_kept", [[0, 0], [], [1]]), ValueError,
             r"heads_kept\[0\].*distinct"),
    BadInput("compact-heads-kept-wrong-layer-count", "compaction", _set_spec("heads_kept", [[0], [1]]), ValueError,
             r"heads_kept has 2 layers; num_hidden_layers is 3"),
    BadInput("compact-num-heads-zero", "compaction", _set_spec("num_attention_heads", 0), ValueError,
             r"num_attention_heads must be an integer ≥ 1"),
    BadInput("compact-mlps-kept-wrong-length", "compaction", _set_spec("mlps_kept", [True]), ValueError,
             r"mlps_kept must be a list of 3 booleans"),
    BadInput("compact-format-version-newer", "compaction", _set_spec("format_version", 99), ValueError,
             r"format_version 99 is newer"),
    BadInput("compact-architecture-unknown", "compaction", _set_spec("architecture", "NoSuchModel"), ValueError,
             r"architecture must name a transformers model class.*NoSuchModel"),
    BadInput("compact-spec-not-an-object", "compaction", _tampered(lambda c: c.__setitem__(SPEC_KEY, "x")),
             ValueError, r"hf_lottery_pruning must be an object"),
    BadInput("compact-truncated-weights", "compaction", _truncated_weights, ValueError,
             r"hf_lottery_compact\.safetensors is not a readable safetensors file"),
    BadInput("compact-weights-of-another-ticket", "compaction", _weights_of_another_ticket, ValueError,
             r"hf_lottery_compact\.safetensors does not match the architecture.*shape mismatch"),
    BadInput("compact-config-not-json", "compaction", _config_not_json, ValueError, r"config\.json is not valid JSON \(line 3\)"),
    BadInput("compact-from-pretrained-kwargs", "compaction", _kwargs_for_a_compact_folder, TypeError,
             r"\['dtype'\] apply to dense folders only"),
    BadInput("compact-ticket-of-another-shape", "compaction", _wrong_ticket_shape, ValueError, r"Ticket does not fit"),
    BadInput("t4-pruned-heads-layer-out-of-range", "compaction", _pruned_heads_config(pruned_heads={"7": [0]}),
             ValueError, r"pruned_heads` names layer '7'; layers are 0..2"),
    BadInput("t4-pruned-heads-head-out-of-range", "compaction", _pruned_heads_config(pruned_heads={"0": [4]}),
             ValueError, r"pruned_heads\['0'\]` = \[4\] must list head indices in \[0, 3\]"),
    BadInput("t4-pruned-heads-not-an-object", "compaction", _pruned_heads_config(pruned_heads=[1, 2]), ValueError,
             r"pruned_heads` must be an object"),
    BadInput("t4-num-heads-zero", "compaction", _pruned_heads_config(num_attention_heads=0), ValueError,
             r"num_attention_heads` must be an integer ≥ 1"),
    BadInput("t4-pickle-only-checkpoint", "compaction", _bin_only_checkpoint, ValueError,
             r"pytorch_model\.bin only; hf-lottery never unpickles"),
]  # fmt: skip
