"""The one place that chooses the implementation of the capture package's hot modules.

exi/capture/{_codec,_net,_tcp,_v2gtp,_pcap,reader}.py are Cython pure-Python-mode sources
that an install compiles (setup.py HOT_MODULES), like the codec engine.  The switches of
exi._impl apply here too: EXI_NO_EXTENSIONS=1 loads the .py sources instead, so one test
suite covers both paths; EXI_REQUIRE_EXTENSIONS=1 makes a missing extension an ImportError.
"""
import importlib.machinery
import importlib.util
import os
import sys
from pathlib import Path

HOT_MODULES = ("_codec", "_net", "_tcp", "_v2gtp", "_pcap", "reader")   # in dependency order


def _load_sources() -> None:
    here = Path(__file__).parent
    package = sys.modules[__package__]
    for name in HOT_MODULES:
        full = f"{__package__}.{name}"
        loader = importlib.machinery.SourceFileLoader(full, str(here / f"{name}.py"))
        spec = importlib.util.spec_from_loader(full, loader)
        module = importlib.util.module_from_spec(spec)
        sys.modules[full] = module
        loader.exec_module(module)
        setattr(package, name, module)


if os.environ.get("EXI_NO_EXTENSIONS"):
    _load_sources()
    IMPLEMENTATION = "python"
else:
    _pure = [name for name in HOT_MODULES
             if importlib.import_module(f"{__package__}.{name}").__file__.endswith(".py")]
    IMPLEMENTATION = "python" if _pure else "compiled"
    if _pure and os.environ.get("EXI_REQUIRE_EXTENSIONS"):
        raise ImportError(f"EXI_REQUIRE_EXTENSIONS is set but exi.capture.{_pure[0]} is not compiled "
                          "(reinstall with Cython available: pip install --force-reinstall .)")
