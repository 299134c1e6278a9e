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
from .hub_fake import FakeHub
from .test_gates import structured_ticket


@pytest.fixture
def hub(monkeypatch, tmp_path):
    fake = FakeHub()
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hub-cache"))
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub-cache"))
    gated = {"user/gated"}

    def handler(request):
        if any(f"/{repo}/" in request.url.path for repo in gated):
            fake.requests.append((request.method, request.url.path, dict(request.headers)))
            return httpx2.Response(
                403, json={"error": "gated"}, headers={"X-Error-Code": "GatedRepo", "X-Error-Message": "gated"}
            )
        return fake.handler(request)

    huggingface_hub.set_client_factory(lambda: httpx2.Client(transport=httpx2.MockTransport(handler)))
    huggingface_hub.close_session()
    yield fake
    huggingface_hub.set_client_factory(huggingface_hub.utils._http.default_client_factory)
    huggingface_hub.close_session()


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
    with pytest.raises(HubConnectionError):
        download_files("user/ticket", TICKET_FILES)
    hub.handler = original
