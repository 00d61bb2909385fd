"""Test-wide hooks needed by the codec tests (other folders have their own conftest.py)."""
from __future__ import annotations

import pytest


def pytest_collection_modifyitems(config, items):
    # An exception raised inside compiled (Cython cdef) code that cannot propagate is only
    # printed as "Exception ignored in ..." (sys.unraisablehook).  In the codec tests that
    # is a failure, not a warning.
    for item in items:
        if "/tests/codec/" in str(item.path).replace("\\", "/"):
            item.add_marker(pytest.mark.filterwarnings("error::pytest.PytestUnraisableExceptionWarning"))
