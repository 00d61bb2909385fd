"""The one place that chooses the implementation of the hot modules.

exi/_bits.py and exi/_engine.py are Cython pure-Python-mode sources; an install compiles
them into extension modules that Python imports in their place.  EXI_NO_EXTENSIONS=1
makes this module load the .py sources instead (for debugging, and so one test suite
covers both paths); EXI_REQUIRE_EXTENSIONS=1 makes a missing extension an ImportError,
so a build that silently fell back to Python fails its tests.
"""
import importlib.machinery
import importlib.util
import os
import sys
from pathlib import Path

HOT_MODULES = ("_bits", "_engine")   # in dependency order


def _load_sources() -> None:
    here = Path(__file__).parent
    for name in HOT_MODULES:
        full = f"{__package__}.{name}"
        loader = importlib.machinery.SourceFileLoader(full, str(here / f"{name}.py"))
        spec = importlib.util.spec_from_loader(full, loader)
        module = importlib.util.module_from_spec(spec)
        sys.modules[full] = module
        loader.exec_module(module)
        setattr(sys.modules[__package__], name, module)


if os.environ.get("EXI_NO_EXTENSIONS"):
    _load_sources()
    IMPLEMENTATION = "python"
else:
    from . import _engine
    IMPLEMENTATION = "compiled" if not _engine.__file__.endswith(".py") else "python"
    if IMPLEMENTATION == "python" and os.environ.get("EXI_REQUIRE_EXTENSIONS"):
        raise ImportError("EXI_REQUIRE_EXTENSIONS is set but the compiled exi._engine is missing "
                          "(reinstall with Cython available: pip install --force-reinstall .)")
