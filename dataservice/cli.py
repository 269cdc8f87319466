"""`flex4grid data ...`: the data service from the VTN's host, straight on its database.

    data keygen FILE                      a new master key file (0600)
    data prosumer add ID [--area A] [--ven VEN_ID]
    data recipient add ID --name N [--certificate PEM] [--budget EPSILON]
    data token (--recipient ID | --prosumer ID)
    data grant PROSUMER RECIPIENT --purpose P --level L [--access individual] [--days N]
    data revoke GRANT_ID
    data grants PROSUMER
    data audit [--prosumer ID] [--limit N]
    data export PROSUMER [--format json|csv] [--out FILE]
    data erase PROSUMER --yes
    data ingest [--r-id R] [--unit W|Wh|kWh] [--purge-source]
    data purge --retention-days N
    data rotate-key --new-key-file FILE   then destroy the old key: old backups open nothing

The master key comes from --key-file, $FLEX4GRID_DATA_KEY_FILE or $FLEX4GRID_DATA_KEY, and
only commands that encrypt or decrypt need it. Every change and every export is in the access
log with actor `cli:<user>`. A problem is one line on stderr and exit code 1.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import getpass
import json
import sys
import typing
from collections.abc import Callable, Coroutine
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy.exc import SQLAlchemyError

Subparsers: typing.TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"
DEFAULT_DATABASE = "sqlite:///./flex4grid-vtn.db"  # the VTN's (`flex4grid vtn serve`)
_LEVELS = ("MONTHLY", "DAILY", "QUARTER_HOUR", "NEAR_REAL_TIME")


class CliError(Exception):
    pass


def _actor() -> str:
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):
        return "cli"


def _common(p: argparse.ArgumentParser, key: bool = False) -> None:
    p.add_argument("--db", default=DEFAULT_DATABASE, metavar="URL", help="the VTN's database")
    if key:
        p.add_argument("--key-file", type=Path, metavar="FILE", help="the master key file")


def register(subparsers: Subparsers) -> None:
    data = subparsers.add_parser("data", help="the privacy-preserving metering data service")
    sub = data.add_subparsers(dest="data_command", metavar="DATA_COMMAND", required=True)

    p = sub.add_parser("keygen", help="write a new master key file (0600)")
    p.add_argument("file", type=Path)
    p.set_defaults(handler=_guarded(_keygen))

    p = sub.add_parser("prosumer", help="register a prosumer (makes its data key)")
    p.add_argument("action", choices=["add"])
    p.add_argument("prosumer_id")
    p.add_argument("--area", action="append", default=[], help="area it belongs to (repeatable)")
    p.add_argument("--ven", metavar="VEN_ID", help="the VEN whose reports are its readings")
    _common(p, key=True)
    p.set_defaults(handler=_guarded(_prosumer_add))

    p = sub.add_parser("recipient", help="register a data recipient")
    p.add_argument("action", choices=["add"])
    p.add_argument("recipient_id")
    p.add_argument("--name", required=True)
    p.add_argument("--certificate", type=Path, metavar="PEM", help="its `service` certificate")
    p.add_argument("--budget", type=float, default=10.0, help="privacy budget epsilon")
    _common(p, key=True)
    p.set_defaults(handler=_guarded(_recipient_add))

    p = sub.add_parser("token", help="a data token for a recipient or prosumer (printed once)")
    who = p.add_mutually_exclusive_group(required=True)
    who.add_argument("--recipient", metavar="ID")
    who.add_argument("--prosumer", metavar="ID")
    _common(p)
    p.set_defaults(handler=_guarded(_token))

    p = sub.add_parser("grant", help="record a prosumer's consent")
    p.add_argument("prosumer_id")
    p.add_argument("recipient_id")
    p.add_argument("--purpose", required=True)
    p.add_argument("--level", required=True, choices=_LEVELS)
    p.add_argument("--access", choices=["aggregate", "individual"], default="aggregate")
    p.add_argument("--days", type=int, default=90, help="valid for N days (default 90)")
    _common(p)
    p.set_defaults(handler=_guarded(_grant))

    p = sub.add_parser("revoke", help="revoke a grant now")
    p.add_argument("grant_id")
    _common(p)
    p.set_defaults(handler=_guarded(_revoke))

    p = sub.add_parser("grants", help="a prosumer's grants")
    p.add_argument("prosumer_id")
    _common(p)
    p.set_defaults(handler=_guarded(_grants))

    p = sub.add_parser("audit", help="the access log (one prosumer's: who saw its data)")
    p.add_argument("--prosumer", metavar="ID")
    p.add_argument("--limit", type=int, default=100)
    _common(p)
    p.set_defaults(handler=_guarded(_audit))

    p = sub.add_parser("export", help="everything held about a prosumer, decrypted")
    p.add_argument("prosumer_id")
    p.add_argument("--format", choices=["json", "csv"], default="json")
    p.add_argument("--out", type=Path, help="file to write (default stdout)")
    _common(p, key=True)
    p.set_defaults(handler=_guarded(_export))

    p = sub.add_parser("erase", help="erase a prosumer: shred its key, delete its data")
    p.add_argument("prosumer_id")
    p.add_argument("--yes", action="store_true", help="really (it cannot be undone)")
    _common(p)
    p.set_defaults(handler=_guarded(_erase))

    p = sub.add_parser("ingest", help="encrypt new VEN readings from the VTN's report store")
    p.add_argument("--r-id", help="only this rID (default: every numeric reading)")
    p.add_argument("--unit", choices=["W", "Wh", "kWh"], default="W")
    p.add_argument(
        "--purge-source",
        action="store_true",
        help="delete the VTN's plaintext copies of what was ingested",
    )
    _common(p, key=True)
    p.set_defaults(handler=_guarded(_ingest))

    p = sub.add_parser("rotate-key", help="re-wrap every key under a new master key")
    p.add_argument("--new-key-file", type=Path, required=True, help="from `data keygen`")
    _common(p, key=True)
    p.set_defaults(handler=_guarded(_rotate))

    p = sub.add_parser("purge", help="retention: delete readings older than N days")
    p.add_argument("--retention-days", type=int, required=True)
    _common(p)
    p.set_defaults(handler=_guarded(_purge))


def _guarded(work: Callable[[argparse.Namespace, Any], Coroutine[Any, Any, int]]) -> Any:
    def run(args: argparse.Namespace) -> int:
        from dataservice.crypto import CryptoError
        from dataservice.service import DataError

        try:
            if args.data_command == "keygen":
                return asyncio.run(work(args, None))
            return asyncio.run(_with_service(args, work))
        except DataError as err:
            print(f"flex4grid data: error: {err.message}", file=sys.stderr)
        except (CliError, CryptoError) as err:
            print(f"flex4grid data: error: {err}", file=sys.stderr)
        except SQLAlchemyError as err:
            reason = str(getattr(err, "orig", None) or err).splitlines()[0]
            print(f"flex4grid data: error: database: {reason}", file=sys.stderr)
        except OSError as err:
            print(f"flex4grid data: error: {err.strerror or err}", file=sys.stderr)
        return 1

    return run


async def _with_service(
    args: argparse.Namespace, work: Callable[[argparse.Namespace, Any], Coroutine[Any, Any, int]]
) -> int:
    from dataservice import keys
    from dataservice.crypto import CryptoError
    from dataservice.service import DataService
    from vtn.store.db import Store

    master = None
    try:
        master = keys.load(getattr(args, "key_file", None))
    except CryptoError:
        if getattr(args, "key_file", None) is not None:
            raise  # asked for a file that does not load: say so
    store = Store(args.db)
    try:
        return await work(args, DataService(store, master))
    finally:
        await store.close()


def _now() -> datetime:
    return datetime.now(UTC)


async def _keygen(args: argparse.Namespace, _: Any) -> int:
    from dataservice import keys

    try:
        made = keys.create_file(args.file)
    except FileExistsError:
        raise CliError(f"{args.file} exists; a master key is never overwritten") from None
    print(f"master key {made.key_id} written to {args.file} (mode 600); keep a copy offline")
    return 0


async def _prosumer_add(args: argparse.Namespace, service: Any) -> int:
    await service.add_prosumer(args.prosumer_id, args.area, args.ven, _actor(), _now())
    print(f"prosumer {args.prosumer_id} added")
    return 0


async def _recipient_add(args: argparse.Namespace, service: Any) -> int:
    from certs import fingerprint

    fp = None if args.certificate is None else fingerprint.of_pem(args.certificate.read_bytes())
    await service.add_recipient(args.recipient_id, args.name, fp, args.budget, _actor(), _now())
    print(f"recipient {args.recipient_id} added" + ("" if fp is None else f" (certificate {fp})"))
    return 0


async def _token(args: argparse.Namespace, service: Any) -> int:
    from dataservice.service import Caller, Kind

    holder = (
        Caller(Kind.RECIPIENT, args.recipient)
        if args.recipient
        else Caller(Kind.PROSUMER, args.prosumer)
    )
    print(await service.create_token(holder, _actor(), _now()))
    return 0


async def _grant(args: argparse.Namespace, service: Any) -> int:
    from dataservice.consent import Access, Level

    now = _now()
    grant = await service.grant(
        args.prosumer_id,
        args.recipient_id,
        args.purpose,
        Level[args.level],
        Access(args.access),
        now + timedelta(days=args.days),
        _actor(),
        now,
    )
    print(
        f"grant {grant.grant_id}: {grant.level.name} {grant.access.value} to "
        f"{grant.recipient_id} for {grant.purpose} until {grant.expires_at.isoformat()}"
    )
    return 0


async def _revoke(args: argparse.Namespace, service: Any) -> int:
    grant = await service.revoke(args.grant_id, _actor(), _now())
    print(f"grant {grant.grant_id} revoked at {grant.revoked_at.isoformat()}")
    return 0


async def _grants(args: argparse.Namespace, service: Any) -> int:
    now = _now()
    for g in await service.grants_of(args.prosumer_id):
        state = "revoked" if g.revoked_at else ("live" if g.live(now) else "expired")
        print(
            f"{g.grant_id}  {g.recipient_id:<16} {g.purpose:<16} {g.level.name:<14} "
            f"{g.access.value:<10} {state:<8} until {g.expires_at.isoformat()}"
        )
    return 0


async def _audit(args: argparse.Namespace, service: Any) -> int:
    if args.prosumer:
        entries = await service.accesses_of(args.prosumer)
    else:
        entries = list(reversed(await service.access_log(limit=args.limit)))
    for e in entries[-args.limit :]:
        level = "-" if e.level is None else e.level.name
        whose = e.prosumer_id or (f"release:{e.release_id}" if e.release_id else "-")
        print(
            f"{e.at.isoformat()}  {e.actor:<24} {e.action:<12} {whose:<14} {level:<14} "
            f"{e.purpose or '-':<14} {e.outcome} ({e.reason})"
        )
    return 0


async def _export(args: argparse.Namespace, service: Any) -> int:
    from dataservice.service import Caller, Kind

    exported = await service.export(args.prosumer_id, Caller(Kind.OPERATOR, _actor()), _now())
    out = sys.stdout if args.out is None else args.out.open("w", newline="")
    try:
        if args.format == "csv":
            writer = csv.writer(out)
            writer.writerow(["start", "energy_kwh"])
            for start, value in exported.quarter_hours:
                writer.writerow([start.isoformat(), f"{value:.6f}"])
        else:
            document = {
                "prosumer_id": exported.prosumer.prosumer_id,
                "areas": list(exported.prosumer.areas),
                "quarter_hours": [
                    {"start": s.isoformat(), "energy_kwh": v} for s, v in exported.quarter_hours
                ],
                "grants": [
                    {
                        "grant_id": g.grant_id,
                        "recipient_id": g.recipient_id,
                        "purpose": g.purpose,
                        "level": g.level.name,
                        "access": g.access.value,
                        "expires_at": g.expires_at.isoformat(),
                        "revoked_at": g.revoked_at and g.revoked_at.isoformat(),
                    }
                    for g in exported.grants
                ],
                "accesses": [
                    {
                        "at": e.at.isoformat(),
                        "actor": e.actor,
                        "action": e.action,
                        "level": e.level and e.level.name,
                        "purpose": e.purpose,
                        "outcome": e.outcome,
                        "reason": e.reason,
                    }
                    for e in exported.accesses
                ],
            }
            json.dump(document, out, indent=2)
            out.write("\n")
    finally:
        if out is not sys.stdout:
            out.close()
    return 0


async def _erase(args: argparse.Namespace, service: Any) -> int:
    if not args.yes:
        raise CliError("erasure cannot be undone; add --yes")
    counts = await service.erase(args.prosumer_id, _actor(), _now())
    print(
        f"prosumer {args.prosumer_id} erased: key shredded, {counts['days']} day(s) and "
        f"{counts['vtn_readings']} VTN reading(s) deleted"
    )
    return 0


async def _ingest(args: argparse.Namespace, service: Any) -> int:
    from dataservice import ingest

    done = await ingest.from_vtn(
        service, _now(), r_id=args.r_id, unit=ingest.Unit(args.unit), purge_source=args.purge_source
    )
    print(
        f"ingested {done.readings} reading(s) of {done.prosumers} prosumer(s) into "
        f"{done.days} day(s); {done.unmapped} of VENs without a prosumer; {done.purged} purged"
    )
    return 0


async def _purge(args: argparse.Namespace, service: Any) -> int:
    purged = await service.purge(timedelta(days=args.retention_days), _actor(), _now())
    print(f"purged {purged} day(s) older than {args.retention_days} days")
    return 0


async def _rotate(args: argparse.Namespace, service: Any) -> int:
    from dataservice import keys

    new = keys.load_file(args.new_key_file)
    if new.key_id == service.master.key_id:
        raise CliError("the new master key is the one in use")
    counts = await service.rotate_master(new, _actor(), _now())
    print(
        f"re-wrapped {counts['prosumer_keys']} prosumer and {counts['recipient_keys']} "
        f"recipient key(s) under {new.key_id}; use it from now on and destroy the old key"
    )
    return 0
