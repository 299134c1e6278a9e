"""The README's Python blocks run as written, in order and in one namespace (as a reader pastes them), on tiny models.

The obvious substitutions: Hub ids of models (``bert-base-uncased``, the fine-tuned and the transformers-4 models)
become local folders holding tiny random BERTs with the packaged MiniLM's tokenizer, and the ``you/...`` repos the
README pushes to live on the protocol-level fake Hub of `tests/hub_fake.py`.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch
from transformers import AutoTokenizer, BertConfig, BertForMaskedLM, BertForSequenceClassification

from tests.conftest import minilm_path
from tests.test_hub_protocol import hub  # noqa: F401  (the fake-Hub fixture)
from tests.test_loading import head_pruned_checkpoint


README = Path(__file__).resolve().parents[1] / "README.md"
PYTHON_BLOCK = re.compile(r"^```python\n(.*?)^```", re.S | re.M)


def python_blocks() -> list[str]:
    return PYTHON_BLOCK.findall(README.read_text(encoding="utf-8"))


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


def test_the_readme_has_python_blocks():
    assert len(python_blocks()) >= 8


@pytest.mark.filterwarnings("ignore")  # tiny random models trip the degenerate-stop-rule warning, as they should
def test_readme_python_blocks_run_as_written(model_folders, hub, tmp_path, monkeypatch):  # noqa: F811
    monkeypatch.chdir(tmp_path)
    substitutions = {
        '"bert-base-uncased"': repr(str(model_folders["base"])),
        '"you/bert-base-uncased-sst2"': repr(str(model_folders["finetuned"])),
        '"you/bert-head-pruned-with-transformers-4"': repr(str(model_folders["transformers4"])),
    }
    namespace: dict = {"__name__": "readme"}
    for index, block in enumerate(python_blocks()):
        for old, new in substitutions.items():
            block = block.replace(old, new)
        exec(compile(block, f"README.md python block {index}", "exec"), namespace)  # noqa: S102
    # what the blocks claim
    assert namespace["half"].sparsity == pytest.approx(0.5, abs=1e-6)
    assert int(namespace["heads"].head_mask.sum()) == 4 and int(namespace["heads"].mlp_mask.sum()) == 1
    assert (tmp_path / "sst2-good-onnx" / "model.onnx").is_file()
    assert {"you/bert-sst2-lottery", "you/bert-sst2-ticket"} <= set(hub.repos)
