"""Bad Hub pushes and loads: refused before anything is staged or sent, with a message naming the input."""

from __future__ import annotations

import json
import re

import pytest
import yaml
from huggingface_hub import HfApi
from transformers import AutoModelForSequenceClassification

from hf_lottery import LotteryTicket, apply_ticket, compact_model, load_pruned_model, push_ticket_to_hub, push_to_hub
from hf_lottery.commands.hub import PushArguments
from hf_lottery.hub.card import build_card

from ..conftest import tiny_bert
from ..hub_fake import FakeHub, routed
from ..test_gates import structured_ticket
from . import BadInput


def _on_fake_hub(check):
    """`check(hub, tmp_path)` with huggingface_hub answered by a fresh fake Hub (offline)."""

    def call(tmp_path):
        hub = FakeHub()
        with pytest.MonkeyPatch.context() as patch, routed(hub.handler, patch, tmp_path / "hub-cache"):
            return check(hub, tmp_path)

    return call


def _ticket_over_a_pushed_model(hub, tmp_path):
    net = tiny_bert()
    push_to_hub(net, structured_ticket(net), "user/repo")
    ticket = structured_ticket(net, seed=1)
    push_ticket_to_hub(ticket, "user/repo")
    commit = hub.commits[-1]
    assert sorted(commit.deleted) == ["config.json", "model.safetensors"]  # the old weights are not this ticket's
    assert sorted(commit.files) == sorted(hub.files("user/repo")) == [
        "README.md", "plots/head_survival.png", "plots/mlp_survival.png", "ticket_config.json",
        "ticket_masks.safetensors"]  # fmt: skip
    assert LotteryTicket.from_pretrained("user/repo") == ticket


def _model_over_a_sharded_push(hub, tmp_path):
    net = tiny_bert()
    old = tmp_path / "old"
    net.save_pretrained(old, max_shard_size="100KB")
    (old / "notes.md").write_text("my notes")
    (old / ".gitattributes").write_text("*.bin filter=lfs")
    HfApi().create_repo("user/repo")
    HfApi().upload_folder(repo_id="user/repo", folder_path=old)
    shards = sorted(name for name in hub.files("user/repo") if name.startswith("model"))
    assert len(shards) > 2  # an index and its shards
    push_to_hub(net, structured_ticket(net), "user/repo")
    assert sorted(hub.commits[-1].deleted) == shards
    assert {".gitattributes", "notes.md", "model.safetensors"} <= set(hub.files("user/repo"))


def _applied(tmp_path):
    net = tiny_bert()
    apply_ticket(net, structured_ticket(net))
    return push_to_hub(net, LotteryTicket.full(net), "user/repo", staging_dir=tmp_path / "staging")


def _recorded_in_config(tmp_path):
    net = tiny_bert()
    handle = apply_ticket(net, structured_ticket(net))
    net.save_pretrained(tmp_path / "trained")  # as a Trainer with TicketCallback saves it: zeros + config entry
    handle.remove()
    reloaded = AutoModelForSequenceClassification.from_pretrained(tmp_path / "trained")
    return push_to_hub(reloaded, LotteryTicket.full(net), "user/repo", staging_dir=tmp_path / "staging")


def _compacted(tmp_path):
    net = tiny_bert()
    small = compact_model(net, structured_ticket(net))
    return push_to_hub(small, structured_ticket(net, seed=1), "user/repo", staging_dir=tmp_path / "staging")


def _card(**fields):
    ticket = structured_ticket(tiny_bert()).copy(**{"metrics": {"metric": 0.8}} | fields)
    return lambda **kwargs: build_card(ticket, "you/x", with_model=False, **kwargs)


def _card_escapes_task_html(tmp_path):
    text = str(_card(task="<script>alert(1)</script>")())
    assert "<script" not in text and "for the task “&lt;script&gt;alert(1)&lt;/script&gt;”" in text


def _card_escapes_description_link(tmp_path):
    text = str(_card(search_data="held-out", extra={"search_data_description": "[win](javascript:alert(1))\n# x"})())
    assert not re.search(r"(?<!\\)\]\(javascript:", text) and "- Data: \\[win\\](javascript:alert(1)) # x" in text


def _card_metric_name_yaml(tmp_path):
    name = "accuracy\n---\nlicense: mit\nbase_model: evil/model"
    card = _card(task="sst2", search_data="dev")(metric_name=name)
    meta = yaml.safe_load(str(card).split("\n---\n")[0].removeprefix("---\n"))
    assert "license" not in meta and "base_model" not in meta
    assert meta["model-index"][0]["results"][0]["metrics"][0]["name"].startswith(name)


def _card_base_model_not_a_repo_id(tmp_path):
    card = _card(base_model="javascript:alert(1)")()
    assert card.data.base_model is None and "javascript" not in str(card) and "a local model" in str(card)


def _card_search_config_code_span(tmp_path):
    text = str(_card(extra={"search_config": {"x`<b>": "`y`\n#"}})())
    (line,) = [line for line in text.splitlines() if line.startswith("- Search config:")]
    assert line == "- Search config: `x'<b>=''y'\\n#'`"  # one code span: the backticks cannot close it


def _card_metric_key_table(tmp_path):
    card = build_card(structured_ticket(tiny_bert()), "you/x", with_model=True, metrics={"acc | 1.0 | <i>x</i>": 0.5})
    assert "| **this model (the pushed weights)** | acc \\| 1.0 \\| &lt;i&gt;x&lt;/i&gt; | dev | 0.5000 |" in str(card)


def _ticket_only_repo(hub, tmp_path):
    ticket = structured_ticket(tiny_bert()).copy(base_model="google-bert/bert-base-uncased")
    push_ticket_to_hub(ticket, "user/ticket")
    return load_pruned_model("user/ticket")


def _index_out_of_the_snapshot(hub, tmp_path):
    net = tiny_bert()
    net.save_pretrained(tmp_path / "m")
    structured_ticket(net).save_pretrained(tmp_path / "m")
    weight_map = {"classifier.weight": "../../../../outside.safetensors"}
    (tmp_path / "m" / "model.safetensors.index.json").write_text(json.dumps({"weight_map": weight_map}))
    HfApi().create_repo("user/evil")
    HfApi().upload_folder(repo_id="user/evil", folder_path=tmp_path / "m")
    return load_pruned_model("user/evil")


def _push(repo_id, *, model=True):
    def call(tmp_path):
        net = tiny_bert()
        staging = tmp_path / "staging"
        try:
            if model:
                return push_to_hub(net, structured_ticket(net), repo_id, staging_dir=staging)
            return push_ticket_to_hub(structured_ticket(net), repo_id, staging_dir=staging)
        finally:
            assert not staging.exists(), "a refused push must not stage anything"

    return call


def _non_empty_staging(tmp_path):
    (tmp_path / "staging").mkdir()
    (tmp_path / "staging" / "old.txt").write_text("keep me")
    net = tiny_bert()
    return push_to_hub(net, structured_ticket(net), "user/repo", staging_dir=tmp_path / "staging")


def _load_a_file(tmp_path):
    (tmp_path / "weights.bin").write_bytes(b"")
    return load_pruned_model(tmp_path / "weights.bin")


def _full_ticket(tmp_path):
    return LotteryTicket.full(tiny_bert())


CASES = [
    BadInput("hub-push-repo-id-with-spaces", "hub", _push("not a repo id"), ValueError,
             r"`repo_id` 'not a repo id' is not a valid Hub repo id"),
    BadInput("hub-push-repo-id-three-parts", "hub", _push("user/name/extra"), ValueError, r"not a valid Hub repo id"),
    BadInput("hub-push-ticket-repo-id-invalid", "hub", _push("bad..name", model=False), ValueError,
             r"not a valid Hub repo id"),
    BadInput("hub-push-repo-id-not-a-string", "hub", _push(123), TypeError, r"`repo_id` must be a string"),
    BadInput("hub-push-staging-not-empty", "hub", _non_empty_staging, ValueError, r"staging_dir .* is not empty"),
    BadInput("hub-cli-push-metrics-without-model", "hub",
             lambda tmp_path: PushArguments(ticket="t", repo_id="me/r", metrics=["accuracy=0.9"]), ValueError,
             r"`metrics` score the pushed weights: give them with `model_dir`"),
    BadInput("hub-cli-push-metrics-not-a-pair", "hub",
             lambda tmp_path: PushArguments(ticket="t", repo_id="me/r", model_dir="m", metrics=["accuracy"]),
             ValueError, r"`metrics` takes name=value pairs"),
    BadInput("hub-cli-push-metrics-no-name", "hub",
             lambda tmp_path: PushArguments(ticket="t", repo_id="me/r", model_dir="m", metrics=["=0.9"]),
             ValueError, r"`metrics` takes name=value pairs"),
    BadInput("hub-cli-push-metrics-nan", "hub",
             lambda tmp_path: PushArguments(ticket="t", repo_id="me/r", model_dir="m", metrics=["accuracy=nan"]),
             ValueError, r"`metrics\['accuracy'\]` must be a finite number"),
    BadInput("hub-load-a-file", "hub", _load_a_file, NotADirectoryError, r"weights\.bin is a file"),
    BadInput("hub-load-invalid-repo-id", "hub", lambda tmp_path: load_pruned_model("no such//repo"), FileNotFoundError,
             r"neither a local folder nor a valid Hub repo id"),
    # class 4: a published repo is exactly what was just pushed (one create_commit: added and deleted files)
    BadInput("hub-push-ticket-over-a-pushed-model", "hub", _on_fake_hub(_ticket_over_a_pushed_model), None),
    BadInput("hub-push-model-over-a-sharded-push", "hub", _on_fake_hub(_model_over_a_sharded_push), None),
    BadInput("hub-push-model-with-another-ticket-applied", "hub", _applied, ValueError,
             r"carries another ticket, LotteryTicket\(method='structured', kind='custom', heads=\d+/12.*than the one "
             r"to push, LotteryTicket\(method='structured', kind='full', heads=12/12.*Push it with its own ticket"),
    BadInput("hub-push-model-whose-config-records-another-ticket", "hub", _recorded_in_config, ValueError,
             r"carries another ticket, LotteryTicket\(.*than the one to push"),
    BadInput("hub-push-compacted-model-with-another-ticket", "hub", _compacted, ValueError,
             r"carries another ticket, LotteryTicket\(.*than the one to push"),
    BadInput("hub-card-task-html", "hub", _card_escapes_task_html, None),
    BadInput("hub-card-search-data-description-javascript-link", "hub", _card_escapes_description_link, None),
    BadInput("hub-card-metric-name-yaml-breakout", "hub", _card_metric_name_yaml, None),
    BadInput("hub-card-base-model-not-a-repo-id", "hub", _card_base_model_not_a_repo_id, None),
    BadInput("hub-card-search-config-backticks", "hub", _card_search_config_code_span, None),
    BadInput("hub-card-metric-key-breaks-the-table", "hub", _card_metric_key_table, None),
    BadInput("hub-card-metric-value-nan", "hub",
             lambda tmp_path: build_card(structured_ticket(tiny_bert()), "you/x", with_model=True,
                                         metrics={"accuracy": float("nan")}),
             ValueError, r"`metrics\['accuracy'\]` must be a finite number or None; got float nan"),
    # class 3 and 7 on the Hub
    BadInput("hub-load-ticket-only-repo", "hub", _on_fake_hub(_ticket_only_repo), FileNotFoundError,
             r"user/ticket holds a lottery ticket only.*base model google-bert/bert-base-uncased"),
    BadInput("hub-load-index-shard-out-of-the-snapshot", "hub", _on_fake_hub(_index_out_of_the_snapshot), ValueError,
             r"`weight_map` names '\.\./\.\./\.\./\.\./outside\.safetensors'; shards must be file names"),
]  # fmt: skip
