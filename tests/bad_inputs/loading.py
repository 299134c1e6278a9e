"""Bad loads and model inputs: files named by other files (shard indexes, checksums) that leave the model's folder,
`subfolder` with '..', ticket-only folders, mistyped paths, metric values, ONNX opsets, and models whose weights are
on the meta device or reparametrized by ``torch.nn.utils.prune``."""

from __future__ import annotations

import json

import pytest
import torch
import torch.nn.utils.prune as torch_prune
from huggingface_hub import constants
from transformers import BertForSequenceClassification

from hf_lottery import LotteryTicket, apply_ticket, compact_model, export_onnx, load_pruned_model, push_to_hub
from hf_lottery.downloads import HubConnectionError, HubFileNotFoundError, download_files
from hf_lottery.files import TICKET_CONFIG_NAME

from ..conftest import tiny_bert, tiny_config
from ..test_gates import structured_ticket
from ..test_loading import PRUNED_HEADS, head_pruned_checkpoint
from . import BadInput


def _index_naming(shard, *, kind="ticket files"):
    """A model folder whose weights index names `shard` (the real weights lie outside the folder, at `shard`)."""

    def call(tmp_path):
        model = tiny_bert()
        folder = tmp_path / "model"
        if kind == "transformers-4":
            head_pruned_checkpoint(folder, model, PRUNED_HEADS)
        else:
            model.save_pretrained(folder)
            structured_ticket(model).save_pretrained(folder)
        outside = tmp_path / "outside.safetensors"
        (folder / "model.safetensors").rename(outside)
        name = str(outside) if shard == "absolute" else shard
        weight_map = {key: name for key in ("bert.embeddings.word_embeddings.weight", "classifier.weight")}
        (folder / "model.safetensors.index.json").write_text(json.dumps({"metadata": {}, "weight_map": weight_map}))
        return load_pruned_model(folder)

    return call


def _checksum_naming_a_path(tmp_path):
    folder = structured_ticket(tiny_bert()).save_pretrained(tmp_path / "ticket")
    config = json.loads((folder / TICKET_CONFIG_NAME).read_text())
    config["masks_sha256"] = ("/../../" * 11)[:64]  # 64 characters naming a path, not a digest
    (folder / TICKET_CONFIG_NAME).write_text(json.dumps(config))
    return LotteryTicket.from_pretrained(folder)


def _subfolder_load(tmp_path):
    model = tiny_bert()
    model.save_pretrained(tmp_path / "model")
    structured_ticket(model).save_pretrained(tmp_path / "model")
    return load_pruned_model(tmp_path / "model", subfolder="..")


def _ticket_only_folder(tmp_path):
    ticket = structured_ticket(tiny_bert()).copy(base_model="google-bert/bert-base-uncased")
    return load_pruned_model(ticket.save_pretrained(tmp_path / "ticket"))


def _offline(call):
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(constants, "HF_HUB_OFFLINE", True)
        return call()


def _nan_in_ticket_config(tmp_path):
    folder = structured_ticket(tiny_bert()).save_pretrained(tmp_path / "ticket")
    config = json.loads((folder / TICKET_CONFIG_NAME).read_text())
    config["metrics"] = {"metric": float("nan")}
    (folder / TICKET_CONFIG_NAME).write_text(json.dumps(config))  # json writes NaN
    return LotteryTicket.from_pretrained(folder)


def _metric_value_string_is_kept_out_of_model_index(tmp_path):
    net = tiny_bert()
    try:
        push_to_hub(net, structured_ticket(net), "user/x", metrics={"accuracy": "0.9"}, staging_dir=tmp_path / "s")
    finally:
        assert not (tmp_path / "s").exists(), "a refused push stages nothing"


def _meta_model():
    with torch.device("meta"):
        return BertForSequenceClassification(tiny_config())


def _pruned_with_torch():
    model = tiny_bert()
    torch_prune.l1_unstructured(model.bert.encoder.layer[0].attention.self.query, "weight", amount=0.5)
    return model


META = r"`bert\.embeddings\.word_embeddings\.weight` is on the meta device \(no data\);.*first load the real weights"
PRUNE = (
    r"`bert\.encoder\.layer\.0\.attention\.self\.query\.weight_orig` is reparametrized by torch\.nn\.utils\.prune;.* "
    r"first call torch\.nn\.utils\.prune\.remove\(model\.bert\.encoder\.layer\.0\.attention\.self\.query, 'weight'\)"
)
TICKET = structured_ticket(tiny_bert())

CASES = [
    # class 3: loading reads only the files of the model asked for
    BadInput("load-index-shard-parent-path", "models", _index_naming("../outside.safetensors"), ValueError,
             r"`weight_map` names '\.\./outside\.safetensors'; shards must be file names inside"),
    BadInput("load-index-shard-absolute-path", "models", _index_naming("absolute"), ValueError,
             r"`weight_map` names '/.*outside\.safetensors'; shards must be file names inside"),
    BadInput("load-index-shard-in-another-folder-transformers4", "models",
             _index_naming("sub/model.safetensors", kind="transformers-4"), ValueError,
             r"`weight_map` names 'sub/model\.safetensors'; shards must be file names"),
    BadInput("load-index-shard-windows-parent", "models", _index_naming("..\\outside.safetensors"), ValueError,
             r"shards must be file names inside .*\(no folder, '\.\.' or absolute path\)"),
    BadInput("load-ticket-checksum-naming-a-path", "tickets", _checksum_naming_a_path, ValueError,
             r"`masks_sha256` '/\.\./.*'; expected a sha256 hex digest"),
    # class 7: subfolder, ticket-only folders, mistyped paths
    BadInput("load-ticket-subfolder-parent", "tickets",
             lambda tmp_path: LotteryTicket.from_pretrained(tmp_path, subfolder="../elsewhere"), ValueError,
             r"`subfolder` '\.\./elsewhere' must be a folder inside the repo or folder"),
    BadInput("download-subfolder-parent", "hub",
             lambda tmp_path: download_files("user/repo", ["ticket_config.json"], subfolder="a/../../b"), ValueError,
             r"`subfolder` 'a/\.\./\.\./b' must be a folder inside"),
    BadInput("download-subfolder-absolute", "hub",
             lambda tmp_path: download_files("user/repo", ["ticket_config.json"], subfolder="/etc"), ValueError,
             r"`subfolder` '/etc' must be a folder inside .* no absolute path"),
    BadInput("load-model-subfolder-parent", "models", _subfolder_load, ValueError,
             r"`subfolder` '\.\.' must be a folder inside"),
    BadInput("load-ticket-only-folder-names-its-base-model", "models", _ticket_only_folder, FileNotFoundError,
             r"ticket holds a lottery ticket only \(no config\.json or weights\): apply it \(apply_ticket\) to a "
             r"model fine-tuned from its base model google-bert/bert-base-uncased, or rewind it"),
    BadInput("load-mistyped-local-ticket-path", "tickets",
             lambda tmp_path: LotteryTicket.from_pretrained(f"{tmp_path}/tickts/x"), HubFileNotFoundError,
             r"tickts/x' is neither a local folder nor a valid Hub repo id .*the path does not exist \(check it for "
             r"typos\)"),
    BadInput("load-mistyped-relative-ticket-path", "tickets",
             lambda tmp_path: LotteryTicket.from_pretrained("./tickts/x"), HubFileNotFoundError,
             r"^(?!.*offline).*the path does not exist"),
    BadInput("load-mistyped-path-that-reads-as-a-repo-id-offline", "tickets",
             lambda tmp_path: _offline(lambda: LotteryTicket.from_pretrained("tickts/x")), HubConnectionError,
             r"No local folder 'tickts/x' exists either: if you meant a path, check it for typos"),
    # class 7: metric values (the one check: tickets/fields.check_metrics)
    BadInput("ticket-metric-value-string", "tickets",
             lambda tmp_path: TICKET.copy(metrics={"metric": "0.85"}), ValueError,
             r"`metrics\['metric'\]` must be a finite number or None; got str '0\.85'"),
    BadInput("ticket-metric-value-infinite", "tickets",
             lambda tmp_path: TICKET.copy(metrics={"full_metric": float("inf")}), ValueError,
             r"`metrics\['full_metric'\]` must be a finite number or None; got float inf\. Record the score"),
    BadInput("ticket-metric-name-not-a-string", "tickets",
             lambda tmp_path: TICKET.copy(metrics={"metric_name": 3}), ValueError,
             r"`metrics\['metric_name'\]` must be str or None; got int 3"),
    BadInput("ticket-config-metric-nan", "tickets", _nan_in_ticket_config, ValueError,
             r"ticket_config\.json: `metrics\['metric'\]` must be a finite number or None; got float nan"),
    BadInput("push-metric-value-string", "hub", _metric_value_string_is_kept_out_of_model_index, ValueError,
             r"`metrics\['accuracy'\]` must be a finite number or None; got str '0\.9'"),
    # class 7: ONNX opsets, meta-device and torch-pruned models
    BadInput("onnx-opset-too-old", "models", lambda tmp_path: export_onnx(tiny_bert(), tmp_path, opset=9), ValueError,
             r"`opset` 9 cannot be exported: pass one of 10 to \d+ \(torch's range\)"),
    BadInput("onnx-opset-too-new", "models", lambda tmp_path: export_onnx(tiny_bert(), tmp_path, opset=99), ValueError,
             r"`opset` 99 cannot be exported: pass one of 10 to \d+ .*e\.g\. 17"),
    BadInput("onnx-opset-a-string", "models", lambda tmp_path: export_onnx(tiny_bert(), tmp_path, opset="17"),
             ValueError, r"`opset` '17' cannot be exported"),
    BadInput("meta-model-push", "hub",
             lambda tmp_path: push_to_hub(_meta_model(), TICKET, "user/x", staging_dir=tmp_path / "s"), ValueError,
             META),
    BadInput("meta-model-compaction", "compaction", lambda tmp_path: compact_model(_meta_model(), TICKET), ValueError,
             META),
    BadInput("meta-model-onnx-export", "models", lambda tmp_path: export_onnx(_meta_model(), tmp_path), ValueError,
             META),
    BadInput("torch-pruned-model-apply-ticket", "models", lambda tmp_path: apply_ticket(_pruned_with_torch(), TICKET),
             ValueError, PRUNE),
    BadInput("torch-pruned-model-compaction", "compaction",
             lambda tmp_path: compact_model(_pruned_with_torch(), TICKET), ValueError, PRUNE),
    BadInput("torch-pruned-model-onnx-export", "models",
             lambda tmp_path: export_onnx(_pruned_with_torch(), tmp_path), ValueError, PRUNE),
    BadInput("torch-pruned-model-push", "hub",
             lambda tmp_path: push_to_hub(_pruned_with_torch(), TICKET, "user/x", staging_dir=tmp_path / "s"),
             ValueError, PRUNE),
]  # fmt: skip
