"""Protocol tests of `hf_lottery.downloads` through the fake Hub: one error table, offline errors that say so at once."""

import time

import httpx2
import huggingface_hub
import pytest
from huggingface_hub import constants

from hf_lottery import LotteryTicket
from hf_lottery.downloads import (
    HubAccessError,
    HubConnectionError,
    HubFileNotFoundError,
    download_files,
    snapshot,
)
from hf_lottery.files import TICKET_CONFIG_NAME, TICKET_FILES

from .conftest import tiny_bert
from .hub_fake import FakeHub, routed
from .test_gates import structured_ticket


@pytest.fixture
def hub(monkeypatch, tmp_path):
    fake = FakeHub()
    gated = {"user/gated"}

    def handler(request):
        if any(f"/{repo}/" in request.url.path for repo in gated):
            fake.requests.append((request.method, request.url.path, dict(request.headers)))
            return httpx2.Response(
                403, json={"error": "gated"}, headers={"X-Error-Code": "GatedRepo", "X-Error-Message": "gated"}
            )
        return fake.handler(request)

    with routed(handler, monkeypatch, tmp_path / "hub-cache"):
        yield fake


def _publish(hub, tmp_path, repo_id="user/ticket"):
    ticket = structured_ticket(tiny_bert()).copy(seed=5)
    api = huggingface_hub.HfApi()
    api.create_repo(repo_id)
    api.upload_folder(repo_id=repo_id, folder_path=str(ticket.save_pretrained(tmp_path / "local")))
    return ticket


def test_download_and_cache_fallback_when_the_network_goes_down(hub, tmp_path):
    ticket = _publish(hub, tmp_path)
    folder = download_files("user/ticket", TICKET_FILES)
    assert sorted(p.name for p in folder.iterdir()) == sorted(TICKET_FILES)
    assert LotteryTicket.from_pretrained("user/ticket") == ticket
    hub.fail_with = httpx2.ConnectError("[Errno -2] Name or service not known")
    before = len(hub.requests)
    assert LotteryTicket.from_pretrained("user/ticket") == ticket  # from the cache, as huggingface_hub does
    assert len(hub.requests) - before == 1  # one request, no retries


def test_no_connection_says_so_at_once(hub):
    hub.fail_with = httpx2.ConnectError("[Errno -2] Name or service not known")
    start = time.perf_counter()
    with pytest.raises(HubConnectionError, match=r"offline / no connection to the Hub .* does not hold them") as info:
        LotteryTicket.from_pretrained("user/repo")
    assert time.perf_counter() - start < 3  # huggingface_hub alone retries for about 23 s per file
    assert len(hub.requests) == 1
    assert "holds no" not in str(info.value) and isinstance(info.value, ConnectionError)


def test_offline_mode_says_so_without_any_request(hub, monkeypatch):
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    with pytest.raises(ConnectionError, match=r"offline mode is on \(HF_HUB_OFFLINE=1\).*Unset HF_HUB_OFFLINE"):
        LotteryTicket.from_pretrained("user/repo")
    with pytest.raises(ConnectionError, match="offline mode is on"):
        snapshot("user/repo")
    assert hub.requests == []


def test_invalid_repo_id_is_refused_before_any_request(hub, tmp_path):
    for bad in ("not a repo!", "a/b/c", str(tmp_path / "missing-folder")):
        with pytest.raises(HubFileNotFoundError, match="neither a local folder nor a valid Hub repo id"):
            LotteryTicket.from_pretrained(bad)
    assert hub.requests == []


def test_error_table_rows(hub, tmp_path):
    _publish(hub, tmp_path)
    with pytest.raises(HubFileNotFoundError, match="no Hub repository of that name is visible"):
        download_files("user/missing", TICKET_FILES)
    with pytest.raises(HubFileNotFoundError, match="has no revision 'nope'"):
        download_files("user/ticket", TICKET_FILES, revision="nope")
    with pytest.raises(HubFileNotFoundError, match="has no README.md: it holds no model card"):
        download_files("user/ticket", ["README.md"], what="model card")
    with pytest.raises(HubFileNotFoundError, match=f"has no {TICKET_CONFIG_NAME} in sub/: it holds no hf-lottery"):
        LotteryTicket.from_pretrained("user/ticket", subfolder="sub")
    with pytest.raises(HubAccessError, match="is gated: accept its conditions"):
        download_files("user/gated", TICKET_FILES)
    assert snapshot("user/ticket", allow_patterns=["*.json"]).joinpath(TICKET_CONFIG_NAME).is_file()
    with pytest.raises(HubFileNotFoundError, match="no Hub repository"):
        snapshot("user/missing")


def test_hub_refusal_is_a_connection_error_naming_the_status(hub):
    hub.fail_with = None
    original = hub.handler

    def broken(request):  # a 500 on every call: the Hub is there but fails
        return httpx2.Response(500, json={"error": "boom"}, headers={"X-Error-Message": "boom"})

    hub.handler = broken
    with pytest.raises(HubConnectionError, match="The Hub refused the download of .*500"):
        download_files("user/ticket", TICKET_FILES)
    hub.handler = original


def test_subfolder_and_a_partly_cached_snapshot(hub, tmp_path, monkeypatch):
    ticket = _publish(hub, tmp_path)
    api = huggingface_hub.HfApi()
    api.upload_folder(repo_id="user/ticket", folder_path=str(tmp_path / "local"), path_in_repo="sub")
    assert LotteryTicket.from_pretrained("user/ticket", subfolder="sub") == ticket
    folder = download_files("user/ticket", TICKET_FILES, subfolder="sub")
    assert folder.name == "sub" and folder.parent.parent.name == "snapshots"
    api.upload_file(path_or_fileobj=b"# card", path_in_repo="README.md", repo_id="user/ticket")  # a new commit
    assert download_files("user/ticket", ["README.md"]).joinpath("README.md").read_bytes() == b"# card"
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)  # the cached snapshot of that commit lacks the ticket
    with pytest.raises(HubConnectionError, match="offline mode is on .* does not hold them") as info:
        download_files("user/ticket", TICKET_FILES)
    assert "holds no" not in str(info.value)
