"""Bad Hub pushes and loads: refused before anything is staged or sent, with a message naming the input."""

from __future__ import annotations

from hf_lottery import LotteryTicket, load_pruned_model, push_ticket_to_hub, push_to_hub

from ..conftest import tiny_bert
from ..test_gates import structured_ticket
from . import BadInput


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
    BadInput("hub-load-a-file", "hub", _load_a_file, NotADirectoryError, r"weights\.bin is a file"),
    BadInput("hub-load-invalid-repo-id", "hub", lambda tmp_path: load_pruned_model("no such//repo"), FileNotFoundError,
             r"neither a local folder nor a valid Hub repo id"),
]  # fmt: skip
