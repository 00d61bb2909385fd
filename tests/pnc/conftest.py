"""Fixtures of the Plug & Charge tests: one -2 test PKI per module, a local backend."""
import json
from pathlib import Path

import pytest

from exi.v2g.pki import create_pki

DATA = Path(__file__).resolve().parent / "data"


def load_jsonl(name: str) -> list:
    with open(DATA / name, encoding="utf-8") as fh:
        return [json.loads(line) for line in fh]


@pytest.fixture(scope="module")
def pki():
    # no AIA URL: tests run their responders on ephemeral ports
    return create_pki("iso2", ocsp_url=None)


@pytest.fixture
def backend(pki):
    from exi.v2g.backend import LocalBackend
    return LocalBackend(pki)
