"""Both implementations of the capture package's hot modules (exi/capture/_impl.py): the
compiled extensions (mandatory under EXI_REQUIRE_EXTENSIONS=1) and the pure-Python sources
(EXI_NO_EXTENSIONS=1), which run the capture tests again in a subprocess."""
import importlib
import os
import subprocess
import sys

import exi.capture
from exi.capture import _impl

from .conftest import REPO

PURE_SELECTION = ["tests/capture/test_layers.py", "tests/capture/test_decode.py",
                  "tests/capture/test_implementation.py::test_loaded_implementation"]


def _files():
    return {name: importlib.import_module(f"exi.capture.{name}").__file__ for name in _impl.HOT_MODULES}


def test_loaded_implementation():
    files = _files()
    if os.environ.get("EXI_NO_EXTENSIONS"):
        assert exi.capture.IMPLEMENTATION == "python"
        assert all(f.endswith(".py") for f in files.values()), files
    elif os.environ.get("EXI_REQUIRE_EXTENSIONS"):
        assert exi.capture.IMPLEMENTATION == "compiled"
        assert not any(f.endswith(".py") for f in files.values()), files
    assert (exi.capture.IMPLEMENTATION == "compiled") == (not any(f.endswith(".py") for f in files.values()))


def test_pure_python_implementation():
    env = dict(os.environ, EXI_NO_EXTENSIONS="1")
    env.pop("EXI_REQUIRE_EXTENSIONS", None)
    run = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *PURE_SELECTION],
                         env=env, cwd=REPO, capture_output=True, text=True, timeout=600)
    tail = run.stdout[-6000:]
    assert run.returncode == 0, f"pure-Python run failed:\n{tail}\n{run.stderr[-2000:]}"
    assert " passed" in tail and " skipped" not in tail
