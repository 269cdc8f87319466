"""`flex4grid aggregator run --config FILE`: the aggregator service (issue 9).

Reads the TOML configuration (`market.aggregator.config`), starts the downstream VTN and one
upstream VEN per node, and runs until SIGTERM/SIGINT. A problem with the configuration is one
line on stderr and exit code 1.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
import typing
from pathlib import Path

Subparsers: typing.TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"


def register(subparsers: Subparsers) -> None:
    aggregator = subparsers.add_parser(
        "aggregator", help="an aggregator: VENs to the DSO, a VTN for its prosumers"
    )
    commands = aggregator.add_subparsers(
        dest="aggregator_command", metavar="AGGREGATOR_COMMAND", required=True
    )
    p = commands.add_parser("run", help="run the aggregator service")
    p.add_argument("--config", type=Path, required=True, metavar="FILE", help="TOML settings")
    p.set_defaults(handler=_run)


def _run(args: argparse.Namespace) -> int:
    from market.aggregator.config import ConfigError, load  # the service's stack only when run

    try:
        config = load(args.config)
    except ConfigError as err:
        print(f"flex4grid aggregator: {err}", file=sys.stderr)
        return 1
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    asyncio.run(_serve(config))
    return 0


async def _serve(config: typing.Any) -> None:
    from market.aggregator.service import Aggregator

    service = Aggregator(config)
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, service.stop)
    task = asyncio.create_task(service.run())
    await service.ready.wait()
    assert service.downstream is not None
    logging.getLogger("flex4grid.aggregator").info(
        "downstream VTN at %s; %d node(s) upstream at %s",
        service.downstream.url, len(config.nodes), config.upstream.vtn_url,
    )  # fmt: skip
    await task
