"""Every Hub download hf-lottery does, with one table that turns huggingface_hub's errors into clear messages.

`download_files` fetches named files of a repo (a ticket's two files, for instance) from one commit;
`snapshot` fetches a filtered snapshot (a model folder). Both validate the repo id before any network call, fail at
once with "offline / no connection" when the Hub cannot be reached and the files are not cached (instead of
huggingface_hub's five retries, about 23 s per file), and use the local cache when it holds the files.

This module imports nothing else of hf-lottery but the file-name table, so the ticket can use it.

Example:

```python
>>> from hf_lottery.downloads import download_files
>>> download_files("not a repo id!", ["ticket_config.json"])
Traceback (most recent call last):
    ...
hf_lottery.downloads.HubFileNotFoundError: 'not a repo id!' is neither a local folder nor a valid Hub repo id ...

```
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import httpx2
from huggingface_hub import constants, get_hf_file_metadata, hf_hub_download, hf_hub_url, snapshot_download
from huggingface_hub import errors as hub_errors
from huggingface_hub.utils import validate_repo_id


class HubFileNotFoundError(FileNotFoundError):
    """Not a local folder, and the Hub has no such repo, revision or file (or the id is not a valid repo id).

    Example:

    ```python
    >>> issubclass(HubFileNotFoundError, FileNotFoundError)
    True

    ```
    """


class HubAccessError(PermissionError):
    """The repo exists but is gated: its conditions must be accepted on the Hub, and a token passed.

    Example:

    ```python
    >>> issubclass(HubAccessError, PermissionError)
    True

    ```
    """


class HubConnectionError(ConnectionError):
    """Offline (``HF_HUB_OFFLINE=1``) or no connection to the Hub, and the files are not in the local cache.

    Example:

    ```python
    >>> issubclass(HubConnectionError, ConnectionError)
    True

    ```
    """


# Kept for callers that name the "no ticket here" case.
TicketNotFoundError = HubFileNotFoundError

# huggingface_hub error -> (error raised, message). The first matching row wins, so the order matters:
# LocalEntryNotFoundError subclasses EntryNotFoundError *and* FileNotFoundError (an offline look-up must not read
# as "the repo has no such file"), and GatedRepoError subclasses RepositoryNotFoundError.
_ERROR_TABLE: tuple[tuple[type[BaseException] | tuple[type[BaseException], ...], type[Exception], str], ...] = (
    (
        (hub_errors.OfflineModeIsEnabled, hub_errors.LocalEntryNotFoundError, httpx2.TransportError),
        HubConnectionError,
        "Could not download {files} of {repo!r}: {offline}, and the local cache does not hold {them}.{hint}",
    ),
    (
        hub_errors.HFValidationError,
        HubFileNotFoundError,
        "{repo!r} is neither a local folder nor a valid Hub repo id ('user/name'): {error}",
    ),
    (
        hub_errors.GatedRepoError,
        HubAccessError,
        "Hub repository {repo!r} is gated: accept its conditions on its Hub page, then pass `token=` (or log in "
        "with `hf auth login`).",
    ),
    (
        hub_errors.RepositoryNotFoundError,
        HubFileNotFoundError,
        "{repo!r} is not a local folder and no Hub repository of that name is visible (check the name, or pass "
        "`token=` for a private repo).",
    ),
    (
        hub_errors.RevisionNotFoundError,
        HubFileNotFoundError,
        "Hub repository {repo!r} has no revision {revision!r} (a branch, tag or commit id).",
    ),
    (
        hub_errors.EntryNotFoundError,
        HubFileNotFoundError,
        "Hub repository {repo!r} has no {missing}{where}: it holds no {what} (expected {files}{where}).",
    ),
    (
        hub_errors.HfHubHTTPError,
        HubConnectionError,
        "The Hub refused the download of {files} from {repo!r}: {error}",
    ),
)


def hub_error(
    error: BaseException,
    repo_id: str,
    *,
    files: Sequence[str] = (),
    revision: str | None = None,
    subfolder: str | None = None,
    what: str = "hf-lottery ticket",
) -> Exception | None:
    """The clear error (not raised) for a huggingface_hub `error`, or None when the table has no row for it.

    Example:

    ```python
    >>> from huggingface_hub.errors import LocalEntryNotFoundError
    >>> print(hub_error(LocalEntryNotFoundError("x"), "user/repo", files=["ticket_config.json"]))
    Could not download ticket_config.json of 'user/repo': offline ..., and the local cache does not hold it. ...

    ```
    """
    for caught, raised, template in _ERROR_TABLE:
        if isinstance(error, caught):
            offline = constants.HF_HUB_OFFLINE
            missing = getattr(error, "hf_lottery_filename", None) or (files[0] if files else "such file")
            message = template.format(
                repo=repo_id,
                files=", ".join(files) or "the files",
                them="them" if len(files) != 1 else "it",
                offline="offline mode is on (HF_HUB_OFFLINE=1)"
                if offline
                else f"offline / no connection to the Hub ({constants.ENDPOINT})",
                hint=" Unset HF_HUB_OFFLINE, or download once while online."
                if offline
                else " Check the network (or a proxy), or download once while online.",
                revision=revision,
                missing=missing,
                where=f" in {subfolder}/" if subfolder else "",
                what=what,
                error=_short(error),
            )
            return raised(message)
    return None


def _short(error: BaseException) -> str:
    return str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__


def _raise_clear(error: BaseException, repo_id: str, **context: Any) -> None:
    clear = hub_error(error, repo_id, **context)
    if clear is None:
        raise error
    raise clear from error


def check_repo_id(repo_id: str | os.PathLike, **context: Any) -> str:
    """`repo_id` as a string, or `HubFileNotFoundError` when it is not a valid Hub repo id (no network call).

    Example:

    ```python
    >>> check_repo_id("user/tiny-ticket")
    'user/tiny-ticket'

    ```
    """
    repo_id = os.fspath(repo_id)
    try:
        validate_repo_id(repo_id)
    except hub_errors.HFValidationError as err:
        _raise_clear(err, repo_id, **context)
    return repo_id


def _network_down(error: BaseException) -> bool:
    if isinstance(error, (httpx2.TransportError, hub_errors.OfflineModeIsEnabled)):
        return True
    response = getattr(error, "response", None)
    return isinstance(error, hub_errors.HfHubHTTPError) and response is not None and response.status_code >= 500


def download_files(
    repo_id: str | os.PathLike,
    filenames: Sequence[str],
    *,
    revision: str | None = None,
    token: str | bool | None = None,
    subfolder: str | None = None,
    cache_dir: str | os.PathLike | None = None,
    what: str = "hf-lottery ticket",
) -> Path:
    """Download `filenames` of Hub repo `repo_id`, all from one commit; return the cached folder holding them.

    The repo id is validated first (no network call for a mistyped local path). Unless offline mode is on, one
    request without retries checks that the Hub answers: when it does not, the files come from the local cache or a
    `HubConnectionError` says "offline / no connection" at once.

    Args:
        repo_id: ``"user/name"``.
        filenames: file names inside the repo (inside `subfolder` when given).
        revision: branch, tag or commit id (default: the main branch).
        token: Hub token for private or gated repos (never logged).
        subfolder: folder of the files inside the repo.
        cache_dir: huggingface_hub cache folder (default: its own).
        what: what the files make up, for the "it holds no ..." message.

    Raises:
        HubFileNotFoundError: invalid repo id, no such repo / revision / file.
        HubAccessError: gated repo.
        HubConnectionError: offline or no connection, and the files are not cached; or another Hub error.

    Example:

    ```python
    >>> from huggingface_hub import constants
    >>> online, constants.HF_HUB_OFFLINE = constants.HF_HUB_OFFLINE, True  # as with HF_HUB_OFFLINE=1
    >>> download_files("user/never-downloaded", ["ticket_config.json"])
    Traceback (most recent call last):
    hf_lottery.downloads.HubConnectionError: Could not download ticket_config.json of 'user/never-downloaded': offline mode is on (HF_HUB_OFFLINE=1), and the local cache does not hold it. ...
    >>> constants.HF_HUB_OFFLINE = online

    ```
    """
    context: dict[str, Any] = {"files": list(filenames), "revision": revision, "subfolder": subfolder, "what": what}
    repo_id = check_repo_id(repo_id, **context)
    if not filenames:
        raise ValueError("`filenames` must name at least one file to download.")
    common = {"subfolder": subfolder or None, "token": token, "cache_dir": cache_dir}
    local_only = bool(constants.HF_HUB_OFFLINE)
    if not local_only:
        try:  # one request, no retries: is the Hub there at all, and does it have the first file?
            get_hf_file_metadata(
                hf_hub_url(repo_id, filenames[0], subfolder=subfolder or None, revision=revision),
                token=token,
                retry_on_errors=False,
            )
        except Exception as err:
            if not _network_down(err):
                _raise_clear(err, repo_id, **context)
            local_only = True  # no connection: the cache, as huggingface_hub itself falls back to it
    paths: list[Path] = []
    pinned = revision
    for filename in filenames:
        try:
            path = Path(hf_hub_download(repo_id, filename, revision=pinned, local_files_only=local_only, **common))
        except Exception as err:
            err.hf_lottery_filename = filename  # type: ignore[attr-defined]
            _raise_clear(err, repo_id, **context)
        if not paths:  # later files from the commit the first one came from (no mixed files after a push)
            pinned = _snapshot_commit(path, subfolder) or revision
        paths.append(path)
    return paths[0].parent


def _snapshot_commit(path: Path, subfolder: str | None) -> str | None:
    folder = path.parent
    for _ in (subfolder or "").strip("/").split("/") if subfolder else ():
        folder = folder.parent
    return folder.name if folder.parent.name == "snapshots" else None


def snapshot(
    repo_id: str | os.PathLike,
    *,
    revision: str | None = None,
    token: str | bool | None = None,
    allow_patterns: Sequence[str] | None = None,
    cache_dir: str | os.PathLike | None = None,
    what: str = "a model",
) -> Path:
    """Download a snapshot of Hub repo `repo_id` (only `allow_patterns` when given); return its cached folder.

    Errors go through the same table as `download_files` (invalid id, missing repo or revision, gated, offline).

    Example:

    ```python
    >>> from huggingface_hub import constants
    >>> online, constants.HF_HUB_OFFLINE = constants.HF_HUB_OFFLINE, True  # as with HF_HUB_OFFLINE=1
    >>> snapshot("user/never-downloaded")
    Traceback (most recent call last):
    hf_lottery.downloads.HubConnectionError: Could not download the files of 'user/never-downloaded': offline mode is on ...
    >>> constants.HF_HUB_OFFLINE = online

    ```
    """
    context: dict[str, Any] = {"files": [], "revision": revision, "what": what}
    repo_id = check_repo_id(repo_id, **context)
    try:
        return Path(
            snapshot_download(
                repo_id,
                revision=revision,
                token=token,
                allow_patterns=list(allow_patterns) if allow_patterns is not None else None,
                cache_dir=cache_dir,
                local_files_only=bool(constants.HF_HUB_OFFLINE),
            )
        )
    except Exception as err:
        _raise_clear(err, repo_id, **context)
        raise  # unreachable: _raise_clear always raises
