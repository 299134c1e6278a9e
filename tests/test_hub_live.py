"""Against the real Hub: runs only with HF_TOKEN and HF_LOTTERY_TEST_REPO (a repo id you can write to)."""

import os

import pytest
import torch

from hf_lottery import LotteryTicket, apply_ticket, load_pruned_model, push_to_hub

from .conftest import tiny_batch, tiny_bert
from .test_gates import structured_ticket


pytestmark = [
    pytest.mark.live,
    pytest.mark.skipif(
        not (os.environ.get("HF_TOKEN") and os.environ.get("HF_LOTTERY_TEST_REPO")),
        reason="set HF_TOKEN and HF_LOTTERY_TEST_REPO (and run with -m live) to test against the real Hub",
    ),
]


def test_live_push_and_load(monkeypatch):
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    repo = os.environ["HF_LOTTERY_TEST_REPO"]
    model = tiny_bert()
    ticket = structured_ticket(model)
    push_to_hub(model, ticket, repo, private=True)
    batch = {k: v for k, v in tiny_batch().items() if k != "labels"}
    with torch.no_grad(), apply_ticket(model, ticket):
        expected = model(**batch).logits
    with torch.no_grad():
        torch.testing.assert_close(load_pruned_model(repo)(**batch).logits, expected, atol=1e-6, rtol=0)
    assert LotteryTicket.from_pretrained(repo).masks_equal(ticket)
