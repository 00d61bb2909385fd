"""Build switches for the Cython extension modules.

The hot modules are written in Cython's pure-Python mode (`.py` + `.pxd`): they are
compiled here and the same source also runs as plain Python.
- EXI_NO_EXTENSIONS=1 at build time: build no extension (a pure-Python install);
- EXI_REQUIRE_EXTENSIONS=1: fail the build instead of falling back when compiling fails.
"""
import os
import sys

from setuptools import setup

HOT_MODULES = ["exi/_bits.py", "exi/_grammar.py", "exi/_engine.py", "exi/_convert.py",
               "exi/capture/_codec.py", "exi/capture/_net.py", "exi/capture/_tcp.py",
               "exi/capture/_v2gtp.py", "exi/capture/_pcap.py", "exi/capture/reader.py"]


def extensions():
    if os.environ.get("EXI_NO_EXTENSIONS"):
        return []
    try:
        from Cython.Build import cythonize
    except ImportError:
        if os.environ.get("EXI_REQUIRE_EXTENSIONS"):
            raise
        print("Cython not available: installing the pure-Python codec", file=sys.stderr)
        return []
    return cythonize(HOT_MODULES, language_level=3, compiler_directives={
        "boundscheck": False, "wraparound": False, "cdivision": True,
        "initializedcheck": False, "embedsignature": True})


setup(ext_modules=extensions())
