"""Protocol tests: push and download through a fake Hub that speaks huggingface_hub's HTTP protocol (offline)."""

import logging
import tempfile

import httpx2
import huggingface_hub
import pytest
import torch
import yaml
from huggingface_hub import constants
from transformers import AutoModelForSequenceClassification, AutoTokenizer, BertForSequenceClassification, pipeline

from hf_lottery import LotteryTicket, apply_ticket, load_pruned_model, push_ticket_to_hub, push_to_hub
from hf_lottery.downloads import TicketNotFoundError

from .conftest import minilm_path, tiny_batch, tiny_bert
from .hub_fake import FakeHub
from .test_gates import magnitude_ticket, structured_ticket


TOKEN = "hf_secret_token_value_123"


@pytest.fixture
def hub(monkeypatch, tmp_path):
    fake = FakeHub()
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hub-cache"))
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub-cache"))
    huggingface_hub.set_client_factory(lambda: httpx2.Client(transport=httpx2.MockTransport(fake.handler)))
    huggingface_hub.close_session()
    yield fake
    huggingface_hub.set_client_factory(huggingface_hub.utils._http.default_client_factory)
    huggingface_hub.close_session()


def card_metadata(text: str) -> dict:
    return yaml.safe_load(text.split("---")[1])


def test_protocol_push_ticket_and_load_it_back(hub):
    model = tiny_bert()
    ticket = structured_ticket(model).copy(task="rte", seed=42, base_model="google-bert/bert-base-uncased")
    url = push_ticket_to_hub(ticket, "user/tiny-ticket", token=TOKEN)
    assert url.startswith("https://huggingface.co/user/tiny-ticket/commit/")
    files = hub.files("user/tiny-ticket")
    assert sorted(files) == ["README.md", "plots/head_survival.png", "plots/mlp_survival.png", "ticket_config.json",
                             "ticket_masks.safetensors"]  # fmt: skip
    meta = card_metadata(files["README.md"].decode())
    assert meta["library_name"] == "hf-lottery" and "lottery-ticket" in meta["tags"]
    assert meta["base_model"] == "google-bert/bert-base-uncased"
    assert LotteryTicket.from_pretrained("user/tiny-ticket") == ticket


def test_protocol_push_masked_model_then_load_identical_logits(hub):
    model = tiny_bert()
    ticket = structured_ticket(model).copy(weight_masks=magnitude_ticket(model).weight_masks, method="magnitude",
                                           task="sst2", metrics={"full_metric": 0.9, "metric": 0.85})  # fmt: skip
    before = {k: v.clone() for k, v in model.state_dict().items()}
    push_to_hub(model, ticket, "user/tiny-masked", token=TOKEN, commit_message="first ticket",
                metrics={"accuracy": 0.87})  # fmt: skip
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())  # the user's model is untouched
    commit = hub.commits[-1]
    assert commit.message == "first ticket" and len(hub.commits) == 1  # one commit
    assert {"config.json", "model.safetensors", "ticket_config.json", "ticket_masks.safetensors", "README.md",
            "plots/tensor_survival.png", "plots/head_weight_survival.png"} <= set(commit.files)  # fmt: skip
    meta = card_metadata(commit.files["README.md"].decode())
    assert meta["library_name"] == "transformers" and meta["pipeline_tag"] == "text-classification"
    assert "hf-lottery" in meta["tags"] and meta["datasets"] == ["nyu-mll/glue"]
    results = meta["model-index"][0]["results"]
    # only the pushed weights' own score is this model's result; the search scores stay in the card's text
    assert [(m["type"], m["value"]) for r in results for m in r["metrics"]] == [("accuracy", 0.87)]
    assert {r["dataset"]["split"] for r in results} == {"validation"}
    batch = {k: v for k, v in tiny_batch().items() if k != "labels"}
    with torch.no_grad(), apply_ticket(model, ticket):
        expected = model(**batch).logits
    with torch.no_grad():
        gated = load_pruned_model("user/tiny-masked")(**batch).logits
        plain = AutoModelForSequenceClassification.from_pretrained("user/tiny-masked").eval()(**batch).logits
        compact = load_pruned_model("user/tiny-masked", compact=True)(**batch).logits
    torch.testing.assert_close(gated, expected, atol=1e-6, rtol=0)
    torch.testing.assert_close(plain, expected, atol=1e-6, rtol=0)  # baked: plain transformers gives the pruned model
    torch.testing.assert_close(compact, expected, atol=1e-5, rtol=0)


def test_protocol_a_push_is_one_create_commit_and_staging_is_removed(hub, tmp_path, monkeypatch):
    calls = []
    original = huggingface_hub.HfApi.create_commit

    def spy(self, repo_id, operations, **kwargs):
        calls.append([(type(op).__name__, op.path_in_repo) for op in operations])
        return original(self, repo_id, operations, **kwargs)

    monkeypatch.setattr(huggingface_hub.HfApi, "create_commit", spy)
    monkeypatch.setattr(huggingface_hub.HfApi, "upload_folder", None)  # never the multi-commit upload
    model = tiny_bert()
    staging = tmp_path / "output" / "hub_staging"
    push_to_hub(model, structured_ticket(model), "user/staged", token=TOKEN, staging_dir=staging)
    assert calls == [[("CommitOperationAdd", name) for name in sorted(hub.files("user/staged"))]]
    assert len(hub.commits) == 1 and not staging.exists()  # one commit; staging removed after a successful push
    temp_root = tmp_path / "tmp"
    temp_root.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(temp_root))
    push_to_hub(model, structured_ticket(model), "user/staged-temp", token=TOKEN)
    assert list(temp_root.iterdir()) == []  # the temporary staging folder is gone too


def test_protocol_failed_push_into_a_temp_staging_folder_names_it(hub, tmp_path, monkeypatch):
    temp_root = tmp_path / "tmp"
    temp_root.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(temp_root))
    hub.fail_with = httpx2.ConnectError("connection refused")
    model = tiny_bert()
    with pytest.raises(ConnectionError, match="kept in") as info:
        push_to_hub(model, structured_ticket(model), "user/offline-temp", token=TOKEN)
    (kept,) = temp_root.iterdir()
    assert str(kept) in str(info.value) and (kept / "model.safetensors").is_file()


def test_protocol_invalid_repo_id_is_refused_before_staging(hub, tmp_path):
    model = tiny_bert()
    for bad in ("not a repo id", "user/name/extra", "-user/name"):
        with pytest.raises(ValueError, match="not a valid Hub repo id"):
            push_to_hub(model, structured_ticket(model), bad, staging_dir=tmp_path / "stage")
        assert not (tmp_path / "stage").exists()
    assert hub.requests == []


def test_protocol_private_repo_revision_and_token_never_logged(hub, caplog):
    model = tiny_bert()
    ticket = structured_ticket(model)
    with caplog.at_level(logging.DEBUG):
        push_to_hub(model, ticket, "user/private-one", token=TOKEN, private=True, revision="experiment")
    assert hub.repos["user/private-one"]["private"] is True
    assert hub.commits[-1].revision == "experiment"
    assert "ticket_config.json" not in hub.files("user/private-one", "main")
    assert any(h.get("authorization") == f"Bearer {TOKEN}" for _, _, h in hub.requests)  # it was sent...
    assert TOKEN not in caplog.text  # ...but never logged
    loaded = load_pruned_model("user/private-one", revision="experiment")
    assert loaded.hf_lottery_ticket.masks_equal(ticket)
    with pytest.raises(FileNotFoundError, match="no revision"):
        load_pruned_model("user/private-one", revision="nope")


def test_protocol_repo_without_ticket_files(hub, tmp_path):
    model = tiny_bert()
    api = huggingface_hub.HfApi()
    api.create_repo("user/plain-model")
    model.save_pretrained(tmp_path / "plain")
    api.upload_folder(repo_id="user/plain-model", folder_path=str(tmp_path / "plain"))
    with pytest.raises(TicketNotFoundError, match="holds no hf-lottery ticket"):
        load_pruned_model("user/plain-model")
    with pytest.raises(FileNotFoundError, match="no ticket_config.json|holds no hf-lottery ticket"):
        LotteryTicket.from_pretrained("user/plain-model")
    with pytest.raises(FileNotFoundError, match="No accessible Hub repository|not a local folder"):
        load_pruned_model("user/does-not-exist")


def test_protocol_network_failure_keeps_local_results(hub, tmp_path):
    model = tiny_bert()
    ticket = structured_ticket(model)
    local = ticket.save_pretrained(tmp_path / "my-ticket")
    hub.fail_with = httpx2.ConnectError("connection refused")
    staging = tmp_path / "staging"
    with pytest.raises(ConnectionError, match="Nothing was committed") as info:
        push_to_hub(model, ticket, "user/offline", token=TOKEN, staging_dir=staging)
    assert str(staging) in str(info.value) and TOKEN not in str(info.value)
    assert (staging / "model.safetensors").is_file() and (staging / "ticket_config.json").is_file()
    assert LotteryTicket.from_pretrained(local) == ticket  # untouched
    with pytest.raises(ConnectionError, match="Could not download"):
        load_pruned_model("user/offline")


def test_protocol_pipeline_on_pushed_minilm(hub):
    model = BertForSequenceClassification.from_pretrained(minilm_path(), num_labels=2).eval()
    tokenizer = AutoTokenizer.from_pretrained(minilm_path())
    ticket = structured_ticket(model, seed=4)
    push_to_hub(model, ticket, "user/minilm-ticket", tokenizer=tokenizer, token=TOKEN)
    classifier = pipeline("text-classification", model="user/minilm-ticket", top_k=None)
    texts = ["a gripping, funny film", "the plot never comes together."]
    scores = classifier(texts)
    with torch.no_grad(), apply_ticket(model, ticket):
        probs = model(**tokenizer(texts, padding=True, return_tensors="pt")).logits.softmax(-1)
    for row, expected in zip(scores, probs):
        by_label = {d["label"]: d["score"] for d in row}
        torch.testing.assert_close(
            torch.tensor([by_label["LABEL_0"], by_label["LABEL_1"]]), expected, atol=1e-5, rtol=0
        )


def test_protocol_cli_push_and_download(hub, tmp_path):
    from hf_lottery.cli import main

    model = tiny_bert()
    ticket = structured_ticket(model)
    model.save_pretrained(tmp_path / "model")
    ticket.save_pretrained(tmp_path / "ticket")
    assert main(["push", str(tmp_path / "ticket"), "user/cli-ticket", "--token", TOKEN]) == 0
    assert "ticket_masks.safetensors" in hub.files("user/cli-ticket") and "model.safetensors" not in hub.files(
        "user/cli-ticket"
    )
    assert main(["push", str(tmp_path / "ticket"), "user/cli-model", "--model_dir", str(tmp_path / "model")]) == 0
    assert "model.safetensors" in hub.files("user/cli-model")
    assert main(["download", "user/cli-model", "--output_dir", str(tmp_path / "small"), "--compact"]) == 0
    small = load_pruned_model(tmp_path / "small")
    batch = {k: v for k, v in tiny_batch().items() if k != "labels"}
    with torch.no_grad(), apply_ticket(model, ticket):
        expected = model(**batch).logits
    with torch.no_grad():
        torch.testing.assert_close(small(**batch).logits, expected, atol=1e-5, rtol=0)


def test_protocol_push_to_hub_callback_after_a_trainer_run(hub, tmp_path):
    from transformers import Trainer

    from trainer_callbacks import PushToHubCallback, StructuredPruningCallback

    from .science_helpers import accuracy
    from .trainer_helpers import collate, to_dataset, training_args

    pruning = StructuredPruningCallback(eval_dataset=to_dataset(32, 3), metric=accuracy, data_collator=collate,
                                        on_degenerate="ignore", structured_max_steps=2)  # fmt: skip
    push_model = PushToHubCallback("user/from-trainer", ticket=pruning, token=TOKEN)
    push_ticket = PushToHubCallback("user/from-trainer-ticket", ticket=pruning, push_model=False, token=TOKEN)
    model = tiny_bert()
    Trainer(model=model, args=training_args(tmp_path, max_steps=2), train_dataset=to_dataset(32, 1),
            data_collator=collate, callbacks=[pruning, push_model, push_ticket]).train()  # fmt: skip
    assert "model.safetensors" in hub.files("user/from-trainer")
    assert "model.safetensors" not in hub.files("user/from-trainer-ticket")
    assert LotteryTicket.from_pretrained("user/from-trainer-ticket") == pruning.ticket
    assert push_model.pushed_url.startswith("https://huggingface.co/user/from-trainer/commit/")


def test_protocol_compact_repo_loads_through_auto_classes_and_load_pruned_model(hub, tmp_path):
    from hf_lottery import compact_model, register_auto_classes

    model = tiny_bert()
    ticket = structured_ticket(model)
    compact_model(model, ticket).save_pretrained(tmp_path / "compact")
    api = huggingface_hub.HfApi()
    api.create_repo("user/compact")
    api.upload_folder(repo_id="user/compact", folder_path=str(tmp_path / "compact"))
    batch = {k: v for k, v in tiny_batch().items() if k != "labels"}
    with torch.no_grad(), apply_ticket(model, ticket):
        expected = model(**batch).logits
    register_auto_classes()
    with torch.no_grad():
        auto = AutoModelForSequenceClassification.from_pretrained("user/compact")(**batch).logits
        small = load_pruned_model("user/compact", compact=True)(**batch).logits
        dense = load_pruned_model("user/compact")(**batch).logits
    for logits in (auto, small, dense):
        torch.testing.assert_close(logits, expected, atol=1e-5, rtol=0)


def test_protocol_card_of_a_pushed_structured_model_reports_measured_latency(hub):
    model = tiny_bert()
    ticket = structured_ticket(model).copy(task="sst2", seed=42, base_model="google-bert/bert-base-uncased")
    push_to_hub(model, ticket, "user/timed", token=TOKEN, measure_latency=True, metrics={"accuracy": 0.5})
    card = hub.files("user/timed")["README.md"].decode()
    assert "## Latency" in card and "| compacted (`compact=True`) |" in card
    assert f"torch {torch.__version__}" in card and ("CPU " in card or "GPU " in card)
    push_to_hub(model, ticket, "user/untimed", token=TOKEN)
    assert "## Latency" not in hub.files("user/untimed")["README.md"].decode()  # off by default


def test_protocol_a_push_replaces_the_previous_artifact_and_keeps_the_users_files(hub):
    model = tiny_bert()
    api = huggingface_hub.HfApi()
    push_to_hub(model, magnitude_ticket(model), "user/replaced", token=TOKEN)
    api.upload_file(path_or_fileobj=b"my notes", path_in_repo="notes.md", repo_id="user/replaced")
    api.upload_file(path_or_fileobj=b"old", path_in_repo="model.onnx", repo_id="user/replaced")
    model_files = {"config.json", "model.safetensors", "model.onnx", "plots/tensor_survival.png",
                   "plots/head_weight_survival.png"}  # fmt: skip
    assert model_files <= set(hub.files("user/replaced"))
    ticket = structured_ticket(model)
    push_ticket_to_hub(ticket, "user/replaced", token=TOKEN)
    commit = hub.commits[-1]
    assert sorted(commit.deleted) == sorted(model_files)  # the weights of the earlier push are not the ticket's
    assert sorted(hub.files("user/replaced")) == ["README.md", "notes.md", "plots/head_survival.png",
                                                 "plots/mlp_survival.png", "ticket_config.json",
                                                 "ticket_masks.safetensors"]  # fmt: skip
    assert LotteryTicket.from_pretrained("user/replaced") == ticket
    with pytest.raises(FileNotFoundError, match=r"holds a lottery ticket only.*apply_ticket"):
        load_pruned_model("user/replaced")


def test_protocol_a_model_carrying_another_ticket_is_refused_and_a_sub_ticket_is_pushed_alone(hub):
    model = tiny_bert()
    carried = structured_ticket(model)
    handle = apply_ticket(model, carried)
    other = LotteryTicket.full(model)  # keeps what the applied ticket prunes: pushing it would bake both
    with pytest.raises(ValueError, match=r"carries another ticket, LotteryTicket\(.*than the one to push"):
        push_to_hub(model, other, "user/refused", token=TOKEN)
    assert hub.requests == []
    smaller = carried.copy(head_mask=carried.head_mask.clone().index_put_((torch.tensor(0), torch.tensor(0)),
                                                                        torch.tensor(False)))  # fmt: skip
    push_to_hub(model, smaller, "user/smaller", token=TOKEN)  # prunes all the applied ticket prunes, and more
    batch = {k: v for k, v in tiny_batch().items() if k != "labels"}
    handle.remove()
    with torch.no_grad(), apply_ticket(model, smaller):
        expected = model(**batch).logits
    pushed = AutoModelForSequenceClassification.from_pretrained("user/smaller").eval()
    assert LotteryTicket.from_config_entry(pushed.config.hf_lottery_ticket).masks_equal(smaller)
    with torch.no_grad():
        torch.testing.assert_close(pushed(**batch).logits, expected, atol=1e-6, rtol=0)


def test_protocol_cli_stages_a_push_without_network_and_the_hub_reads_its_card(hub, tmp_path, capsys):
    from huggingface_hub import ModelCard, parse_eval_result_entries

    from hf_lottery.cli import main

    model = tiny_bert()
    ticket = structured_ticket(model).copy(task="sst2", base_model="google-bert/bert-base-uncased")
    model.save_pretrained(tmp_path / "model")
    ticket.save_pretrained(tmp_path / "ticket")
    staged = tmp_path / "staged"
    argv = ["push", str(tmp_path / "ticket"), "you/tiny-sst2", "--model_dir", str(tmp_path / "model"),
            "--staging_dir", str(staged), "--metrics", "accuracy=0.91", "loss=0.3"]  # fmt: skip
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert hub.requests == []  # staged only: nothing reached the Hub, not even the base model's card
    assert str(staged) in out and "  README.md" in out and "  .eval_results/glue-sst2-accuracy.yaml" in out
    data = ModelCard.load(staged / "README.md").data
    assert (data.base_model, data.datasets, data.library_name) == (
        "google-bert/bert-base-uncased", ["nyu-mll/glue"], "transformers")  # fmt: skip
    (result,) = data.eval_results  # model-index: the metric only (a loss is no result of the task)
    assert (result.metric_type, result.metric_value, result.dataset_config, result.dataset_split) == (
        "accuracy", 0.91, "sst2", "validation")  # fmt: skip
    assert [p.name for p in (staged / ".eval_results").iterdir()] == ["glue-sst2-accuracy.yaml"]
    entries = parse_eval_result_entries(yaml.safe_load((staged / ".eval_results/glue-sst2-accuracy.yaml").read_text()))
    assert [(e.dataset_id, e.task_id, e.value, e.notes) for e in entries] == [
        ("nyu-mll/glue", "sst2", 0.91, "accuracy, validation split")]  # fmt: skip
    assert (staged / "model.safetensors").is_file() and (staged / "ticket_config.json").is_file()


def test_protocol_cli_push_opens_a_pull_request(hub, tmp_path, capsys):
    from hf_lottery.cli import main

    model = tiny_bert()
    ticket = structured_ticket(model)
    ticket.save_pretrained(tmp_path / "ticket")
    push_ticket_to_hub(ticket, "user/pr-target", token=TOKEN)
    assert main(["push", str(tmp_path / "ticket"), "user/pr-target", "--create_pr", "--token", TOKEN]) == 0
    assert (
        capsys.readouterr().out.strip() == "Opened a pull request: https://huggingface.co/user/pr-target/discussions/2"
    )
    assert [commit.create_pr for commit in hub.commits] == [False, True]


@pytest.mark.parametrize(
    "answer, token, kind, words",
    [(401, None, PermissionError, "no Hub token was found; log in with `hf auth login`"),
     (401, TOKEN, PermissionError, r"the Hub refused the token \(401: invalid or expired\)"),
     (403, TOKEN, PermissionError, r"the token may not write there \(403: another owner's repo"),
     ("offline", TOKEN, ConnectionError, r"the Hub cannot be reached \(OfflineModeIsEnabled: .*offline mode"),
     ("no network", TOKEN, ConnectionError, r"the Hub cannot be reached \(ConnectError: connection refused\)"),
     (500, TOKEN, OSError, r"the Hub answered 500")],
)  # fmt: skip
def test_protocol_push_failures_say_what_failed_and_keep_the_staging(hub, tmp_path, monkeypatch, answer, token,
                                                                     kind, words):  # fmt: skip
    from hf_lottery.hub import push

    monkeypatch.setattr(push, "get_token", lambda: None)  # no token stored on this machine
    if answer == "offline":  # what huggingface_hub's own client raises with HF_HUB_OFFLINE=1 (the fake's has no hook)
        hub.fail_with = huggingface_hub.errors.OfflineModeIsEnabled("Cannot reach the Hub: offline mode is enabled.")
    elif answer == "no network":
        hub.fail_with = httpx2.ConnectError("connection refused")
    else:
        message = "Invalid credentials in Authorization header" if token else "Invalid username or password."
        hub._create_repo = lambda request, match: hub._error(answer, message)
    model = tiny_bert()
    staging = tmp_path / "staging"
    with pytest.raises(kind, match=f"Pushing to 'user/denied' failed: {words}") as info:
        push_to_hub(model, structured_ticket(model), "user/denied", token=token, staging_dir=staging)
    assert f"Nothing was committed; the prepared files are kept in {staging}" in str(info.value)
    assert isinstance(info.value, ConnectionError) == (answer in ("offline", "no network"))  # never all "network"
    assert TOKEN not in str(info.value) and (staging / "model.safetensors").is_file() and hub.commits == []


def test_protocol_push_callback_logs_a_failed_push_and_training_returns(hub, tmp_path, caplog):
    from transformers import Trainer

    from trainer_callbacks import PushToHubCallback, TicketCallback

    from .trainer_helpers import collate, to_dataset, training_args

    hub._create_repo = lambda request, match: hub._error(403, "You don't have the rights to create a model under user")
    model = tiny_bert()
    ticket = structured_ticket(model)
    trainer = Trainer(model=model, args=training_args(tmp_path, max_steps=2, save_strategy="no"),
                      train_dataset=to_dataset(16, 1), data_collator=collate,
                      callbacks=[TicketCallback(ticket), PushToHubCallback("user/not-mine", ticket=ticket, token=TOKEN)])  # fmt: skip
    with caplog.at_level(logging.ERROR):
        result = trainer.train()
    assert result.global_step == 2 and hub.commits == []
    (record,) = [r for r in caplog.records if r.levelno == logging.ERROR]
    staging = tmp_path / "hub_staging"
    assert "'user/not-mine'" in record.getMessage() and "403" in record.getMessage()
    assert f"kept in {staging}" in record.getMessage() and (staging / "model.safetensors").is_file()


@pytest.mark.parametrize("spelling", [["--token", "hf_FAKEtokenDoNotLeak1"], ["--token=hf_FAKEtokenDoNotLeak1"]])
def test_protocol_cli_token_reaches_no_staged_file_and_no_output(hub, tmp_path, capfd, caplog, spelling):
    from hf_lottery.cli import main

    model = tiny_bert()
    model.save_pretrained(tmp_path / "model")
    structured_ticket(model).copy(task="sst2").save_pretrained(tmp_path / "ticket")
    staged = tmp_path / "staged"
    argv = ["--verbose", "push", str(tmp_path / "ticket"), "you/tiny", "--model_dir", str(tmp_path / "model"),
            "--staging_dir", str(staged), "--metrics", "accuracy=0.9", *spelling]  # fmt: skip
    assert main(argv) == 0
    with pytest.raises(SystemExit) as exit_info:  # an abbreviation is no flag: refused, its value never echoed
        main(["push", str(tmp_path / "ticket"), "you/tiny", "--tok", "hf_FAKEtokenDoNotLeak1"])
    assert exit_info.value.code == 2
    out = capfd.readouterr()
    assert "hf_FAKEtokenDoNotLeak1" not in out.out + out.err + caplog.text
    files = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert len([p for p in files if staged in p.parents]) >= 5  # card, weights, config, ticket files, results
    assert [p for p in files if b"hf_FAKEtokenDoNotLeak1" in p.read_bytes()] == []
