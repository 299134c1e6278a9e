"""Every Hub download hf-lottery does (`snapshot`, `download_files`, both with huggingface_hub's `snapshot_download`
from one commit), with one function (`hub_error`) that turns huggingface_hub's errors into clear messages.

The repo id is checked with `hf_lottery.provenance`'s rule before any network call; the local cache is used when it
holds the files, and when it does not and the Hub cannot be reached the error says "offline / no connection" at once
(`snapshot_download` asks the Hub once, without retries, then falls back to the cache).
"""

from __future__ import annotations

import glob
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NoReturn

import httpx2
from huggingface_hub import constants, get_cached_repo_tree, snapshot_download
from huggingface_hub import errors as hub_errors

from . import provenance


class HubFileNotFoundError(FileNotFoundError):
    """Not a local folder, and the Hub has no such repo, revision or file (or the id is not a valid repo id)."""


class HubAccessError(PermissionError):
    """The repo exists but is gated: its conditions must be accepted on the Hub, and a token passed."""


class HubConnectionError(ConnectionError):
    """Offline (``HF_HUB_OFFLINE=1``) or no connection to the Hub, and the files are not in the local cache."""


# Kept for callers that name the "no ticket here" case.
TicketNotFoundError = HubFileNotFoundError


def hub_error(
    error: BaseException,
    repo_id: str,
    *,
    files: Sequence[str] = (),
    revision: str | None = None,
    subfolder: str | None = None,
    what: str = "hf-lottery ticket",
    missing: str | None = None,
) -> Exception | None:
    """The clear error (not raised) for a huggingface_hub `error`, or None when it is none of the known ones.

    The order of the checks matters: LocalEntryNotFoundError subclasses EntryNotFoundError (an offline look-up must
    not read as "the repo has no such file"; `download_files` shows that message), and GatedRepoError subclasses
    RepositoryNotFoundError.
    """
    names = ", ".join(files) or "the files"
    if isinstance(error, (hub_errors.OfflineModeIsEnabled, hub_errors.LocalEntryNotFoundError, httpx2.TransportError)):
        if constants.HF_HUB_OFFLINE:
            reason, hint = "offline mode is on (HF_HUB_OFFLINE=1)", "Unset HF_HUB_OFFLINE"
        else:
            reason = f"offline / no connection to the Hub ({constants.ENDPOINT})"
            hint = "Check the network (or a proxy)"
        return HubConnectionError(
            f"Could not download {names} of {repo_id!r}: {reason}, and the local cache does not hold "
            f"{'it' if len(files) == 1 else 'them'}. {hint}, or download once while online. (No local folder "
            f"{repo_id!r} exists either: if you meant a path, check it for typos.)"
        )
    if isinstance(error, hub_errors.GatedRepoError):
        return HubAccessError(
            f"Hub repository {repo_id!r} is gated: accept its conditions on its Hub page, then pass `token=` (or log "
            "in with `hf auth login`)."
        )
    if isinstance(error, hub_errors.RepositoryNotFoundError):
        return HubFileNotFoundError(
            f"{repo_id!r} is not a local folder and no Hub repository of that name is visible (check the name, or "
            "pass `token=` for a private repo)."
        )
    if isinstance(error, hub_errors.RevisionNotFoundError):
        return HubFileNotFoundError(
            f"Hub repository {repo_id!r} has no revision {revision!r} (a branch, tag or commit id)."
        )
    if isinstance(error, hub_errors.EntryNotFoundError):
        missing = missing or (files[0] if files else "such file")
        where = f" in {subfolder}/" if subfolder else ""
        return HubFileNotFoundError(
            f"Hub repository {repo_id!r} has no {missing}{where}: it holds no {what} (expected {names}{where})."
        )
    if isinstance(error, hub_errors.HfHubHTTPError):
        return HubConnectionError(f"The Hub refused the download of {names} from {repo_id!r}: {_short(error)}")
    return None


def _short(error: BaseException) -> str:
    return str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__


def _raise_clear(error: BaseException, repo_id: str, **context: Any) -> NoReturn:
    clear = hub_error(error, repo_id, **context)
    if clear is None:
        raise error
    raise clear from error


def check_subfolder(subfolder: str | None) -> str | None:
    """`subfolder` (slashes stripped) when it is a folder inside the repo or folder, else a `ValueError` naming it."""
    if subfolder and (os.path.isabs(subfolder) or ".." in subfolder.replace("\\", "/").split("/")):
        raise ValueError(
            f"`subfolder` {subfolder!r} must be a folder inside the repo or folder: no '..' parts, no absolute path."
        )
    return subfolder.strip("/") or None if subfolder else None


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

    A `snapshot` limited to `filenames` (inside `subfolder` when given) that also checks each file is there.
    `revision`, `token` (never logged) and `cache_dir` are `snapshot_download`'s; `what` names what the files make
    up, for the "it holds no ..." message.

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
    if not filenames:
        raise ValueError("`filenames` must name at least one file to download.")
    prefix = f"{check_subfolder(subfolder)}/" if subfolder else ""
    patterns = [glob.escape(prefix + name) for name in filenames]  # file names, not patterns
    return snapshot(repo_id, revision=revision, token=token, allow_patterns=patterns, required=filenames,
                    subfolder=subfolder, cache_dir=cache_dir, what=what)  # fmt: skip


def snapshot(
    repo_id: str | os.PathLike,
    *,
    revision: str | None = None,
    token: str | bool | None = None,
    allow_patterns: Sequence[str] | None = None,
    required: Sequence[str] = (),
    subfolder: str | None = None,
    cache_dir: str | os.PathLike | None = None,
    what: str = "a model",
) -> Path:
    """Download a snapshot of Hub repo `repo_id` (only `allow_patterns` when given); return its cached folder.

    `subfolder` (`check_subfolder`) selects the folder returned; `required` names files that must be in it. Errors go
    through `hub_error` (invalid id, missing repo, revision or required file, gated, offline: see `download_files`).
    """
    subfolder = check_subfolder(subfolder)
    context: dict[str, Any] = {"files": list(required), "revision": revision, "subfolder": subfolder, "what": what}
    try:
        repo_id = provenance.check_repo_id(repo_id)
    except ValueError as err:
        raise HubFileNotFoundError(
            f"{os.fspath(repo_id)!r} is neither a local folder nor a valid Hub repo id ('user/name'): the path does "
            f"not exist (check it for typos). As a repo id: {_short(err.__cause__ or err)}"
        ) from err
    try:
        root = snapshot_download(
            repo_id,
            revision=revision,
            token=token,
            allow_patterns=list(allow_patterns) if allow_patterns is not None else None,
            cache_dir=cache_dir,
            local_files_only=bool(constants.HF_HUB_OFFLINE),
        )
    except hub_errors.LocalEntryNotFoundError as err:  # a Hub that answered with an error: name it, not "offline"
        answered = isinstance(err.__cause__, hub_errors.HfHubHTTPError)
        _raise_clear(err.__cause__ if answered else err, repo_id, **context)
    except Exception as err:
        _raise_clear(err, repo_id, **context)
    folder = Path(root) / subfolder if subfolder else Path(root)
    missing = [name for name in required if not (folder / name).is_file()]
    if missing:  # snapshot_download does not raise when a pattern matches nothing
        try:  # the repo's file list (read just now, or cached with the snapshot) lacks it: the Hub has no such file
            get_cached_repo_tree(repo_id, revision=revision, cache_dir=cache_dir)
            error: Exception = hub_errors.EntryNotFoundError(missing[0])
        except hub_errors.CachedRepoTreeNotFoundError:  # a cached snapshot without a file list: offline, not "missing"
            error = hub_errors.LocalEntryNotFoundError(missing[0])
        _raise_clear(error, repo_id, missing=missing[0], **context)
    return folder
