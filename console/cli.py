"""`flex4grid console user create|list`: console accounts, made on the VTN's host.

The password is read from the terminal (twice), or from standard input with --password-stdin
(scripts); it is never a command-line argument, which other users could see in `ps`.
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import sys
import typing
from datetime import UTC, datetime

from console import auth
from console.accounts import AccountError, Role
from console.store import ConsoleStore
from vtn import serve as server
from vtn.store.db import Store

Subparsers: typing.TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"


def register(subparsers: Subparsers) -> None:
    console = subparsers.add_parser("console", help="the web console's accounts")
    commands = console.add_subparsers(dest="console_command", metavar="COMMAND", required=True)
    user = commands.add_parser("user", help="console users")
    sub = user.add_subparsers(dest="user_command", metavar="USER_COMMAND", required=True)
    p = sub.add_parser("create", help="a console user (operator, aggregator or prosumer)")
    p.add_argument("--db", default=server.DEFAULT_DATABASE, metavar="URL")
    p.add_argument("--username", required=True)
    p.add_argument("--role", choices=[r.value for r in Role], required=True)
    p.add_argument(
        "--subject", metavar="ID", help="aggregator: its aggregator id; prosumer: its venID"
    )
    p.add_argument("--password-stdin", action="store_true", help="read the password from stdin")
    p.set_defaults(handler=_create)
    p = sub.add_parser("list", help="console users (never their passwords)")
    p.add_argument("--db", default=server.DEFAULT_DATABASE, metavar="URL")
    p.set_defaults(handler=_list)


def _password(from_stdin: bool) -> str:
    if from_stdin:
        return sys.stdin.readline().rstrip("\n")
    first = getpass.getpass("Password: ")
    if first != getpass.getpass("Again: "):
        raise AccountError("the two passwords differ")
    return first


async def _with_store(url: str) -> Store:
    store = Store(url)
    await server.prepare_database(store)
    return store


def _create(args: argparse.Namespace) -> int:
    async def work() -> None:
        store = await _with_store(args.db)
        try:
            await auth.create_account(
                store,
                args.username,
                password,
                Role(args.role),
                args.subject,
                actor="cli",
                now=datetime.now(UTC),
            )
        finally:
            await store.close()

    try:
        password = _password(args.password_stdin)
        asyncio.run(work())
    except AccountError as err:
        print(f"flex4grid console user create: error: {err}", file=sys.stderr)
        return 1
    print(f"user {args.username} ({args.role}) created")
    return 0


def _list(args: argparse.Namespace) -> int:
    async def work() -> None:
        store = await _with_store(args.db)
        try:
            async with store.transaction() as tx:
                for account in await ConsoleStore(tx.connection).accounts():
                    print(f"{account.username}\t{account.role.value}\t{account.subject or '-'}")
        finally:
            await store.close()

    asyncio.run(work())
    return 0
