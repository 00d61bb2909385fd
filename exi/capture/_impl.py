"""Chooses the implementation of the capture package's hot modules.

exi/capture/{_codec,_net,_tcp,_v2gtp,_pcap,reader}.py are Cython pure-Python-mode sources
that an install compiles (setup.py HOT_MODULES), like the codec engine; the switches of
exi._impl (EXI_NO_EXTENSIONS, EXI_REQUIRE_EXTENSIONS) apply to them the same way.
"""
from pathlib import Path

from .._impl import choose

HOT_MODULES = ("_codec", "_net", "_tcp", "_v2gtp", "_pcap", "reader")   # in dependency order
IMPLEMENTATION = choose(__package__, Path(__file__).parent, HOT_MODULES)
