"""`flex4grid oadr check FILE.xml`: decode one OpenADR 2.0b message and show it, or say exactly
why it is refused and which response code a VTN or VEN would answer."""

from __future__ import annotations

import argparse
import dataclasses
import sys
from datetime import datetime, timedelta
from enum import Enum
from pathlib import Path
from typing import Any

from oadr import codec, signing, xmlvalues
from oadr.errors import OadrError


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser("oadr", help="OpenADR 2.0b message tools")
    commands = parser.add_subparsers(dest="oadr_command", metavar="COMMAND", required=True)
    check = commands.add_parser(
        "check",
        help="validate and decode an OpenADR 2.0b message",
        description="Validate FILE against the official 2.0b schema, verify its XML signature "
        "if it has one, and print the decoded payload; or print the error and its response code.",
    )
    check.add_argument("file", type=Path, metavar="FILE.xml")
    check.set_defaults(handler=_check)


def _check(args: argparse.Namespace) -> int:
    path: Path = args.file
    try:
        data = path.read_bytes()
    except OSError as exc:
        print(f"{path}: cannot read: {exc.strerror}", file=sys.stderr)
        return 2
    try:
        # Replay windows are for live traffic: a stored message is checked for integrity as of
        # the moment it claims to have been signed. Only the signed element is decoded.
        signed_at = signing.claimed_timestamp(codec.parse(data))
        received = codec.receive(
            data, now=signed_at or datetime.now().astimezone(), replay_guard=None
        )
    except OadrError as err:
        print(f"{path}: refused with {int(err.code)} ({err.code.name}): {err.message}")
        return 1
    payload, verified = received.payload, received.signature
    print(f"{path}: valid OpenADR 2.0b {type(payload).__name__}")
    if verified is not None:
        subject = verified.certificate.subject.rfc4514_string()
        print(f"signature: valid, signed by {subject} at {verified.timestamp.isoformat()}")
    else:
        print("signature: none")
    print(render(payload))
    return 0


def render(value: Any, indent: int = 0) -> str:
    """A readable tree of a model value: fields left at their defaults are not shown."""
    pad = "  " * indent
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        lines = [f"{type(value).__name__}"]
        for field in dataclasses.fields(value):
            item = getattr(value, field.name)
            if _is_default(field, item):
                continue
            lines.append(f"{pad}  {field.name}: {render(item, indent + 1)}")
        return "\n".join(lines)
    if isinstance(value, tuple):
        if not value:
            return "()"
        return "\n".join([""] + [f"{pad}  - {render(item, indent + 2).lstrip()}" for item in value])
    if isinstance(value, Enum):
        return str(value.value)
    if isinstance(value, datetime):
        return xmlvalues.format_datetime(value)
    if isinstance(value, timedelta):
        return xmlvalues.format_duration(value)
    return str(value)


def _is_default(field: dataclasses.Field[Any], item: Any) -> bool:
    if field.default is not dataclasses.MISSING:
        return bool(item == field.default)
    return False
