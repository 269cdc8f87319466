"""`flex4grid certs ...`: run the CAs, issue, revoke and rotate certificates, print fingerprints.

A problem the user can fix (missing or corrupt file, wrong passphrase, key not matching its
certificate, a CA refusing) is one line on stderr naming the file and the problem, exit code 1.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

from certs import fingerprint
from certs.ca import CaError, CertificateAuthority
from certs.dev import make_dev_pki
from certs.files import CertsError, IdentityFiles, load_certificate, read_passphrase
from certs.keys import KeyType
from certs.roles import Role, RoleError, parse_roles
from certs.templates import DEFAULT_LIFETIMES, Lifetimes, parse_san

_KEY_TYPES = [k.value for k in KeyType]
_DAY = timedelta(days=1)


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    certs = subparsers.add_parser("certs", help="certificates and trust for every stakeholder")
    commands = certs.add_subparsers(dest="certs_command", metavar="CERTS_COMMAND", required=True)

    p = commands.add_parser("init-ca", help="create a root CA, or an intermediate with --parent")
    p.add_argument("directory", type=Path, metavar="DIR")
    p.add_argument("--name", help="the CA's common name (default: from DIR)")
    p.add_argument("--key-type", choices=_KEY_TYPES, default=KeyType.P256.value)
    p.add_argument("--parent", type=Path, metavar="CA_DIR", help="the CA that certifies this one")
    p.add_argument("--roles", help="intermediate only: roles it may issue for, e.g. ven,vtn")
    p.add_argument("--days", type=int, help="lifetime (default: root 20 y, intermediate 10 y)")
    p.add_argument("--passphrase-file", type=Path, help="encrypt the new CA key")
    p.add_argument("--parent-passphrase-file", type=Path, help="unlock the parent CA key")
    p.set_defaults(handler=_guarded(_init_ca))

    p = commands.add_parser("issue", help="issue a certificate for one role")
    _ca_options(p)
    p.add_argument("--role", required=True, choices=[r.value for r in Role])
    p.add_argument("--name", required=True, help="subject common name (the identity, e.g. venID)")
    p.add_argument("--key-type", choices=_KEY_TYPES, default=KeyType.P256.value)
    p.add_argument("--out", required=True, type=Path, metavar="DIR")
    p.add_argument("--san", action="append", default=[], help="DNS name or IP (repeatable)")
    p.add_argument("--days", type=int, help=f"lifetime (default {DEFAULT_LIFETIMES.leaf.days})")
    p.add_argument("--passphrase-file", type=Path, help="encrypt the new key")
    p.set_defaults(handler=_guarded(_issue))

    p = commands.add_parser("fingerprint", help="print the OpenADR fingerprint of a certificate")
    p.add_argument("cert", type=Path, metavar="CERT.pem")
    p.set_defaults(handler=_guarded(_fingerprint))

    p = commands.add_parser("revoke", help="revoke a certificate and republish the CRL")
    _ca_options(p)
    p.add_argument("cert", type=Path, metavar="CERT.pem")
    p.set_defaults(handler=_guarded(_revoke))

    p = commands.add_parser("rotate", help="new key and certificate for the same identity")
    _ca_options(p)
    p.add_argument("cert", type=Path, metavar="CERT.pem", help="the certificate being replaced")
    p.add_argument("--out", required=True, type=Path, metavar="DIR")
    p.add_argument("--overlap-days", type=float, default=7.0, help="old cert accepted this long")
    p.add_argument("--key-type", choices=_KEY_TYPES, help="default: as the old certificate")
    p.add_argument("--passphrase-file", type=Path, help="encrypt the new key")
    p.set_defaults(handler=_guarded(_rotate))

    p = commands.add_parser("list", help="certificates a CA has issued, with their status")
    _ca_options(p)
    p.set_defaults(handler=_guarded(_list))

    p = commands.add_parser("publish", help="republish a CA's CRL and rotations (run daily)")
    _ca_options(p)
    p.set_defaults(handler=_guarded(_publish))

    p = commands.add_parser("dev-pki", help="a whole development PKI: CAs, VTN, VENs")
    p.add_argument("directory", type=Path, metavar="DIR")
    p.add_argument("--key-type", choices=_KEY_TYPES, default=KeyType.P256.value)
    p.add_argument("--vens", type=int, default=3, help="how many VEN certificates")
    p.set_defaults(handler=_guarded(_dev_pki))


def _ca_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--ca", required=True, type=Path, metavar="CA_DIR")
    parser.add_argument("--ca-passphrase-file", type=Path, help="unlock the CA key")


def _guarded(handler: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
    def run(args: argparse.Namespace) -> int:
        try:
            return handler(args)
        except (CertsError, RoleError) as err:
            print(f"flex4grid certs: error: {err}", file=sys.stderr)
        except OSError as err:  # e.g. an output directory we may not write to
            where = err.filename if err.filename is not None else "file system"
            print(f"flex4grid certs: error: {where}: {err.strerror}", file=sys.stderr)
        return 1

    return run


def _now() -> datetime:
    return datetime.now(UTC)


def _passphrase(path: Path | None) -> bytes | None:
    return None if path is None else read_passphrase(path)


def _open_ca(args: argparse.Namespace) -> CertificateAuthority:
    return CertificateAuthority.open(args.ca, _passphrase(args.ca_passphrase_file))


def _init_ca(args: argparse.Namespace) -> int:
    name = args.name or args.directory.resolve().name
    key_type = KeyType(args.key_type)
    passphrase = _passphrase(args.passphrase_file)
    if args.parent is None:
        if args.roles is not None:
            raise CaError("--roles applies to an intermediate CA (give --parent)")
        lifetimes = Lifetimes(root=args.days * _DAY) if args.days else DEFAULT_LIFETIMES
        ca = CertificateAuthority.create_root(
            args.directory, name, _now(), key_type, lifetimes, passphrase
        )
    else:
        if args.roles is None:
            raise CaError("an intermediate CA needs --roles, e.g. --roles ven")
        parent = CertificateAuthority.open(args.parent, _passphrase(args.parent_passphrase_file))
        lifetimes = Lifetimes(intermediate=args.days * _DAY) if args.days else DEFAULT_LIFETIMES
        ca = parent.create_intermediate(
            args.directory, name, parse_roles(args.roles), _now(), key_type, lifetimes, passphrase
        )
    scope = ", ".join(sorted(ca.role_scope)) if ca.role_scope is not None else "any (root)"
    print(f"CA {ca.name!r} in {args.directory} (roles: {scope})")
    print(f"fingerprint {fingerprint.of_certificate(ca.certificate)}")
    return 0


def _issue(args: argparse.Namespace) -> int:
    out = IdentityFiles(args.out)
    for path in (out.cert, out.key):
        if path.exists():
            raise CaError(f"{path}: already exists; refusing to overwrite it")
    passphrase = _passphrase(args.passphrase_file)
    ca = _open_ca(args)
    issued = ca.issue(
        Role(args.role),
        args.name,
        _now(),
        key_type=KeyType(args.key_type),
        sans=[parse_san(s) for s in args.san],
        lifetime=args.days * _DAY if args.days else DEFAULT_LIFETIMES.leaf,
    )
    issued.write(out, passphrase)
    print(f"{args.role} {args.name!r} -> {out.directory}")
    print(f"fingerprint {fingerprint.of_certificate(issued.certificate)}")
    return 0


def _fingerprint(args: argparse.Namespace) -> int:
    print(fingerprint.of_certificate(load_certificate(args.cert)))
    return 0


def _revoke(args: argparse.Namespace) -> int:
    certificate = load_certificate(args.cert)
    record = _open_ca(args).revoke(certificate, _now())
    print(f"revoked {record.name!r} ({record.fingerprint}); CRL republished")
    return 0


def _rotate(args: argparse.Namespace) -> int:
    old = load_certificate(args.cert)
    passphrase = _passphrase(args.passphrase_file)
    now = _now()
    overlap = timedelta(days=args.overlap_days)
    key_type = KeyType(args.key_type) if args.key_type else None
    issued = _open_ca(args).rotate(old, now, overlap, key_type=key_type)
    issued.write(IdentityFiles(args.out), passphrase)
    print(f"rotated {fingerprint.of_certificate(old)} -> {args.out}")
    print(f"fingerprint {fingerprint.of_certificate(issued.certificate)}")
    print(f"old certificate accepted until {(now + overlap).isoformat(timespec='seconds')}")
    return 0


def _list(args: argparse.Namespace) -> int:
    now = _now()
    for r in _open_ca(args).records():
        role = r.role.value if r.role is not None else "ca"
        until = r.not_after.date().isoformat()
        print(f"{r.serial:040x}  {r.status(now):13}  {role:10}  {until}  {r.fingerprint}  {r.name}")
    return 0


def _publish(args: argparse.Namespace) -> int:
    ca = _open_ca(args)
    ca.publish(_now())
    print(f"republished {ca.files.crl} and {ca.files.rotations}")
    return 0


def _dev_pki(args: argparse.Namespace) -> int:
    pki = make_dev_pki(args.directory, _now(), KeyType(args.key_type), args.vens)
    for identity in (pki.vtn, pki.aggregator, *pki.vens):
        certificate = load_certificate(identity.cert)
        print(f"{fingerprint.of_certificate(certificate)}  {identity.directory}")
    return 0
