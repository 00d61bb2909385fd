"""Test PKI for ISO 15118-2 and ISO 15118-20: every chain the standards use, written
with ``cryptography``.

Chains (each root -> Sub-CA 1 -> Sub-CA 2 -> leaf, as in ISO 15118-2 Annex F / ISO
15118-20 Annex B certificate profiles):

==============  ============================================  ===========================
chain           certificates                                  used for
==============  ============================================  ===========================
V2G / CPO       v2gRootCA, cpoSubCA1, cpoSubCA2, seccLeaf      SECC's TLS server certificate
V2G / CPS       v2gRootCA, cpsSubCA1, cpsSubCA2, cpsLeaf       signing CertificateInstallationRes
OEM             oemRootCA, oemSubCA1, oemSubCA2, oemProvLeaf   provisioning certificate (PnC install)
OEM (-20 only)  ... oemSubCA2, vehicleLeaf                     EVCC's TLS client certificate (mutual TLS)
MO              moRootCA, moSubCA1, moSubCA2, contractLeaf     contract certificate (PnC)
==============  ============================================  ===========================

Profiles: ``iso2`` uses ECDSA on secp256r1 with SHA-256 ([V2G2-006]/[V2G2-007],
2nd-hand); ``iso20`` uses ECDSA on secp521r1 with SHA-512, or Ed448 (``curve="ed448"``).

Extensions: basicConstraints (critical; CA with pathLenConstraint 1 for Sub-CA 1, 0 for
Sub-CA 2, none for roots; CA:false for leaves), keyUsage (critical; keyCertSign+cRLSign
for CAs; digitalSignature(+keyAgreement) for leaves, see ``_LEAF_USAGE``),
subjectKeyIdentifier, authorityKeyIdentifier; subjects carry CN, O, C and the
domainComponent the profiles use to tell the roles apart (V2G, CPO, CPS, OEM, MO).

Validity periods are within the profiles' maxima and follow common test PKIs (root 10
years, Sub-CAs 1-4 years, SECC leaf 60 days, contract 2 years).  They are parameters.
Non-root certificates name an OCSP responder in their AIA (``ocsp_url``, default
``DEFAULT_OCSP_URL``); ``write_pki`` also writes ``ocsp/responder.json`` for it.
DEVIATIONS (test PKI): no CRL distribution points, keys unencrypted
unless a password is given, V2G root validity 10 years instead of the up to 40 the
profile allows.
"""
from __future__ import annotations

import datetime as _dt
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional, Union

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed448
from cryptography.x509.oid import NameOID

__all__ = ["PROFILES", "CURVES", "PKI", "create_pki", "new_key", "issue", "write_pki", "write_pkis",
           "folder_profiles", "profile_folder"]

PROFILES = ("iso2", "iso20")
CURVES = {"iso2": ("p256",), "iso20": ("p521", "ed448")}
PrivateKey = Union[ec.EllipticCurvePrivateKey, ed448.Ed448PrivateKey]

# where `exi15118 pki ocsp` (exi.v2g.security.ocsp) listens by default
DEFAULT_OCSP_URL = "http://127.0.0.1:8015/ocsp"

# days
VALIDITY = {
    "v2gRootCA": 3650, "cpoSubCA1": 1460, "cpoSubCA2": 365, "seccLeaf": 60,
    "cpsSubCA1": 1460, "cpsSubCA2": 730, "cpsLeaf": 90,
    "oemRootCA": 3650, "oemSubCA1": 1460, "oemSubCA2": 1460, "oemProvLeaf": 1460,
    "vehicleLeaf": 1460,
    "moRootCA": 3650, "moSubCA1": 1460, "moSubCA2": 1460, "contractLeaf": 730,
}

# name -> (issuer, CN, domainComponent, kind)   kind: root | sub1 | sub2 | leaf
_LAYOUT: dict[str, tuple[Optional[str], str, str, str]] = {
    "v2gRootCA": (None, "V2GRootCA", "V2G", "root"),
    "cpoSubCA1": ("v2gRootCA", "CPOSubCA1", "V2G", "sub1"),
    "cpoSubCA2": ("cpoSubCA1", "CPOSubCA2", "V2G", "sub2"),
    "seccLeaf": ("cpoSubCA2", "DE*EXI*E15118*1", "CPO", "leaf"),      # CN: an EVSEID
    "cpsSubCA1": ("v2gRootCA", "CPSSubCA1", "CPS", "sub1"),
    "cpsSubCA2": ("cpsSubCA1", "CPSSubCA2", "CPS", "sub2"),
    "cpsLeaf": ("cpsSubCA2", "CPSLeaf", "CPS", "leaf"),
    "oemRootCA": (None, "OEMRootCA", "OEM", "root"),
    "oemSubCA1": ("oemRootCA", "OEMSubCA1", "OEM", "sub1"),
    "oemSubCA2": ("oemSubCA1", "OEMSubCA2", "OEM", "sub2"),
    "oemProvLeaf": ("oemSubCA2", "EXI15118PCID00001", "OEM", "leaf"),  # CN: a PCID
    "vehicleLeaf": ("oemSubCA2", "WEXI15118VEHICLE1", "OEM", "leaf"),  # CN: a VIN-like id
    "moRootCA": (None, "MORootCA", "MO", "root"),
    "moSubCA1": ("moRootCA", "MOSubCA1", "MO", "sub1"),
    "moSubCA2": ("moSubCA1", "MOSubCA2", "MO", "sub2"),
    "contractLeaf": ("moSubCA2", "DEEXIC151180001", "MO", "leaf"),   # CN: an EMAID (14-15 characters)
}

_CA_USAGE = dict(digital_signature=False, content_commitment=False, key_encipherment=False,
                 data_encipherment=False, key_agreement=False, key_cert_sign=True,
                 crl_sign=True, encipher_only=False, decipher_only=False)
# Leaves sign (TLS CertificateVerify/ServerKeyExchange, XML signatures); -2 SECC,
# provisioning and contract keys also do ECDH (TLS 1.2 / certificate installation).
_LEAF_USAGE = {
    "seccLeaf": {"digital_signature", "key_agreement"},
    "cpsLeaf": {"digital_signature"},
    "oemProvLeaf": {"digital_signature", "key_agreement"},
    "vehicleLeaf": {"digital_signature"},
    "contractLeaf": {"digital_signature", "content_commitment", "key_encipherment",
                     "key_agreement"},
}
# Chain files: leaf first, then Sub-CA 2, Sub-CA 1 (the root is never sent).
CHAINS = {"seccChain": "seccLeaf", "cpsChain": "cpsLeaf", "oemProvChain": "oemProvLeaf",
          "vehicleChain": "vehicleLeaf", "contractChain": "contractLeaf"}


def new_key(curve: str) -> PrivateKey:
    if curve == "p256":
        return ec.generate_private_key(ec.SECP256R1())
    if curve == "p384":                    # not a V2G curve: tests of refusals
        return ec.generate_private_key(ec.SECP384R1())
    if curve == "p521":
        return ec.generate_private_key(ec.SECP521R1())
    if curve == "ed448":
        return ed448.Ed448PrivateKey.generate()
    raise ValueError(f"unknown curve {curve!r} (p256, p521, ed448)")


def _hash_for(key: PrivateKey):
    if isinstance(key, ed448.Ed448PrivateKey):
        return None                        # EdDSA hashes internally
    size = key.curve.key_size
    return hashes.SHA256() if size <= 256 else hashes.SHA384() if size <= 384 else hashes.SHA512()


def _name(cn: str, dc: str, org: str) -> x509.Name:
    return x509.Name([
        x509.NameAttribute(NameOID.COMMON_NAME, cn),
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, org),
        x509.NameAttribute(NameOID.COUNTRY_NAME, "DE"),
        x509.NameAttribute(NameOID.DOMAIN_COMPONENT, dc),
    ])


def issue(subject: x509.Name, key: PrivateKey, *, issuer: Optional[x509.Certificate],
          issuer_key: PrivateKey, kind: str, usage: Optional[set[str]] = None,
          not_before: _dt.datetime, not_after: _dt.datetime,
          serial: Optional[int] = None, ocsp_url: Optional[str] = None) -> x509.Certificate:
    """One certificate.  ``kind``: root, sub1, sub2 or leaf; ``usage``: keyUsage flag
    names of a leaf (cryptography's KeyUsage argument names); ``ocsp_url``: an
    authorityInformationAccess OCSP entry (not on roots)."""
    pub = key.public_key()
    b = (x509.CertificateBuilder()
         .subject_name(subject)
         .issuer_name(issuer.subject if issuer is not None else subject)
         .public_key(pub)
         .serial_number(serial or x509.random_serial_number())
         .not_valid_before(not_before)
         .not_valid_after(not_after))
    if kind == "leaf":
        b = b.add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        flags = {k: False for k in _CA_USAGE}
        for u in usage or {"digital_signature"}:
            flags[u] = True
        b = b.add_extension(x509.KeyUsage(**flags), critical=True)
    else:
        path = {"root": None, "sub1": 1, "sub2": 0}[kind]
        b = b.add_extension(x509.BasicConstraints(ca=True, path_length=path), critical=True)
        b = b.add_extension(x509.KeyUsage(**_CA_USAGE), critical=True)
    b = b.add_extension(x509.SubjectKeyIdentifier.from_public_key(pub), critical=False)
    if ocsp_url and kind != "root":
        b = b.add_extension(x509.AuthorityInformationAccess([x509.AccessDescription(
            x509.oid.AuthorityInformationAccessOID.OCSP,
            x509.UniformResourceIdentifier(ocsp_url))]), critical=False)
    signer_pub = issuer.public_key() if issuer is not None else pub
    b = b.add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(signer_pub),
                        critical=False)
    return b.sign(issuer_key, _hash_for(issuer_key))


@dataclass
class PKI:
    profile: str
    curve: str
    certs: dict[str, x509.Certificate] = field(default_factory=dict)
    keys: dict[str, PrivateKey] = field(default_factory=dict)
    ocsp_url: Optional[str] = None

    def chain(self, leaf: str) -> list[x509.Certificate]:
        """Leaf, Sub-CA 2, Sub-CA 1 (no root)."""
        out = []
        name: Optional[str] = leaf
        while name is not None and _LAYOUT[name][3] != "root":
            out.append(self.certs[name])
            name = _LAYOUT[name][0]
        return out


def create_pki(profile: str = "iso2", *, curve: Optional[str] = None,
               now: Optional[_dt.datetime] = None, organization: str = "exi15118 test PKI",
               validity: Optional[dict[str, int]] = None,
               ocsp_url: Optional[str] = DEFAULT_OCSP_URL) -> PKI:
    """Generate all chains of a profile in memory.  ``ocsp_url``: the OCSP responder
    every non-root certificate names in its AIA (None: no AIA)."""
    if profile not in PROFILES:
        raise ValueError(f"unknown profile {profile!r} ({', '.join(PROFILES)})")
    curve = curve or CURVES[profile][0]
    if curve not in CURVES[profile]:
        raise ValueError(f"profile {profile} uses {' or '.join(CURVES[profile])}, not {curve}")
    now = now or _dt.datetime.now(_dt.timezone.utc)
    # Back-date a little: clocks of test peers are rarely in perfect agreement.
    start = now - _dt.timedelta(hours=1)
    days = dict(VALIDITY, **(validity or {}))
    pki = PKI(profile, curve, ocsp_url=ocsp_url)
    for name, (issuer, cn, dc, kind) in _LAYOUT.items():
        if name == "vehicleLeaf" and profile != "iso20":
            continue                       # -2 has no vehicle TLS certificate
        key = new_key(curve)
        cert = issue(_name(cn, dc, organization), key,
                     issuer=pki.certs[issuer] if issuer else None,
                     issuer_key=pki.keys[issuer] if issuer else key,
                     kind=kind, usage=_LEAF_USAGE.get(name), not_before=start,
                     not_after=start + _dt.timedelta(days=days[name]), ocsp_url=ocsp_url)
        pki.certs[name] = cert
        pki.keys[name] = key
    return pki


_README = """# {profile} test PKI (exi15118)

Generated by `exi15118 pki create --profile {profile}` on {date} UTC.
Keys: {keyalg}.  FOR TESTS ONLY: the private keys are {keystate}.

## Layout
- `certs/NAME.pem`, `certs/NAME.der`: one certificate (PEM and DER).
- `private_keys/NAME.key` (PEM, PKCS#8) and `private_keys/NAME.key.der` (DER, PKCS#8).
- `certs/*Chain.pem`: leaf + Sub-CA 2 + Sub-CA 1, the order a TLS peer or a V2G message
  sends them in (the root is never sent).

## Certificates
| file | subject | issuer | valid until | what it is |
|---|---|---|---|---|
{rows}

## Chains
{chains}

## Use with exi15118
- SECC (TLS server): `exi.v2g.tls.secc_context("{profile}", "certs/seccChain.pem", "private_keys/seccLeaf.key"{secc_trust})`
- EVCC (TLS client): `exi.v2g.tls.evcc_context("{profile}", "certs/v2gRootCA.pem"{evcc_cert})`

{pnc}## OCSP
Every non-root certificate names the responder `{ocsp_url}` in its AIA.
`ocsp/responder.json` lists the CAs it answers for, the serial number of every
certificate and the revocation list (add `{{"serial": "HEX", "time": "2026-01-01T00:00:00+00:00",
"reason": "keyCompromise"}}` entries).  Run it with `exi15118 pki ocsp --pki DIR`, or in
Python with `exi.v2g.security.ocsp.OCSPResponder.from_folder(DIR)`.
"""

_PNC_README = """## Plug & Charge (ISO 15118-2)
One folder serves both sides and the local backend (for tests: a real EVCC holds no MO,
CPS or other OEM keys, a real SECC no MO key).

- **EVCC** (`exi15118 evcc --payment contract --pki DIR [--install|--update]`,
  `exi.v2g.pnc.ContractWallet.from_folder(DIR)`): pays with `certs/contractChain.pem` +
  `private_keys/contractLeaf.key` (CN = eMAID); installs with `certs/oemProvChain.pem` +
  `private_keys/oemProvLeaf.key` (signs CertificateInstallationReq, ECDH key of the
  response); trusts `certs/v2gRootCA.pem` (SECC TLS chain, CPS chain) and
  `certs/moRootCA.pem` (contract chain).  A new contract from an installation or update
  REPLACES `certs/contractChain.pem`, `certs/contractLeaf.{pem,der}` and
  `private_keys/contractLeaf.key{,.der}`.
- **SECC** (`exi15118 secc --pnc --pki DIR`, `exi.v2g.pnc.SECCPnCConfig.from_folder(DIR)`):
  TLS with `certs/seccChain.pem` + `private_keys/seccLeaf.key`, staples the SECC leaf's
  OCSP status; accepts contract chains ending at `moRootCA` or `v2gRootCA`; signs
  SalesTariffs with `private_keys/moSubCA2.key` (what RISE-V2G and the iso15118 package
  do: the EVCC checks them with the MO Sub-CA 2 of its contract chain).
- **Local backend** (`exi.v2g.backend.LocalBackend.from_folder(DIR)`, run inside
  `exi15118 secc --pnc`): the certificate provisioning service signs responses with
  `private_keys/cpsLeaf.key` (`certs/cpsChain.pem`), accepts provisioning certificates
  under `oemRootCA`, mints contracts with `private_keys/moSubCA2.key`, answers OCSP from
  `ocsp/responder.json` (revoke a certificate there to see FAILED_CertificateRevoked).

"""


_WHAT = {
    "v2gRootCA": "V2G root CA: trust anchor of SECC and CPS chains",
    "cpoSubCA1": "CPO Sub-CA 1 (charge point operator)",
    "cpoSubCA2": "CPO Sub-CA 2, issues SECC certificates",
    "seccLeaf": "SECC certificate: the charger's TLS server certificate (CN = EVSEID)",
    "cpsSubCA1": "CPS Sub-CA 1 (certificate provisioning service)",
    "cpsSubCA2": "CPS Sub-CA 2",
    "cpsLeaf": "CPS leaf: signs CertificateInstallationRes",
    "oemRootCA": "OEM root CA: trust anchor of vehicle certificates",
    "oemSubCA1": "OEM Sub-CA 1",
    "oemSubCA2": "OEM Sub-CA 2, issues provisioning and vehicle certificates",
    "oemProvLeaf": "OEM provisioning certificate (CN = PCID): signs CertificateInstallationReq",
    "vehicleLeaf": "vehicle certificate: the EVCC's TLS client certificate (ISO 15118-20 mutual TLS)",
    "moRootCA": "MO root CA (mobility operator)",
    "moSubCA1": "MO Sub-CA 1",
    "moSubCA2": "MO Sub-CA 2, issues contract certificates",
    "contractLeaf": "contract certificate (CN = EMAID): Plug & Charge identity",
}


def write_pki(pki: PKI, out: Union[str, os.PathLike], *, password: Optional[str] = None) -> list[Path]:
    """Write certificates (PEM+DER), keys, chain bundles and README.md; return the files."""
    out = Path(out)
    (out / "certs").mkdir(parents=True, exist_ok=True)
    (out / "private_keys").mkdir(parents=True, exist_ok=True)
    written: list[Path] = []

    def put(path: Path, data: bytes, private: bool = False) -> None:
        path.write_bytes(data)
        if private:
            path.chmod(0o600)
        written.append(path)

    enc = (serialization.BestAvailableEncryption(password.encode()) if password
           else serialization.NoEncryption())
    for name, cert in pki.certs.items():
        put(out / "certs" / f"{name}.pem", cert.public_bytes(serialization.Encoding.PEM))
        put(out / "certs" / f"{name}.der", cert.public_bytes(serialization.Encoding.DER))
        key = pki.keys[name]
        put(out / "private_keys" / f"{name}.key",
            key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, enc),
            private=True)
        put(out / "private_keys" / f"{name}.key.der",
            key.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, enc),
            private=True)
    chain_lines = []
    for chain, leaf in CHAINS.items():
        if leaf not in pki.certs:
            continue
        certs = pki.chain(leaf)
        put(out / "certs" / f"{chain}.pem",
            b"".join(c.public_bytes(serialization.Encoding.PEM) for c in certs))
        names = [n for c in certs for n, cc in pki.certs.items() if cc is c]
        root = _LAYOUT[names[-1]][0]
        chain_lines.append(f"- `certs/{chain}.pem`: {' -> '.join(names)} (anchor: `{root}`)")
    rows = []
    for name, cert in pki.certs.items():
        rows.append(f"| `{name}` | {cert.subject.rfc4514_string()} | "
                    f"{cert.issuer.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value} | "
                    f"{cert.not_valid_after_utc:%Y-%m-%d} | {_WHAT[name]} |")
    keyalg = {"p256": "ECDSA secp256r1, SHA-256", "p521": "ECDSA secp521r1, SHA-512",
              "ed448": "Ed448"}[pki.curve]
    iso20 = pki.profile == "iso20"
    text = _README.format(
        profile=pki.profile, date=_dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M"),
        keyalg=keyalg,
        keystate="encrypted with the password given" if password else "NOT encrypted",
        rows="\n".join(rows), chains="\n".join(chain_lines),
        secc_trust=', trust=["certs/oemRootCA.pem", "certs/v2gRootCA.pem"]' if iso20 else "",
        ocsp_url=pki.ocsp_url or "(none)",
        pnc=_PNC_README if pki.profile == "iso2" else "",
        evcc_cert=(', certfile="certs/vehicleChain.pem", keyfile="private_keys/vehicleLeaf.key"'
                   if iso20 else ""))
    put(out / "README.md", text.encode())
    written.extend(_write_ocsp(pki, out))
    return written


def _write_ocsp(pki: PKI, out: Path) -> list[Path]:
    """ocsp/responder.json: what the OCSP responder (exi.v2g.security.ocsp.OCSPResponder.
    from_folder) needs: the CAs it answers for (their certs and keys are in certs/ and
    private_keys/), its URL and the revocation list (empty; add
    {"serial": HEX, "time": ISO-8601, "reason": "keyCompromise"} entries)."""
    (out / "ocsp").mkdir(exist_ok=True)
    issuers = [n for n in pki.certs if _LAYOUT[n][3] != "leaf"]
    conf = {"url": pki.ocsp_url, "issuers": issuers, "revoked": [],
            "serials": {n: format(c.serial_number, "x") for n, c in pki.certs.items()}}
    path = out / "ocsp" / "responder.json"
    path.write_text(json.dumps(conf, indent=2) + "\n")
    return [path]


# ---------------------------------------------------------------------------------------
# One folder for several profiles (`pki create --profile iso2,iso20`): an SECC serving -2
# and -20 on one TLS port needs both SECC chains (exi.v2g.transport picks one per
# ClientHello).  Each profile keeps its complete single-profile layout in a sub-folder
# named after it, so every tool that takes a single-profile folder takes DIR/iso2 or
# DIR/iso20 as it is.

_COMBINED_README = """# Test PKI for several profiles (exi15118)

Generated by `exi15118 pki create --profile {profiles}` on {date} UTC.  FOR TESTS ONLY.

Each profile has its own chains (ISO 15118-2 and ISO 15118-20 use different V2G roots and
key types), each in a complete single-profile folder (its README.md lists the files):

{rows}

## Use with exi15118
- SECC serving every protocol at once (DIN on plain TCP; -2 over TLS 1.2 with the
  `iso2/` chain; -20 over TLS 1.3 with the `iso20/` chain and the vehicle certificate):
  `exi15118 secc -i IFACE --protocols din,iso2,iso20 --tls --pki DIR`.  The SECC picks the
  chain per connection from the EV's ClientHello: TLS 1.3 offered -> `iso20/`, else `iso2/`
  (so a -2 EV must not offer TLS 1.3: it would be asked for a vehicle certificate).
- EVCC: `exi15118 evcc ... --tls --pki DIR` uses the sub-folder of the first protocol it
  offers that runs over TLS (`--protocol iso20` -> `iso20/`, `--protocol iso2` -> `iso2/`);
  `--pki DIR/iso2` or `--pki DIR/iso20` work as well.
- OCSP: `exi15118 pki ocsp --pki DIR` answers for the CAs of every profile.
"""


def write_pkis(pkis: list[PKI], out: Union[str, os.PathLike], *,
               password: Optional[str] = None) -> list[Path]:
    """Write several profiles' PKIs into one folder, each into ``out/<profile>/``
    (:func:`write_pki`), plus README.md; return the files."""
    out = Path(out)
    profiles = [p.profile for p in pkis]
    if len(set(profiles)) != len(profiles):
        raise ValueError(f"one PKI per profile, not {profiles}")
    out.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    for pki in pkis:
        written.extend(write_pki(pki, out / pki.profile, password=password))
    keyalg = {"p256": "ECDSA secp256r1/SHA-256", "p521": "ECDSA secp521r1/SHA-512", "ed448": "Ed448"}
    text = _COMBINED_README.format(
        profiles=",".join(profiles), date=_dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M"),
        rows="\n".join(f"- `{p.profile}/`: ISO 15118-{p.profile[3:]} chains, {keyalg[p.curve]}" for p in pkis))
    (out / "README.md").write_text(text)
    written.append(out / "README.md")
    return written


def folder_profiles(folder: Union[str, os.PathLike]) -> tuple[str, ...]:
    """The profiles of a folder written by :func:`write_pkis` (empty for a
    single-profile folder)."""
    return tuple(p for p in PROFILES if (Path(folder) / p / "certs").is_dir())


def profile_folder(folder: Union[str, os.PathLike], profile: str) -> Path:
    """The single-profile folder of ``profile`` in ``folder`` (``folder`` itself when it
    holds one profile)."""
    folder = Path(folder)
    return folder / profile if profile in folder_profiles(folder) else folder
