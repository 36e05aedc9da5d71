"""One check that a warning names its caller's line (``stacklevel``), also under mutmut."""

from __future__ import annotations

import os


def assert_points_at(warning, test_file: str, library_file: str | tuple[str, ...]) -> None:
    """``warning`` (a ``warnings.WarningMessage``) was attributed to ``test_file``, the test that
    called the library, and not to ``library_file`` (a path suffix such as ``"clipping.py"``, or
    a tuple of them).

    Under mutmut (``MUTANT_UNDER_TEST`` set) a trampoline frame sits between the test and the
    mutated function, so there only "not inside the library file" can be checked."""
    assert not warning.filename.endswith(library_file), warning.filename
    if "MUTANT_UNDER_TEST" not in os.environ:
        assert warning.filename == test_file, (warning.filename, str(warning.message))
