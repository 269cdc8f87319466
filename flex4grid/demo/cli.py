"""`flex4grid demo`: run the pilot on this machine and show what flexibility did to the grid.

    flex4grid demo [--households 100] [--feeders 2] [--speed 900] [--seed 1] [--mode event|market]
                   [--out demo-output] [--keep DIR]

`--mode market`: the DSO buys the reduction on the local market from an aggregator that runs
in-process with its own VTN, where the households' gateways register (demo.marketplace).

Progress and a live status line go to stderr; the result table to stdout, then the paths of the
plots. Logs, the VTN's database, the certificates and each gateway's state go to a temporary
directory removed at the end, or to `--keep DIR`. Ctrl-C stops every VEN and the VTN and exits
with status 130.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import shutil
import signal
import sys
import tempfile
from datetime import date, timedelta, tzinfo
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

if TYPE_CHECKING:
    from flex4grid.demo.pilot import Live

EXIT_INTERRUPTED = 130
# Default clock per mode. In market mode each household polls the aggregator's VTN and reports
# every 15 simulated minutes (it steers from fresh telemetry): at 900x a hundred of them ask
# more of two cores than they give, and the aggregator's VTN falls behind.
SPEEDS = {"event": 900.0, "market": 300.0}


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "demo",
        help="run a pilot on this machine: VTN, VENs, households, a feeder overload",
        description=(
            "A pilot on one machine: a throwaway PKI, the VTN and one VEN gateway per household "
            "over real HTTPS on 127.0.0.1, simulated devices on BDEW/pvlib profiles, one "
            "simulated day; the DSO asks for flexibility where the forecast overloads a feeder."
        ),
    )
    parser.add_argument("--households", type=_positive_int, default=100, help="default 100")
    parser.add_argument("--feeders", type=_positive_int, default=2, help="default 2")
    parser.add_argument(
        "--speed",
        type=_positive_float,
        default=None,
        help=(
            "simulated seconds per real second (default 900: a day in 96 s; in market mode 300,"
            " a day in 5 min, as three tiers of HTTPS on one machine need more real time)"
        ),
    )
    parser.add_argument("--seed", type=int, default=1, help="households are drawn from it")
    parser.add_argument(
        "--mode",
        choices=("event", "market"),
        default="event",
        help=(
            "how the DSO asks for flexibility: a direct OpenADR event, or a flex request on the"
            " local market that an aggregator bids on, cleared, dispatched and settled"
        ),
    )
    parser.add_argument(
        "--capacity-kw",
        type=_positive_float,
        default=None,
        help="every feeder's capacity (default: sized so the forecast day overloads it)",
    )
    parser.add_argument(
        "--day",
        type=_day,
        default=None,
        help="YYYY-MM-DD within a year of today (default: tomorrow)",
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=Path("demo-output"),
        help="where the plots go (default ./demo-output)",
    )
    parser.add_argument(
        "--keep",
        type=Path,
        default=None,
        metavar="DIR",
        help="keep the database, certificates, gateway state and logs in DIR (new or empty)",
    )
    parser.set_defaults(handler=main)


# How far the simulated day may lie from today: the pilot's certificates (valid 2 years from the
# earlier of the two, `pilot.certificates_from`) must hold at the real time (TLS) and on the
# simulated clock (the VTN's trust store).
DAY_RANGE = timedelta(days=365)


def _day(text: str) -> date:
    day = date.fromisoformat(text)
    if abs(day - date.today()) > DAY_RANGE:
        raise argparse.ArgumentTypeError(f"must be within {DAY_RANGE.days} days of today")
    return day


def _positive_int(text: str) -> int:
    value = int(text)
    if value <= 0:
        raise argparse.ArgumentTypeError("must be a positive whole number")
    return value


def _positive_float(text: str) -> float:
    value = float(text)
    if value <= 0:
        raise argparse.ArgumentTypeError("must be positive")
    return value


def main(args: argparse.Namespace) -> int:
    keep: Path | None = args.keep
    if keep is not None and keep.exists() and any(keep.iterdir()):
        print(f"flex4grid demo: --keep {keep} is not empty", file=sys.stderr)
        return 2
    workdir = keep or Path(tempfile.mkdtemp(prefix="flex4grid-demo-"))
    workdir.mkdir(parents=True, exist_ok=True)
    # The VTN's and every VEN's log go to the file: the terminal shows only progress.
    handler = logging.FileHandler(workdir / "demo.log")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    saved_handlers, saved_level = root.handlers[:], root.level
    root.handlers[:] = [handler]
    root.setLevel(logging.INFO)
    try:
        return asyncio.run(_run(args, workdir, sys.stderr, sys.stdout))
    finally:
        root.handlers[:] = saved_handlers
        root.setLevel(saved_level)
        handler.close()
        if keep is None:
            shutil.rmtree(workdir, ignore_errors=True)
        else:
            extra = ", aggregator/" if args.mode == "market" else ""
            print(f"kept: {workdir} (vtn.db, pki/, vens/{extra}, demo.log)", file=sys.stderr)


async def _run(args: argparse.Namespace, workdir: Path, err: TextIO, out: TextIO) -> int:
    from flex4grid.demo import marketplace, pilot, plots, report, results

    config = pilot.PilotConfig(
        households=args.households,
        feeders=args.feeders,
        speed=args.speed or SPEEDS[args.mode],
        seed=args.seed,
        mode=args.mode,
        day=args.day,
        capacity_kw=args.capacity_kw,
    )
    zone = config.site.zone
    day = config.day or pilot.tomorrow(config.site)
    print(
        f"flex4grid demo: {config.households} households on {config.feeders} feeder(s) near"
        f" {config.site.name}, {day}, one day in about {86400 / config.speed:.0f} s"
        f" (clock {config.speed:g}x); logs in {workdir / 'demo.log'}",
        file=err,
    )
    progress = _Progress(err, zone, config.households)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    try:
        collected = await pilot.run(config, workdir, stop, progress.tick)
    except RuntimeError as exc:
        progress.end()
        print(f"flex4grid demo: {exc}; see {workdir / 'demo.log'}", file=err)
        return 1
    finally:
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(signum)
    progress.end()
    if collected is None:
        print("flex4grid demo: stopped; every VEN and the VTN shut down", file=err)
        return EXIT_INTERRUPTED
    title = (
        f"Flex4Grid demo: {config.households} households near {config.site.name}, {day}"
        f" (seed {config.seed})"
    )
    print(title, file=out)
    print(
        report.table(
            collected.outcome,
            zone,
            runtime_s=collected.runtime_s,
            registration_s=collected.registration_s,
            speed=config.speed,
        ),
        file=out,
    )
    if collected.trades:
        print("\n" + report.market_table(collected.trades), file=out)
    png, html = plots.write(collected.outcome, zone, args.out, title)
    figures = args.out / "summary.json"
    summary = results.summary(collected.outcome) | {
        "runtime_s": collected.runtime_s,
        "registration_s": collected.registration_s,
        "speed": config.speed,
        "seed": config.seed,
        "day": day.isoformat(),
    }
    if config.mode == "market":
        summary["market"] = marketplace.summary(collected.trades)
    figures.write_text(json.dumps(summary, indent=2) + "\n")
    print(
        f"\nplot: {png.resolve()}\nplot: {html.resolve()}\nfigures: {figures.resolve()}", file=out
    )
    return 0


class _Progress:
    """The live status line: redrawn in place on a terminal; otherwise a line every 5 % of the
    simulated day and at each change of phase."""

    def __init__(self, stream: TextIO, zone: tzinfo, households: int) -> None:
        self.stream = stream
        self.zone = zone
        self.households = households
        self.tty = stream.isatty()
        self.last: tuple[str, int] | None = None
        self.width = 0

    def tick(self, live: Live) -> None:
        from flex4grid.demo import report

        now = live.clock()
        line = report.status_line(
            now=now,
            start=live.start,
            zone=self.zone,
            phase=live.phase,
            online=live.online(),
            households=self.households,
            acknowledged=live.acknowledged,
            targeted=live.targeted,
            loads=[(p.name, live.feeder_load_kw(p.name), p.capacity_kw) for p in live.plans],
        )
        if self.tty:
            self.stream.write("\r" + line.ljust(self.width))
            self.width = len(line)
            self.stream.flush()
            return
        mark = (live.phase, int((now - live.start) / timedelta(days=1) * 20))
        if mark != self.last:
            self.last = mark
            print(line, file=self.stream, flush=True)

    def end(self) -> None:
        if self.tty and self.width:
            self.stream.write("\n")
            self.stream.flush()
