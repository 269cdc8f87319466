"""The `flex4grid` console command.

Each package owns its subcommand in its own `cli.py` with `register(subparsers)`; this module
only collects them. A subcommand whose package does not exist yet is simply not listed.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Callable, Sequence
from typing import Protocol, cast

# Packages that provide a subcommand, in the order `flex4grid --help` lists them.
SUBCOMMAND_MODULES: tuple[str, ...] = ("oadr.cli", "certs.cli", "vtn.cli", "ven.cli")


class _Registrar(Protocol):
    def __call__(self, subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None: ...


Handler = Callable[[argparse.Namespace], int]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="flex4grid",
        description="Flex4Grid: prosumer flexibility for distribution grids over OpenADR 2.0b.",
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for module_name in SUBCOMMAND_MODULES:
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name == module_name:
                continue  # that package has no CLI yet
            raise
        register = cast(_Registrar, module.register)
        register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    handler = cast(Handler, args.handler)
    return handler(args)


if __name__ == "__main__":
    sys.exit(main())
