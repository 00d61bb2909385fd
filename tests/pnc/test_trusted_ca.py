"""trusted_ca_keys (RFC 6066) on stdlib ssl contexts: the EVCC names its V2G roots, the
SECC serves the chain that ends at one of them, else its default chain."""
import pytest

from exi.v2g import tls
from exi.v2g.pki import create_pki, write_pki
from exi.v2g.security import trusted_ca

from .test_stapling import _handshake


@pytest.fixture(scope="module")
def two(pki, tmp_path_factory):
    other = create_pki("iso2", ocsp_url=None)
    folders = []
    for p in (pki, other):
        d = tmp_path_factory.mktemp("pki")
        write_pki(p, d)
        folders.append(d)
    return [pki, other], folders


def secc(folder):
    return tls.secc_context("iso2", folder / "certs" / "seccChain.pem",
                            folder / "private_keys" / "seccLeaf.key")


def test_wire_format_round_trip_and_refusals(pki):
    root = pki.certs["v2gRootCA"]
    data = trusted_ca.encode([root, pki.certs["moRootCA"]])
    items = trusted_ca.parse(data)
    assert [k for k, _ in items] == [3, 3] and trusted_ca.matches(items, root)
    assert trusted_ca.matches([(2, root.subject.public_bytes())], root)
    assert not trusted_ca.matches(items[1:], root)
    for bad in (b"", b"\x00\x05\x03", b"\x00\x01\x09", b"\x00\x03\x02\x00\x00"):
        with pytest.raises(ValueError):
            trusted_ca.parse(bad)


def test_secc_serves_the_chain_the_evcc_trusts(two):
    (pa, pb), (fa, fb) = two
    chosen = []
    default, alternative = secc(fa), secc(fb)
    trusted_ca.select_chain(default, [(default, pa.certs["v2gRootCA"]),
                                      (alternative, pb.certs["v2gRootCA"])], chosen.append)
    # an EVCC that trusts only root B and says so gets chain B
    evcc = tls.evcc_context("iso2", fb / "certs" / "v2gRootCA.pem")
    trusted_ca.send(evcc, [pb.certs["v2gRootCA"]])
    assert _handshake(default, evcc)["client"] == b"ok"
    assert chosen[-1] == pb.certs["v2gRootCA"] and evcc.exi15118_trusted_ca_echoes == 1
    # one naming root A gets chain A
    evcc = tls.evcc_context("iso2", fa / "certs" / "v2gRootCA.pem")
    trusted_ca.send(evcc, [pa.certs["v2gRootCA"]])
    assert _handshake(default, evcc)["client"] == b"ok" and chosen[-1] == pa.certs["v2gRootCA"]
    # a root the SECC has no chain for: the default chain, no acknowledgement
    evcc = tls.evcc_context("iso2", fa / "certs" / "v2gRootCA.pem")
    trusted_ca.send(evcc, [pa.certs["moRootCA"]])
    assert _handshake(default, evcc)["client"] == b"ok"
    assert chosen[-1] is None and evcc.exi15118_trusted_ca_echoes == 0
    # without the extension: the default chain, which an EVCC trusting B refuses
    evcc = tls.evcc_context("iso2", fb / "certs" / "v2gRootCA.pem")
    assert "CERTIFICATE_VERIFY_FAILED" in _handshake(default, evcc)["client"]
    assert chosen[-1] is None
