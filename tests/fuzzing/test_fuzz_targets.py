"""The fuzz targets of fuzz/ in the default test run, so a regression fails the build:
compiled build: every target replays its whole corpus (seeds and the regression inputs of
fixed findings) and then fuzzes for a short budget; pure-Python build (about a hundred
times slower per input): every corpus replayed.  Fuzzing the pure build, and the long
campaign, are documented commands (fuzz/README.md)."""
from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
from fuzz.run import NAMES, corpus_files  # noqa: E402
from fuzz.targets import TARGETS  # noqa: E402

BUILDS = {"compiled": {"EXI_REQUIRE_EXTENSIONS": "1"}, "pure": {"EXI_NO_EXTENSIONS": "1"}}
COMPILED_SECONDS = 1          # per target, after its corpus


def _run(args, build):
    env = {k: v for k, v in os.environ.items() if k not in ("EXI_NO_EXTENSIONS", "EXI_REQUIRE_EXTENSIONS")}
    env.update(BUILDS[build])
    p = subprocess.run([sys.executable, "-m", "fuzz.run", *args], cwd=ROOT, env=env, timeout=600,
                       capture_output=True, text=True)
    return p.returncode, p.stdout + p.stderr


def _fuzz(name, build, work, budget):
    try:
        import atheris  # noqa: F401
    except ImportError:
        pytest.fail("the fuzz targets need atheris: pip install atheris (it is in the test extras)")
    rc, out = _run([name, *budget, "--work", str(work), "--", f"-artifact_prefix={work}/"], build)
    assert rc == 0, out[-4000:]
    assert "INITED" in out and "Done" in out, out[-3000:]
    return int(re.search(r"stat::number_of_executed_units: (\d+)", out).group(1))


@pytest.mark.parametrize("name", NAMES)
def test_compiled_corpus_and_short_run_find_nothing(name, tmp_path):
    executed = _fuzz(name, "compiled", tmp_path, ["--seconds", str(COMPILED_SECONDS)])
    assert executed >= len(corpus_files(name))


def test_pure_corpus_replays_without_findings():
    rc, out = _run(["all", "--replay"], "pure")
    assert rc == 0, out[-4000:]
    for name in NAMES:
        assert f"== {name}: exit 0" in out and f"{name}: {len(corpus_files(name))} inputs replayed (pure)" in out


def test_every_target_has_a_small_corpus():
    assert NAMES == tuple(sorted(TARGETS))
    for name in NAMES:
        assert len(corpus_files(name)) >= 5, name
    total = sum(p.stat().st_size for p in (ROOT / "fuzz" / "corpus").rglob("*") if p.is_file())
    assert total < 400_000, f"the committed corpus grew to {total} bytes"
