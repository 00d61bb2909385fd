"""``exi15118 pki``: test certificate chains for ISO 15118-2 / -20.

    exi15118 pki create --out DIR [--profile iso2|iso20|iso2,iso20|all] [--curve p521|ed448]
                        [--password PW] [--ocsp-url URL]
    exi15118 pki ocsp --pki DIR [--host 127.0.0.1] [--port 8015] [--password PW]  # OCSP responder
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Optional

from exi.cli.errors import BAD_INPUT, USAGE, CLIError, error, usage

PASSWORD_ENV = "EXI15118_PKI_PASSWORD"


def register(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser("pki", help="create test PKIs (V2G, CPO, CPS, OEM, MO chains)",
                              description=__doc__.replace("``", "`"),
                              formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="pki_command", metavar="COMMAND")
    sub.required = True
    c = sub.add_parser("create", help="write all chains of a profile into a folder")
    c.add_argument("--out", required=True, type=Path, help="output folder (created)")
    c.add_argument("--profile", type=_profiles, default=("iso2",), metavar="iso2|iso20|iso2,iso20|all",
                   help="iso2: ECDSA P-256/SHA-256 (default); iso20: P-521/SHA-512 or Ed448; "
                        "iso2,iso20 (or all): both, in the sub-folders iso2/ and iso20/, for an SECC "
                        "serving -2 and -20 at once")
    c.add_argument("--curve", choices=("p256", "p521", "ed448"),
                   help="key type (default: p256 for iso2, p521 for iso20; with both profiles, "
                        "the iso20 key type)")
    c.add_argument("--password", help="encrypt the private keys with this password")
    c.add_argument("--force", action="store_true", help="overwrite a non-empty folder")
    c.add_argument("--ocsp-url", default=None,
                   help="OCSP responder named in the certificates' AIA "
                        "(default http://127.0.0.1:8015/ocsp)")
    c.set_defaults(func=run)
    o = sub.add_parser("ocsp", help="serve OCSP for a PKI folder (HTTP, loopback by default)")
    o.add_argument("--pki", required=True, type=Path, help="folder written by `pki create`")
    o.add_argument("--host", default="127.0.0.1")
    o.add_argument("--port", type=int, default=8015)
    o.add_argument("--password", help="the password the PKI's keys were written with")
    o.set_defaults(func=run_ocsp)
    p.set_defaults(func=run)
    return p


def _profiles(text: str) -> tuple[str, ...]:
    names = ("iso2", "iso20") if text.strip() == "all" else \
        tuple(dict.fromkeys(x.strip() for x in text.split(",") if x.strip()))
    if not names or any(x not in ("iso2", "iso20") for x in names):
        raise argparse.ArgumentTypeError(f"choose iso2, iso20, iso2,iso20 or all, not {text!r}")
    return names


def run(args: argparse.Namespace) -> int:
    try:
        from exi.v2g.pki import CURVES, create_pki, write_pki, write_pkis
    except ImportError as e:            # cryptography missing
        error("pki", f"needs the 'cryptography' package: pip install cryptography ({e.name} missing)")
        return USAGE
    out: Path = args.out
    if out.exists() and (not out.is_dir() or any(out.iterdir())) and not args.force:
        error("pki", f"--out {out} is not an empty folder; use --force to overwrite")
        return BAD_INPUT
    profiles = (args.profile,) if isinstance(args.profile, str) else args.profile
    # --force overwrites a folder of the same layout; mixing layouts would leave chains
    # that tools then pick up (a single-profile folder next to iso2/ and iso20/).
    from exi.v2g.pki import folder_profiles
    if out.is_dir() and ((len(profiles) == 1 and folder_profiles(out)) or
                         (len(profiles) > 1 and (out / "certs").is_dir())):
        error("pki", f"--out {out} holds a PKI of the other layout (one profile vs several); "
                     "use an empty folder")
        return BAD_INPUT
    extra = {"ocsp_url": args.ocsp_url} if getattr(args, "ocsp_url", None) else {}
    try:
        if len(profiles) > 1 and args.curve is not None and args.curve not in CURVES["iso20"]:
            raise ValueError(f"with several profiles --curve sets the iso20 key type "
                             f"({' or '.join(CURVES['iso20'])}), not {args.curve}")
        pkis = [create_pki(p, curve=args.curve if len(profiles) == 1 or p == "iso20" else None, **extra)
                for p in profiles]
    except ValueError as e:
        error("pki", str(e))
        return USAGE
    if len(pkis) == 1:
        files = write_pki(pkis[0], out, password=args.password)
    else:
        files = write_pkis(pkis, out, password=args.password)
    described = ", ".join(f"{p.profile} ({p.curve})" for p in pkis)
    print(f"{described} PKI: {sum(len(p.certs) for p in pkis)} certificates, "
          f"{len(files)} files in {out} (see {out / 'README.md'})")
    return 0


def run_ocsp(args: argparse.Namespace) -> int:
    import asyncio

    from exi.v2g.security.ocsp import serve
    try:
        responder = load_responder(args.pki, args.password)
    except (OSError, ValueError, KeyError, TypeError) as e:
        print(f"exi15118 pki: error: cannot load {args.pki}/ocsp/responder.json: {e}", file=sys.stderr)
        return 2

    async def main() -> None:
        async with serve(responder, args.host, args.port) as url:
            print(f"OCSP responder for {len(responder.issuers)} CAs at {url}", flush=True)
            await asyncio.Event().wait()

    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        pass
    return 0


def load_responder(pki: Path, password: Optional[str] = None):
    """The OCSP responder of a PKI folder; of a folder of several profiles, one
    responder for the CAs of all of them (they name the same responder URL)."""
    from exi.v2g.pki import folder_profiles
    from exi.v2g.security.ocsp import OCSPResponder
    parts = [OCSPResponder.from_folder(pki / p, password=password) for p in folder_profiles(pki)] or \
        [OCSPResponder.from_folder(pki, password=password)]
    return OCSPResponder([i for r in parts for i in r.issuers],
                         {k: v for r in parts for k, v in r.revoked.items()})


# --- checks at start-up of `secc`/`evcc --pki DIR` -----------------------------------------

def add_password_option(p: argparse.ArgumentParser) -> None:
    p.add_argument("--pki-password", metavar="PW", default=None,
                   help=f"password of encrypted PKI keys (or set {PASSWORD_ENV}); never asked on the terminal")


def password(args) -> Optional[str]:
    return args.pki_password if args.pki_password is not None else os.environ.get(PASSWORD_ENV)


def _folder(pki: Path) -> Path:
    if not pki.exists():
        raise usage(f"--pki {pki}: no such folder")
    if not pki.is_dir():
        raise usage(f"--pki {pki}: not a folder (give the folder `exi15118 pki create --out DIR` wrote)")
    return pki


def _need(pki: Path, rel: str) -> Path:
    f = pki / rel
    if not f.is_file():
        raise usage(f"--pki {pki}: {rel} is missing (not a folder written by `exi15118 pki create`?)")
    return f


def check_evcc_pki(pki: Path, profile: str = "iso2") -> None:
    """The EVCC needs the V2G root it trusts (of ``profile`` in a folder of several)."""
    from cryptography import x509

    from exi.v2g.pki import profile_folder
    pki = profile_folder(_folder(pki), profile)
    root = _need(pki, "certs/v2gRootCA.pem")
    try:
        x509.load_pem_x509_certificate(root.read_bytes())
    except ValueError:
        raise usage(f"--pki {pki}: certs/v2gRootCA.pem is not a PEM certificate") from None


def check_secc_pki(pki: Path, pw: Optional[str], protocols: tuple = ("iso2",)) -> None:
    """Refuse, saying why, a PKI folder that cannot serve TLS for ``protocols``: files
    missing, a key of the wrong profile, a chain that does not lead to the V2G root EVs
    trust, an expired certificate, an encrypted key without (or with a wrong) password.
    A folder holds one profile (``pki create --profile``: an iso20 folder serves -20 TLS)
    or several (``--profile iso2,iso20``: each profile of ``protocols`` is checked)."""
    from exi.v2g.pki import folder_profiles
    _folder(pki)
    held = folder_profiles(pki)
    if held:
        wanted = [p for p in held if p in protocols]
        if not wanted:
            raise usage(f"--pki {pki} holds {', '.join(held)} chains: none serves TLS for "
                        f"{', '.join(protocols)}")
        for p in wanted:
            _check_secc_folder(pki / p, pw, (p,))
        return
    _check_secc_folder(pki, pw, protocols)


def _check_secc_folder(pki: Path, pw: Optional[str], protocols: tuple) -> None:
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization

    from exi.v2g import tls
    from exi.v2g.session.drivers import pki_profile
    profile = pki_profile(pki)
    if "iso20" in protocols and "iso2" not in protocols and profile != "iso20":
        raise usage(f"--pki {pki} cannot serve ISO 15118-20 TLS: it is an ISO 15118-2 PKI (make one with "
                    "`exi15118 pki create --profile iso20 --out DIR`)")
    if profile == "iso20" and "iso20" not in protocols:
        raise usage(f"--pki {pki} is an ISO 15118-20 PKI: it cannot serve ISO 15118-2 TLS (make one with "
                    "`exi15118 pki create --profile iso2 --out DIR`, or add iso20 to --protocols)")
    chain_file = _need(pki, "certs/seccChain.pem")
    key_file = _need(pki, "private_keys/seccLeaf.key")
    try:
        chain = x509.load_pem_x509_certificates(chain_file.read_bytes())
    except ValueError:
        raise usage(f"--pki {pki}: certs/seccChain.pem holds no PEM certificate") from None
    leaf = chain[0]
    try:
        tls.check_peer_certificate(leaf, profile)
    except tls.TLSPolicyError as e:             # an SSLError: str() would show its args tuple
        reason = e.args[0] if e.args else e.__class__.__name__
        name = "ISO 15118-20" if profile == "iso20" else "ISO 15118-2"
        raise usage(f"--pki {pki} cannot serve {name} TLS: SECC certificate {reason} (an {profile} PKI: "
                    f"`exi15118 pki create --profile {profile} --out DIR`)") from None
    root_file = pki / "certs" / "v2gRootCA.pem"
    issuers = chain[1:] + ([x509.load_pem_x509_certificate(root_file.read_bytes())] if root_file.is_file() else [])
    for cert, issuer in zip(chain, issuers):
        try:
            cert.verify_directly_issued_by(issuer)
        except Exception as e:         # noqa: BLE001 - InvalidSignature (no message), ValueError, TypeError
            raise usage(f"--pki {pki}: the SECC chain is broken: {cert.subject.rfc4514_string()} is not "
                        f"issued by {issuer.subject.rfc4514_string()}{': ' + str(e) if str(e) else ''}; "
                        "EVs trusting certs/v2gRootCA.pem would refuse every handshake") from None
    data = key_file.read_bytes()
    try:
        key = serialization.load_pem_private_key(data, pw.encode() if pw is not None else None)
    except TypeError:
        raise usage(f"--pki {pki}: private_keys/seccLeaf.key is encrypted: give --pki-password PW or set "
                    f"{PASSWORD_ENV}" if pw is None else
                    f"--pki {pki}: private_keys/seccLeaf.key is not encrypted, but a password was given") from None
    except ValueError:
        raise usage(f"--pki {pki}: cannot read private_keys/seccLeaf.key: wrong password, or not a PEM key") from None
    pub = serialization.PublicFormat.SubjectPublicKeyInfo
    if key.public_key().public_bytes(serialization.Encoding.DER, pub) != \
            leaf.public_key().public_bytes(serialization.Encoding.DER, pub):
        raise usage(f"--pki {pki}: private_keys/seccLeaf.key does not belong to the certificate in "
                    "certs/seccChain.pem")


def check_pnc_secc_pki(pki: Path) -> None:
    """What `exi15118 secc --pnc` needs besides TLS: the contract trust anchors, the tariff
    key and what the local backend signs and mints with."""
    for rel in ("certs/moRootCA.pem", "certs/v2gRootCA.pem", "certs/oemRootCA.pem",
                "certs/cpsChain.pem", "private_keys/cpsLeaf.key",
                "certs/moSubCA2.pem", "private_keys/moSubCA2.key"):
        _need(pki, rel)


def check_pnc_evcc_pki(pki: Path, action) -> None:
    """What `exi15118 evcc --payment contract` needs: the roots, and a contract (or, to
    install one, the OEM provisioning certificate and key)."""
    check_evcc_pki(pki)
    _need(pki, "certs/moRootCA.pem")
    has_contract = (pki / "certs" / "contractChain.pem").is_file() and \
        (pki / "private_keys" / "contractLeaf.key").is_file()
    if action == "update" and not has_contract:
        raise usage(f"--pki {pki}: --update needs a contract (certs/contractChain.pem and "
                    "private_keys/contractLeaf.key)")
    if action == "installation" or not has_contract:
        _need(pki, "certs/oemProvChain.pem")
        _need(pki, "private_keys/oemProvLeaf.key")


__all__ = ["register", "run", "add_password_option", "password", "check_secc_pki", "check_evcc_pki",
           "check_pnc_secc_pki", "check_pnc_evcc_pki", "CLIError"]
