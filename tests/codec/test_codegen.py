"""The committed generated files are exactly what `python -m codegen` writes today."""
from __future__ import annotations

import filecmp
import subprocess
import sys

import pytest

from ._support import REPO

GENERATED = ("_tables", "messages")


def test_regenerated_files_are_identical(tmp_path):
    try:
        import xmlschema  # noqa: F401 - codegen needs it
    except ImportError:
        pytest.fail("the codegen test needs xmlschema: pip install 'xmlschema>=3' (or .[test])")
    run = subprocess.run([sys.executable, "-m", "codegen", "--out", str(tmp_path)], cwd=REPO,
                         capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    for sub in GENERATED:
        new_dir, old_dir = tmp_path / sub, REPO / "exi" / sub
        new = sorted(p.name for p in new_dir.iterdir() if p.is_file())
        old = sorted(p.name for p in old_dir.iterdir() if p.is_file() and p.name != "__init__.py"
                     and p.suffix in (".py", ".json"))
        assert new, f"codegen wrote nothing into {sub}/"
        assert new == old, f"{sub}/: generated {new}, committed {old}"
        _, mismatch, errors = filecmp.cmpfiles(new_dir, old_dir, new, shallow=False)
        assert not mismatch and not errors, \
            f"{sub}/ differs from `python -m codegen` output: {mismatch + errors} (regenerate and commit)"
