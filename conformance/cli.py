"""`flex4grid conformance vtn|ven`: grade any OpenADR 2.0b VTN or VEN over the wire.

    flex4grid conformance vtn --url https://vtn:8080 --cert ven.pem --key ven.key \
        [--cert ven2.pem --key ven2.key] --ca-file root.pem \
        [--hook CMD | --admin-url URL --admin-token T] [--junit F] [--html F] [--only GROUP]
    flex4grid conformance ven --port 8443 --cert vtn.pem --key vtn.key --ca-file root.pem

Exit code 0 when no case failed (skips are fine), 1 when one did, 2 for a usage problem.
The hook protocol (JSON on stdin, JSON on stdout, exit 3 = unsupported) is in
conformance/hooks.py and docs/conformance.md.
"""

from __future__ import annotations

import argparse
import asyncio
import ssl
import sys
import typing
from collections.abc import Sequence
from datetime import timedelta
from pathlib import Path

from certs.tls import TLS12_CIPHERS
from conformance import report, scripted_vtn
from conformance.hooks import AdminApiHook, CommandHook, Hook, NoHook
from conformance.model import Case, CaseResult, Group, Peer, Verdict, select
from conformance.runner import run_cases
from conformance.vtn_peer import Identity, VtnUnderTest, client_context

Subparsers: typing.TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"


class CliError(Exception):
    """A usage problem, told in one line."""


def register(subparsers: Subparsers) -> None:
    conformance = subparsers.add_parser(
        "conformance", help="OpenADR 2.0b conformance harness: grade a VTN or a VEN"
    )
    commands = conformance.add_subparsers(dest="conformance_command", required=True)
    vtn = commands.add_parser("vtn", help="drive a VTN as one or more VENs and grade it")
    vtn.add_argument("--url", required=True, help="the VTN's base URL (https://host:port)")
    vtn.add_argument(
        "--cert",
        type=Path,
        action="append",
        default=[],
        help="a VEN certificate chain, PEM (repeat for multi-VEN cases)",
    )
    vtn.add_argument(
        "--key", type=Path, action="append", default=[], help="its private key (one per --cert)"
    )
    vtn.add_argument("--ca-file", type=Path, help="CA that signed the VTN's certificate")
    vtn.add_argument("--ven-name", default="conformance-ven")
    vtn.add_argument("--hook", metavar="CMD", help="command that makes the VTN act (JSON stdin)")
    vtn.add_argument("--admin-url", help="Flex4Grid admin API base URL, as the hook")
    vtn.add_argument("--admin-token", help="its bearer token (operator)")
    vtn.add_argument(
        "--requires-signatures",
        action="store_true",
        help="the VTN refuses unsigned messages: test that it does",
    )
    _common(vtn)
    vtn.set_defaults(handler=_guarded(_vtn))
    ven = commands.add_parser(
        "ven", help="host a scripted test VTN and grade the VEN that connects"
    )
    ven.add_argument("--host", default="127.0.0.1")
    ven.add_argument("--port", type=int, default=8443, help="0 picks a free port")
    ven.add_argument("--cert", type=Path, help="the test VTN's certificate chain (omit: HTTP)")
    ven.add_argument("--key", type=Path)
    ven.add_argument("--ca-file", type=Path, help="CA that signed the VEN's client certificate")
    ven.add_argument(
        "--poll-seconds",
        type=float,
        default=1.0,
        help="oadrRequestedOadrPollFreq asked of the VEN (default 1)",
    )
    _common(ven)
    ven.set_defaults(handler=_guarded(_ven))  # fmt: skip


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--junit", type=Path, metavar="FILE", help="write JUnit XML here")
    parser.add_argument("--html", type=Path, metavar="FILE", help="write the HTML report here")
    parser.add_argument(
        "--only", action="append", choices=[g.value for g in Group], help="run only this group"
    )
    parser.add_argument("--case-timeout", type=float, default=30.0, metavar="SECONDS")


def _guarded(handler: typing.Callable[[argparse.Namespace], int]) -> typing.Any:
    def run(args: argparse.Namespace) -> int:
        try:
            return handler(args)
        except CliError as err:
            print(f"flex4grid conformance: error: {err}", file=sys.stderr)
            return 2
        except (OSError, ssl.SSLError, ValueError) as err:
            print(f"flex4grid conformance: error: {err}", file=sys.stderr)
            return 2

    return run


def _groups(args: argparse.Namespace) -> frozenset[Group] | None:
    return frozenset(Group(g) for g in args.only) if args.only else None


def _hook(args: argparse.Namespace) -> Hook:
    if args.hook and args.admin_url:
        raise CliError("give --hook or --admin-url, not both")
    if args.hook:
        return CommandHook(args.hook)
    if args.admin_url:
        if not args.admin_token:
            raise CliError("--admin-url needs --admin-token")
        context = None
        if args.admin_url.startswith("https"):
            identity = Identity(args.cert[0], args.key[0]) if args.cert else None
            context = client_context(identity, args.ca_file)
        return AdminApiHook(args.admin_url, args.admin_token, context)
    return NoHook()


def _finish(results: Sequence[CaseResult], args: argparse.Namespace, title: str) -> int:
    if args.junit:
        args.junit.write_text(report.junit_xml(results, title))
    if args.html:
        args.html.write_text(report.html_report(results, title))
    print(report.console_summary(results, title))
    return 1 if any(r.verdict is Verdict.FAIL for r in results) else 0


def _progress(result: CaseResult) -> None:
    print(report.console_line(result), file=sys.stderr, flush=True)


async def _run(cases: list[Case[Peer]], peer: Peer, timeout_s: float) -> list[CaseResult]:
    return await run_cases(cases, peer, timeout_s=timeout_s, on_result=_progress)


def _vtn(args: argparse.Namespace) -> int:
    from conformance.vtn_suite import CASES

    if len(args.cert) != len(args.key):
        raise CliError("give one --key per --cert")
    identities = [Identity(c, k) for c, k in zip(args.cert, args.key, strict=True)]
    if args.url.startswith("https") and not identities:
        raise CliError("an https VTN needs a VEN identity: --cert and --key")
    vtn = VtnUnderTest(
        args.url,
        identities,
        ca_file=args.ca_file,
        hook=_hook(args),
        ven_name=args.ven_name,
        requires_signatures=args.requires_signatures,
    )
    results = asyncio.run(_run(select(CASES, _groups(args)), vtn, args.case_timeout))
    return _finish(results, args, f"OpenADR 2.0b VTN conformance: {args.url}")


def server_context(cert: Path, key: Path, ca_file: Path | None) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.set_ciphers(TLS12_CIPHERS)
    context.load_cert_chain(cert, key)
    context.verify_mode = ssl.CERT_REQUIRED  # VEN_needClientAuth
    if ca_file is not None:
        context.load_verify_locations(cafile=str(ca_file))
    return context


async def grade_ven(
    vtn: scripted_vtn.ScriptedVtn,
    host: str,
    port: int,
    context: ssl.SSLContext | None,
    cases: list[Case[scripted_vtn.ScriptedVtn]],
    timeout_s: float,
) -> list[CaseResult]:
    serving = await scripted_vtn.serve(vtn, host, port, context)
    print(f"test VTN listening on {serving.url}: point the VEN at it", file=sys.stderr, flush=True)
    try:
        return await _run(cases, vtn, timeout_s)
    finally:
        await serving.runner.cleanup()


def _ven(args: argparse.Namespace) -> int:
    from conformance.ven_cases import CASES

    if (args.cert is None) != (args.key is None):
        raise CliError("--cert and --key go together")
    if args.poll_seconds <= 0:
        raise CliError("--poll-seconds must be positive")
    context = server_context(args.cert, args.key, args.ca_file) if args.cert else None
    vtn = scripted_vtn.ScriptedVtn(poll_freq=timedelta(seconds=args.poll_seconds))
    results = asyncio.run(
        grade_ven(vtn, args.host, args.port, context, select(CASES, _groups(args)),
                  args.case_timeout)
    )  # fmt: skip
    return _finish(results, args, "OpenADR 2.0b VEN conformance")
