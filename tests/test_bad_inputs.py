"""Bad inputs a careless or hostile user gives, each answered by a clear error (or, when legal, exact behaviour).

The cases live in `tests/bad_inputs/<area>.py` (``CASES`` lists); this file runs them all.
"""

from __future__ import annotations

import importlib
import pkgutil

import pytest

import tests.bad_inputs as tables


def _all_cases():
    cases = []
    for info in sorted(pkgutil.iter_modules(tables.__path__), key=lambda i: i.name):
        cases.extend(importlib.import_module(f"{tables.__name__}.{info.name}").CASES)
    return cases


CASES = _all_cases()


def test_case_ids_are_unique():
    ids = [case.id for case in CASES]
    assert len(ids) == len(set(ids)), sorted({i for i in ids if ids.count(i) > 1})


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_bad_input(case, tmp_path):
    if case.raises is None:
        case.call(tmp_path)
        return
    with pytest.raises(case.raises) as info:
        case.call(tmp_path)
    if case.match is not None:
        import re

        assert re.search(case.match, str(info.value)), f"{case.id}: message {str(info.value)!r} !~ {case.match!r}"
