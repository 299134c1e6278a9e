"""Fetching ticket files from the Hugging Face Hub (used when a path is not a local folder)."""

from __future__ import annotations

from pathlib import Path

from .ticket import TICKET_CONFIG_NAME, TICKET_MASKS_NAME


class TicketNotFoundError(FileNotFoundError):
    """Neither a local ticket folder nor a Hub repository with ticket files."""


def download_ticket_files(
    repo_id: str,
    *,
    revision: str | None = None,
    token: str | bool | None = None,
    subfolder: str | None = None,
    cache_dir: str | None = None,
    local_files_only: bool = False,
) -> tuple[Path, Path]:
    """Download ``ticket_config.json`` and ``ticket_masks.safetensors`` of `repo_id` (cached by huggingface_hub)."""
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import (
        EntryNotFoundError,
        HfHubHTTPError,
        LocalEntryNotFoundError,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )
    from huggingface_hub.utils import validate_repo_id

    try:
        validate_repo_id(repo_id)
    except Exception as err:  # HFValidationError subclasses ValueError in some versions only
        raise TicketNotFoundError(
            f"{repo_id!r} is neither a local ticket folder nor a valid Hub repo id ('user/name')."
        ) from err
    paths = []
    for filename in (TICKET_CONFIG_NAME, TICKET_MASKS_NAME):
        try:
            paths.append(
                Path(
                    hf_hub_download(
                        repo_id,
                        filename,
                        subfolder=subfolder or None,
                        revision=revision,
                        token=token,
                        cache_dir=cache_dir,
                        local_files_only=local_files_only,
                    )
                )
            )
        except RepositoryNotFoundError as err:
            raise TicketNotFoundError(
                f"{repo_id!r} is not a local folder and no Hub repository of that name is visible "
                "(check the name, or pass `token=` for a private repo)."
            ) from err
        except RevisionNotFoundError as err:
            raise TicketNotFoundError(f"Hub repository {repo_id!r} has no revision {revision!r}.") from err
        except EntryNotFoundError as err:
            raise TicketNotFoundError(
                f"Hub repository {repo_id!r} has no {filename}: it holds no hf-lottery ticket "
                f"(expected {TICKET_CONFIG_NAME} and {TICKET_MASKS_NAME}"
                f"{' in ' + subfolder if subfolder else ''})."
            ) from err
        except LocalEntryNotFoundError as err:
            raise ConnectionError(
                f"Could not download {filename} of {repo_id!r}: the Hub is unreachable and the file is not cached "
                "(offline mode or network failure). Nothing local was changed."
            ) from err
        except HfHubHTTPError as err:
            raise ConnectionError(f"The Hub refused the download of {filename} from {repo_id!r}: {err}") from err
    return paths[0], paths[1]
