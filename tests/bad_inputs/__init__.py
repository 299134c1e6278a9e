"""Tables of bad inputs, one module per area; `tests/test_bad_inputs.py` runs them all.

Each module defines ``CASES``: a list of `BadInput`. A case either expects an exception (`raises` + `match`, a
regular expression that names what was expected) or, for an input that is legal, checks the exact behaviour inside
`call` and sets ``raises=None``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


@dataclass
class BadInput:
    id: str  # short, unique, e.g. "ticket-format-version-zero"
    area: str  # tickets | models | data | pipeline | compaction | hub | search | training
    call: Callable[[Any], Any]  # receives pytest's tmp_path
    raises: type[BaseException] | tuple[type[BaseException], ...] | None
    match: str | None = None  # regex the message must match (names the field / file / expected value)
