"""The fuzz targets of fuzz/ in the default test run, on the compiled and the pure build:
each run first replays the target's whole corpus (seeds and the regression inputs of
fixed findings), then fuzzes for a short budget, so a regression fails the build.  The
long campaign is `python -m fuzz.run all --seconds N` (fuzz/README.md)."""
from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
from fuzz.run import corpus_files  # noqa: E402
from fuzz.run import NAMES  # noqa: E402
from fuzz.targets import TARGETS  # noqa: E402

BUILDS = {"compiled": {"EXI_REQUIRE_EXTENSIONS": "1"}, "pure": {"EXI_NO_EXTENSIONS": "1"}}
COMPILED_SECONDS = 3          # per target, after the corpus
PURE_RUNS = 30                # new inputs per target after the corpus (~100x slower per input)


def _fuzz(name, build, work):
    try:
        import atheris  # noqa: F401
    except ImportError:
        pytest.fail("the fuzz targets need atheris: pip install atheris (it is in the test extras)")
    env = {k: v for k, v in os.environ.items() if k not in ("EXI_NO_EXTENSIONS", "EXI_REQUIRE_EXTENSIONS")}
    env.update(BUILDS[build])
    budget = (["--seconds", str(COMPILED_SECONDS)] if build == "compiled"
              else ["--runs", str(len(corpus_files(name)) + PURE_RUNS)])
    p = subprocess.run([sys.executable, "-m", "fuzz.run", name, *budget, "--work", str(work),
                        "--", f"-artifact_prefix={work}/"],
                       cwd=ROOT, env=env, timeout=300, capture_output=True, text=True)
    return p.returncode, p.stdout + p.stderr


@pytest.mark.parametrize("build", BUILDS)
@pytest.mark.parametrize("name", sorted(TARGETS))
def test_corpus_and_a_short_fuzz_run_find_nothing(name, build, tmp_path):
    rc, out = _fuzz(name, build, tmp_path)
    assert rc == 0, out[-4000:]
    assert "INITED" in out and "Done" in out, out[-3000:]
    executed = int(re.search(r"stat::number_of_executed_units: (\d+)", out).group(1))
    assert executed >= len(corpus_files(name)), out[-3000:]


def test_every_target_has_a_small_corpus():
    for name in TARGETS:
        assert len(corpus_files(name)) >= 5, name
    total = sum(p.stat().st_size for p in (ROOT / "fuzz" / "corpus").rglob("*") if p.is_file())
    assert total < 400_000, f"the committed corpus grew to {total} bytes"


def test_the_runner_lists_every_target():
    assert NAMES == tuple(sorted(TARGETS))
