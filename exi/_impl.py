"""The one place that chooses the implementation of the hot modules.

exi/_bits.py, exi/_grammar.py, exi/_engine.py, exi/_convert.py (and the capture package's
hot modules, see exi/capture/_impl.py) are Cython pure-Python-mode sources; an install compiles them into
extension modules that Python imports in their place.  EXI_NO_EXTENSIONS=1 makes this
module load the .py sources instead (for debugging, and so one test suite covers both
paths); EXI_REQUIRE_EXTENSIONS=1 makes a missing extension an ImportError, so a build
that silently fell back to Python fails its tests.
"""
import importlib
import importlib.machinery
import importlib.util
import os
import sys
from pathlib import Path

HOT_MODULES = ("_bits", "_grammar", "_engine", "_convert")   # in dependency order


def _load_sources(package: str, directory: Path, modules) -> None:
    for name in modules:
        full = f"{package}.{name}"
        loader = importlib.machinery.SourceFileLoader(full, str(directory / f"{name}.py"))
        spec = importlib.util.spec_from_loader(full, loader)
        module = importlib.util.module_from_spec(spec)
        sys.modules[full] = module
        loader.exec_module(module)
        setattr(sys.modules[package], name, module)


def _ensure_cython_shadow() -> None:
    """The uncompiled sources `import cython`: without Cython installed, a stand-in."""
    try:
        import cython  # noqa: F401
    except ImportError:
        from . import _cython_shim
        sys.modules["cython"] = _cython_shim


def choose(package: str, directory: Path, modules) -> str:
    """Import a package's hot modules (in dependency order) as the switches say;
    "compiled" or "python"."""
    _ensure_cython_shadow()
    if os.environ.get("EXI_NO_EXTENSIONS"):
        _load_sources(package, directory, modules)
        return "python"
    pure = [name for name in modules if importlib.import_module(f"{package}.{name}").__file__.endswith(".py")]
    if pure and os.environ.get("EXI_REQUIRE_EXTENSIONS"):
        raise ImportError(f"EXI_REQUIRE_EXTENSIONS is set but {package}.{pure[0]} is not compiled "
                          "(reinstall with Cython available: pip install --force-reinstall .)")
    return "python" if pure else "compiled"


IMPLEMENTATION = choose(__package__, Path(__file__).parent, HOT_MODULES)
