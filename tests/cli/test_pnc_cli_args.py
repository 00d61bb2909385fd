"""`exi15118 secc --pnc` and `exi15118 evcc --payment contract`: what they refuse before
touching the network, in the CLI's one error style (the sessions themselves:
tests/pnc/test_pnc_cli_netns.py)."""
import pytest

from exi.v2g.pki import create_pki, write_pki

from .conftest import assert_clean


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    d = tmp_path_factory.mktemp("pki")
    write_pki(create_pki("iso2", ocsp_url=None), d)
    return d


def test_evcc_contract_payment_usage(cli, folder, tmp_path):
    base = ("evcc", "-i", "lo", "--mode", "ac")
    cases = [
        ((*base, "--protocol", "iso2", "--install"), "--install/--update/--require-ocsp go with --payment contract"),
        ((*base, "--protocol", "iso2", "--payment", "contract"), "--payment contract needs --pki DIR"),
        (("evcc", "-i", "lo", "--mode", "dc", "--protocol", "din", "--payment", "contract", "--pki",
          folder), "--payment contract is ISO 15118-2 Plug & Charge"),
    ]
    for argv, message in cases:
        r = cli(*argv)
        assert r.code == 2 and message in r.err, (argv, r.err)
        assert_clean(r.err)
    empty = tmp_path / "nocontract"
    write_pki(create_pki("iso2", ocsp_url=None), empty)
    (empty / "certs" / "contractChain.pem").unlink()
    r = cli(*base, "--protocol", "iso2", "--payment", "contract", "--pki", empty, "--update")
    assert r.code == 2 and "--update needs a contract" in r.err, r.err
    (empty / "private_keys" / "oemProvLeaf.key").unlink()       # nothing to install with either
    r = cli(*base, "--protocol", "iso2", "--payment", "contract", "--pki", empty)
    assert r.code == 2 and "private_keys/oemProvLeaf.key is missing" in r.err, r.err
    r = cli(*base, "--protocol", "iso2", "--install", "--update", "--payment", "contract")
    assert r.code == 2 and "not allowed with argument" in r.err


def test_secc_pnc_usage(cli, folder, tmp_path):
    r = cli("secc", "-i", "lo", "--pnc")
    assert r.code == 2 and "--pnc needs --pki DIR" in r.err
    r = cli("secc", "-i", "lo", "--pnc", "--pki", folder, "--protocols", "din")
    assert r.code == 2 and "add iso2 to --protocols" in r.err
    partial = tmp_path / "partial"
    write_pki(create_pki("iso2", ocsp_url=None), partial)
    (partial / "private_keys" / "moSubCA2.key").unlink()
    r = cli("secc", "-i", "lo", "--pnc", "--pki", partial)
    assert r.code == 2 and "private_keys/moSubCA2.key is missing" in r.err
    assert_clean(r.err)
