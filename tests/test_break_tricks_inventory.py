"""The break-a-trick inventory (tests/break_tricks.py) stays runnable: every entry's edit still
applies to exactly one place of the source, and every test it names exists. (Running the
breaks themselves takes about 50 minutes: ``python tests/break_tricks.py``.)"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
import break_tricks as bt  # noqa: E402

BREAKS = next(
    v for v in vars(bt).values() if isinstance(v, list) and v and isinstance(v[0], bt.Break)
)


@pytest.mark.parametrize("b", BREAKS, ids=lambda b: b.trick)
def test_each_break_applies_to_one_place_and_names_real_tests(b):
    path = bt.ROOT / b.path
    assert path.exists(), f"{b.trick}: {b.path} does not exist (moved? update the entry)"
    assert path.read_text().count(b.old) == 1, f"{b.trick}: the edited text is not unique"
    assert b.new != b.old
    for node in b.tests:
        file, _, name = node.partition("::")
        test_file = bt.ROOT / file
        assert test_file.exists(), f"{b.trick}: {file} does not exist"
        if name:
            func = name.split("[")[0].split("::")[-1]
            assert re.search(rf"def {re.escape(func)}\b", test_file.read_text()), (
                f"{b.trick}: {node} is not a test in {file}"
            )
