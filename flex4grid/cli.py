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
SUBCOMMAND_MODULES: tuple[str, ...] = (
    "flex4grid.demo.cli",
    "oadr.cli",
    "certs.cli",
    "vtn.cli",
    "ven.cli",
    "market.cli",
    "market.aggregator.cli",
    "forecast.cli",
    "dataservice.cli",
    "conformance.cli",
    "console.cli",
)

# The top-level commands each module registers. When the command line names one, only its
# module is imported: a gateway running `flex4grid ven run` does not load the VTN's database
# stack (tens of MB on a small box).
COMMANDS_OF: dict[str, tuple[str, ...]] = {
    "oadr.cli": ("oadr",),
    "certs.cli": ("certs",),
    "vtn.cli": ("vtn", "event"),
    "ven.cli": ("ven",),
    "market.cli": ("market",),
    "market.aggregator.cli": ("aggregator",),
    "forecast.cli": ("forecast",),
    "dataservice.cli": ("data",),
    "conformance.cli": ("conformance",),
    "console.cli": ("console",),
    "flex4grid.demo.cli": ("demo",),
}


class _Registrar(Protocol):
    def __call__(self, subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None: ...


Handler = Callable[[argparse.Namespace], int]


def _modules_for(argv: Sequence[str]) -> tuple[str, ...]:
    first = next((arg for arg in argv if not arg.startswith("-")), None)
    chosen = tuple(m for m in SUBCOMMAND_MODULES if first in COMMANDS_OF.get(m, ()))
    return chosen or SUBCOMMAND_MODULES  # unknown or no command: load all, for --help


def build_parser(argv: Sequence[str] | None = None) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="flex4grid",
        description="Flex4Grid: prosumer flexibility for distribution grids over OpenADR 2.0b.",
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    modules = SUBCOMMAND_MODULES if argv is None else _modules_for(argv)
    for module_name in modules:
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
    arguments = list(sys.argv[1:] if argv is None else argv)
    try:
        parser = build_parser(arguments)
        args = parser.parse_args(arguments)
        handler = cast(Handler, args.handler)
        return handler(args)
    except KeyboardInterrupt:  # Ctrl-C before the command took over its signals (loading, ...)
        print("flex4grid: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
