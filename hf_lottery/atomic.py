"""Atomic file writes: write to a temporary name in the same folder, fsync, then rename over the target.

A reader never sees a half-written file: it sees the old one or the new one.

Example:

```python
>>> import tempfile
>>> from pathlib import Path
>>> target = Path(tempfile.mkdtemp()) / "result.json"
>>> write_json(target, {"b": 1, "a": [1, 2]})
>>> print(target.read_text(), end="")
{
  "a": [
    1,
    2
  ],
  "b": 1
}

```
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any


def inside(folder: str | os.PathLike, *parts: str | int) -> Path:
    """``folder/parts``; a `ValueError` when a symlink on the way leads out of `folder` (hf-lottery writes only inside
    the folder it was given)."""
    path = Path(folder).joinpath(*map(str, parts))
    if not path.resolve().is_relative_to(Path(folder).resolve()):
        raise ValueError(
            f"{path} leads out of {folder} through a symlink (to {path.resolve()}); hf-lottery writes only inside "
            "the folder it was given: remove the link or choose another folder."
        )
    return path


def no_links_out(folder: str | os.PathLike) -> Path:
    """`folder`, once no entry in it is a symlink leading out of it (a library's ``save_pretrained`` writes through
    links); a `ValueError` as `inside` raises otherwise."""
    for entry in Path(folder).iterdir() if Path(folder).is_dir() else ():
        inside(folder, entry.name)
    return Path(folder)


@contextlib.contextmanager
def atomic_path(target: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path next to `target`; on success it is renamed to `target`, on error it is deleted.

    Example:

    ```python
    >>> import tempfile
    >>> from pathlib import Path
    >>> target = Path(tempfile.mkdtemp()) / "weights.bin"
    >>> with atomic_path(target) as tmp:
    ...     _ = tmp.write_bytes(b"\\x00\\x01")
    >>> target.read_bytes(), sorted(p.name for p in target.parent.iterdir())
    (b'\\x00\\x01', ['weights.bin'])

    ```
    """
    target = inside(Path(target).parent, Path(target).name)  # never onto a symlink that leaves the folder
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp_path = target.parent / f".{target.name}.{secrets.token_hex(8)}.tmp"
    os.close(os.open(tmp_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))  # the umask of now sets the mode
    try:
        yield tmp_path
        with open(tmp_path, "rb+") as handle:
            os.fsync(handle.fileno())
        os.replace(tmp_path, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp_path.unlink()
        raise


def write_bytes(target: str | os.PathLike, data: bytes) -> None:
    """Write `data` to `target` atomically.

    Example:

    ```python
    >>> import tempfile
    >>> from pathlib import Path
    >>> target = Path(tempfile.mkdtemp()) / "blob"
    >>> write_bytes(target, b"abc")
    >>> target.read_bytes()
    b'abc'

    ```
    """
    with atomic_path(target) as tmp:
        tmp.write_bytes(data)


def write_text(target: str | os.PathLike, text: str) -> None:
    """Write UTF-8 `text` to `target` atomically (`write_bytes`)."""
    write_bytes(target, text.encode("utf-8"))


def write_json(target: str | os.PathLike, data: Any) -> None:
    """Write sorted, indented JSON atomically.

    Example:

    ```python
    >>> import json, tempfile
    >>> from pathlib import Path
    >>> target = Path(tempfile.mkdtemp()) / "run_config.json"
    >>> write_json(target, {"seed": 42, "task": "sst2"})
    >>> json.loads(target.read_text())
    {'seed': 42, 'task': 'sst2'}

    ```
    """
    write_text(target, json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False) + "\n")


def sha256_file(path: str | os.PathLike) -> str:
    """sha256 hex digest of a file, read in 1 MiB chunks.

    Example:

    ```python
    >>> import tempfile
    >>> from pathlib import Path
    >>> target = Path(tempfile.mkdtemp()) / "empty"
    >>> _ = target.write_bytes(b"")
    >>> sha256_file(target)[:16]
    'e3b0c44298fc1c14'

    ```
    """
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()
