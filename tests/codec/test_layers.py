"""The codec core is layered: every import points down (issue 13, item 5).

Read from the sources' import statements (module level and inside functions alike), so a
lazy `from . import _api` inside the engine fails here as surely as one at the top.
"""
from __future__ import annotations

import ast
from pathlib import Path

import exi

EXI = Path(exi.__file__).resolve().parent

# lowest first; a module may import from its own layer only where ALLOWED_SIDEWAYS says so
LAYERS = [
    ("foundations", {"_kinds", "errors", "message", "registry"}),
    ("bits", {"_bits"}),
    ("grammar model", {"_grammar"}),
    ("engine: the interpreter", {"_engine"}),
    ("schema loader", {"_schema"}),
    ("generic content, fragments, ordered children", {"_generic", "_fragment", "_content"}),
    ("conversions", {"_convert"}),
    ("public API", {"_api"}),
]
ALLOWED_SIDEWAYS = {("_content", "_generic")}
LAYER_OF = {m: i for i, (_, mods) in enumerate(LAYERS) for m in mods}


def imported_core_modules(module: str) -> set:
    """The exi.<name> modules that exi/<module>.py imports, anywhere in the file."""
    tree = ast.parse((EXI / f"{module}.py").read_text(encoding="utf-8"))
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.level == 1:
            if node.module:                                 # from ._engine import x
                out.add(node.module.split(".")[0])
            else:                                           # from . import _engine, _generic
                out.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("exi."):
            out.add(node.module.split(".")[1])
        elif isinstance(node, ast.Import):
            out.update(a.name.split(".")[1] for a in node.names if a.name.startswith("exi."))
    return {m for m in out if m in LAYER_OF}


def test_every_import_of_the_core_points_down():
    wrong = []
    for module, layer in LAYER_OF.items():
        for dep in imported_core_modules(module):
            if dep == module:
                continue
            if LAYER_OF[dep] > layer or (LAYER_OF[dep] == layer and (module, dep) not in ALLOWED_SIDEWAYS):
                wrong.append(f"{module} ({LAYERS[layer][0]}) imports {dep} ({LAYERS[LAYER_OF[dep]][0]})")
    assert not wrong, wrong


def test_the_check_sees_lazy_imports():
    assert "_engine" in imported_core_modules("_generic")
    assert imported_core_modules("_grammar") <= {"_kinds"}         # bits and engine: neither
    assert {"_content", "_engine", "_fragment", "_generic", "_convert", "_schema"} <= imported_core_modules("_api")


def test_upper_layers_are_registered_with_the_engine():
    from exi import _api, _content, _engine, _fragment, _generic, _schema
    assert _engine._generic is _generic and _engine._fragment is _fragment and _engine._content is _content
    assert _engine._load_schema is _schema.get_schema and _engine._encode_other is _api.encode_other
    # and they do their work through it: a simple-typed root (encode_other), a fragment
    value = exi.ElementValue("DigestValue", b"\x01", "iso2")
    assert exi.decode(exi.encode(value), "iso2", any_root=True).value == b"\x01"
