"""Model cards: Hub ids only, licenses, real metric types and GLUE splits, pushed-weights metrics labelled apart from
the search's, and method-specific content (built offline)."""

import re

import pytest
import yaml
from huggingface_hub import HfApi, constants
from transformers import TrainingArguments

from hf_lottery.hub.card import build_card, hub_id

from .conftest import tiny_bert
from .hub_fake import FakeHub, routed
from .test_gates import magnitude_ticket, structured_ticket


MINILM = "sentence-transformers/all-MiniLM-L6-v2"
SEARCH = {"full_metric": 0.88, "metric": 0.80, "constant_baseline": 0.51}


def meta(card) -> dict:
    return yaml.safe_load(str(card).split("---")[1])


def results(card) -> list[tuple[str, str, float]]:
    index = meta(card).get("model-index") or [{"results": []}]
    return [(m["type"], r["dataset"]["split"], m["value"]) for r in index[0]["results"] for m in r["metrics"]]


@pytest.fixture(autouse=True)
def offline_with_an_empty_cache(monkeypatch, tmp_path):
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hub-cache"))


@pytest.fixture
def ticket():
    return structured_ticket(tiny_bert()).copy(task="sst2", base_model=MINILM, seed=42, threshold=0.9,
                                               search_data="dev", metrics=dict(SEARCH))  # fmt: skip


def test_hub_ids_only_and_offline_the_license_is_the_base_models(ticket, tmp_path):
    card = build_card(ticket, "you/x", with_model=True, finetuned_from=str(tmp_path / "finetuned"))
    assert meta(card)["base_model"] == MINILM and "license" not in meta(card)  # offline, MiniLM's card not cached
    assert "- License: that of the base model (see the base model)." in str(card)
    assert "Fine-tuned parent: a local model" in str(card) and str(tmp_path) not in str(card)
    local = build_card(ticket.copy(base_model=str(tmp_path / "my-bert")), "you/x", with_model=False)
    assert "base_model" not in meta(local) and "license" not in meta(local)
    assert "a local model" in str(local) and str(tmp_path) not in str(local) and "see the base model" in str(local)
    assert hub_id("google-bert/bert-base-uncased") == "google-bert/bert-base-uncased" and hub_id("./x") is None


def test_pushed_weights_metrics_are_the_model_index_and_search_metrics_are_labelled(ticket):
    card = build_card(ticket, "you/x", with_model=True, metrics={"accuracy": 0.8532})
    assert results(card) == [("accuracy", "validation", 0.8532)]
    text = str(card)
    assert "| **this model (the pushed weights)** | accuracy | validation | 0.8532 |" in text
    assert (
        "| fine-tuned model with this ticket applied, no retraining (end of search) | accuracy | validation | 0.8000 |"
        in text
    )
    assert "Only the rows in bold score these weights" in text
    # without metrics of the pushed weights, the search score is not presented as this model's result
    assert results(build_card(ticket, "you/x", with_model=True)) == []
    # a ticket repo reports the search score, named for what it is
    (only,) = meta(build_card(ticket, "you/x", with_model=False))["model-index"][0]["results"][0]["metrics"]
    assert only["type"] == "accuracy" and "no retraining" in only["name"] and only["value"] == 0.80


@pytest.mark.parametrize(
    "task, metrics, expected",
    [
        ("cola", None, [("matthews_correlation", "validation", 0.8)]),
        ("mnli", None, [("accuracy", "validation_matched", 0.8)]),
        ("mnli-mm", None, [("accuracy", "validation_mismatched", 0.8)]),
        ("stsb", None, []),  # the stop-rule score is a mean of two correlations: no single metric type
        ("stsb", {"pearson": 0.81, "spearmanr": 0.8}, [("pearson", "validation", 0.81), ("spearmanr", "validation", 0.8)]),
        ("mrpc", {"accuracy": 0.8, "f1": 0.85}, [("accuracy", "validation", 0.8), ("f1", "validation", 0.85)]),
    ],
)  # fmt: skip
def test_real_metric_types_and_glue_split_names(ticket, task, metrics, expected):
    card = build_card(ticket.copy(task=task), "you/x", with_model=metrics is not None, metrics=metrics)
    assert results(card) == expected


def test_unknown_fields_are_omitted_not_printed_as_none():
    bare = structured_ticket(tiny_bert())  # no task, seed, base model, metrics
    text = str(build_card(bare, "you/x", with_model=True))
    for phrase in ("None", "unnamed task", "Seed None", "## Results", "## How the ticket was found"):
        assert phrase not in text
    assert "a local model" in text


def test_magnitude_card_has_per_tensor_sparsity_and_an_honest_note():
    model = tiny_bert()
    ticket = magnitude_ticket(model).copy(task="rte", metrics=dict(SEARCH), threshold=0.9)
    text = str(build_card(ticket, "you/x", with_model=True))
    assert "## Heads and MLPs kept" not in text and "compact=True)  #" not in text
    assert (
        "## Sparsity per layer and weight matrix" in text
        and "| layer | Q | K | V | attn out | MLP in | MLP out |" in text
    )
    mask = ticket.weight_masks["layer.0.attention.self.query.weight"]
    assert f"| 1 | {1 - mask.double().mean().item():.1%} |" in text
    assert "runs no faster" in text and "does not shrink it either" in text
    assert re.search(r"every head and MLP remains", text)


def test_structured_card_has_the_head_table_latency_hyperparameters_search_config_and_versions(ticket, tmp_path):
    latency = {"batch_size": 8, "seq_len": 128, "machine": "CPU Test (2 threads), torch 2.13.0", "dense_ms": 20.0,
               "compact_ms": 10.0}  # fmt: skip
    args = TrainingArguments(output_dir=str(tmp_path), learning_rate=3e-5, num_train_epochs=2, seed=7,
                             report_to="none")  # fmt: skip
    ticket = ticket.copy(extra={"search_config": {"threshold": 0.9, "head_fraction": 0.1, "target_sparsity": None}})
    text = str(build_card(ticket, "you/x", with_model=True, latency=latency, training_args=args))
    assert "| 2 | 0/4 | — | yes |" in text  # layer 2 (1-based) lost every head
    assert "| dense (pruned weights are zeros) | 20.0 |" in text and "on CPU Test (2 threads), torch 2.13.0" in text
    assert "Speed-up 2.00×" in text
    assert "| learning_rate | 3e-05 |" in text and "| num_train_epochs | 2 |" in text and "| seed | 7 |" in text
    assert "`head_fraction=0.1`, `threshold=0.9`" in text and "target_sparsity" not in text
    assert "- Seed: 42" in text and "## Framework versions" in text and "- transformers " in text
    assert "compact=True)  # pruned heads and MLPs removed" in text


def test_protocol_license_from_the_base_models_card_then_from_the_cache(ticket, tmp_path, monkeypatch):
    hub = FakeHub()
    with routed(hub.handler, monkeypatch, tmp_path / "hub-cache"):
        api = HfApi()
        for repo, header in (("org/base-bert", "license: mit"), ("org/own-terms", "license: other\nlicense_name: "
                             "acme-1.0\nlicense_link: LICENSE"), ("org/no-license", "language: en"),
                             ("org/script-link", "license: other\nlicense_link: javascript:alert(1)")):  # fmt: skip
            api.create_repo(repo)
            api.upload_file(path_or_fileobj=f"---\n{header}\n---\n# base\n".encode(), path_in_repo="README.md",
                            repo_id=repo)  # fmt: skip
        card = build_card(ticket.copy(base_model="org/base-bert"), "you/x", with_model=True)
        assert meta(card)["license"] == "mit" and "- License: mit, that of the base model" in str(card)
        other = meta(build_card(ticket.copy(base_model="org/own-terms"), "you/x", with_model=False))
        assert (other["license"], other["license_name"], other["license_link"]) == (
            "other",
            "acme-1.0",
            "https://huggingface.co/org/own-terms/blob/main/LICENSE",
        )  # the base repo's file: a relative link would point into the pushed repo
        scripted = meta(build_card(ticket.copy(base_model="org/script-link"), "you/x", with_model=False))
        assert scripted["license"] == "other" and "license_link" not in scripted
        for base in ("org/no-license", "org/not-on-the-hub"):
            card = build_card(ticket.copy(base_model=base), "you/x", with_model=True)
            assert "license" not in meta(card) and "(see the base model)" in str(card)
        monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
        before = len(hub.requests)
        assert meta(build_card(ticket.copy(base_model="org/base-bert"), "you/x", with_model=True))["license"] == "mit"
        assert "license" not in meta(build_card(ticket, "you/x", with_model=True))  # MiniLM: not cached, not asked
        assert len(hub.requests) == before  # offline: the cache only, no request
