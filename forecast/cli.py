"""`flex4grid forecast`: backtest the load forecasters.

    flex4grid forecast backtest [--days D] [--households N] [--points P] [--seed S] [--plot F]
    flex4grid forecast backtest --db URL --ven VEN_ID [--ven ...]   (stored telemetry)

Prints WAPE, MAE and P10..P90 coverage per horizon for each model next to seasonal-naive, the
model the backtest makes the default, and writes a PNG plot. Progress goes to stderr.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
import typing
from datetime import UTC, datetime, timedelta

from forecast.series import ISPS_PER_DAY, LoadSeries

Subparsers: typing.TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"


def register(subparsers: Subparsers) -> None:
    forecast = subparsers.add_parser("forecast", help="load forecasting and congestion detection")
    commands = forecast.add_subparsers(
        dest="forecast_command", metavar="FORECAST_COMMAND", required=True
    )
    p = commands.add_parser("backtest", help="rolling-origin backtest of the forecasters")
    p.add_argument("--days", type=int, default=56, help="days of history (default 56)")
    p.add_argument(
        "--train-days",
        type=int,
        default=None,
        help="days before the first origin (default: half of --days, at least 15)",
    )
    p.add_argument(
        "--households", type=int, default=100, help="households per simulated point (default 100)"
    )
    p.add_argument("--points", type=int, default=3, help="simulated points (default 3)")
    p.add_argument("--seed", type=int, default=0, help="simulation seed (default 0)")
    p.add_argument(
        "--start",
        type=_date,
        default=datetime(2026, 3, 2, tzinfo=UTC),
        help="first day of the simulated history, UTC (default 2026-03-02)",
    )
    p.add_argument("--plot", default="forecast-backtest.png", help="PNG to write")
    p.add_argument("--db", help="backtest on the readings in this VTN database instead")
    p.add_argument(
        "--ven",
        action="append",
        default=[],
        help="with --db: a VEN under the point (repeat for each)",
    )
    p.set_defaults(handler=_backtest)


def _date(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def _progress(message: str) -> None:
    print(f"  {message}", file=sys.stderr, flush=True)


def _stored(url: str, ven_ids: list[str], days: int) -> LoadSeries:
    from forecast import series
    from forecast.store import Forecasts
    from vtn.store.db import Store

    async def load() -> LoadSeries:
        store = Store(url)
        try:
            end = series.floor_isp(datetime.now(UTC))
            start = end - timedelta(days=days)
            async with store.transaction() as tx:
                samples = await Forecasts(tx.connection).samples(ven_ids, start, end)
            members = sorted({s.member for s in samples})
            return series.build(samples, members, start, end)
        finally:
            await store.close()

    return asyncio.run(load())


def _backtest(args: argparse.Namespace) -> int:
    from forecast import backtest, models, simulate

    train_days = args.train_days or max(15, args.days // 2)
    began = time.perf_counter()
    if args.db:
        if not args.ven:
            print("forecast backtest: error: --db needs at least one --ven", file=sys.stderr)
            return 2
        histories = [_stored(args.db, args.ven, args.days)]
        where = f"stored readings of {len(args.ven)} VEN(s)"
    else:
        _progress(
            f"simulating {args.points} point(s) x {args.households} households, "
            f"{args.days} days, seed {args.seed}"
        )
        histories = simulate.simulate_points(
            args.points, args.start, args.days, households=args.households, seed=args.seed
        )
        where = f"{args.points} simulated point(s) of ~{args.households} households"
    if len(histories[0]) // ISPS_PER_DAY <= train_days:
        print(
            f"forecast backtest: error: {args.days} days leave nothing to test after "
            f"{train_days} training days",
            file=sys.stderr,
        )
        return 2
    result = backtest.run(
        histories, models.models(seed=args.seed), train_days=train_days, progress=_progress
    )
    print(
        f"backtest on {where}: {train_days} days training, "
        f"{len(histories[0]) // ISPS_PER_DAY - train_days} days of origins"
    )
    print(backtest.table(result))
    backtest.plot(result, args.plot)
    print(f"plot: {args.plot}  ({time.perf_counter() - began:.1f} s)")
    return 0
