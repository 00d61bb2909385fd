"""How much of the randomised and peer-checked work the test run does.

The default run keeps the suite within its time budget on 2 cores; ``EXI15118_THOROUGH=1``
runs the long form (more generated documents per message type, every shared vector through
the Java peer).  Both run the same assertions; only the number of inputs differs.
"""
from __future__ import annotations

import os

THOROUGH = os.environ.get("EXI15118_THOROUGH", "") not in ("", "0")


def scaled(default: int, thorough: int) -> int:
    """``default`` inputs in the normal run, ``thorough`` with EXI15118_THOROUGH=1."""
    return thorough if THOROUGH else default
