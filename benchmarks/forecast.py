"""Day-ahead forecasts for 1,000 congestion points: how long the DSO's forecast run takes.

    .venv/bin/python -m benchmarks.forecast [--points 1000] [--days 35] [--fit-points 50]

Simulates `points` feeders (50..150 % of 100 households, PV on 10..50 % of them, seeded),
fits the learned quantile model once on `fit-points` of them (the model is global: one fit
serves every point), then times, for all points at the day-ahead origin (12:00 UTC for the next
UTC day, 96 ISPs): the learned model in one batch (`predict_many`), the same model point by
point, seasonal-naive point by point (the baseline), and the traffic lights for all of them.
Printed: seconds for each step and milliseconds per point.
"""

from __future__ import annotations

import argparse
import time
from datetime import UTC, datetime, timedelta

from forecast import congestion, simulate
from forecast.models import QuantileGbm, SeasonalNaive
from forecast.series import ISPS_PER_DAY


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--points", type=int, default=1000)
    parser.add_argument("--days", type=int, default=35)
    parser.add_argument("--fit-points", type=int, default=50)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    start = datetime(2026, 3, 2, tzinfo=UTC)
    began = time.perf_counter()
    points = simulate.simulate_points(args.points, start, args.days, seed=args.seed)
    simulated_s = time.perf_counter() - began

    target = start + timedelta(days=args.days - 1)  # the last simulated day
    origin = target - timedelta(hours=12)
    known = [p.until(origin) for p in points]

    began = time.perf_counter()
    predictor = QuantileGbm(seed=args.seed).fit(known[: args.fit_points])
    fit_s = time.perf_counter() - began

    predictor.predict_many(known[:2], target, ISPS_PER_DAY)  # warm the calendar cache
    began = time.perf_counter()
    batch = predictor.predict_many(known, target, ISPS_PER_DAY)
    batch_s = time.perf_counter() - began

    began = time.perf_counter()
    for history in known:
        predictor.predict(history, target, ISPS_PER_DAY)
    single_s = time.perf_counter() - began

    naive = SeasonalNaive().fit(known[:1])
    began = time.perf_counter()
    for history in known:
        naive.predict(history, target, ISPS_PER_DAY)
    naive_s = time.perf_counter() - began

    began = time.perf_counter()
    red = 0
    for made, history in zip(batch, known, strict=True):
        capacity = [float(max(history.power_kw[-ISPS_PER_DAY * 7 :])) * 0.9] * len(made)
        red += len(congestion.red_windows("cp", made, capacity))
    lights_s = time.perf_counter() - began

    n = len(known)
    print(f"{n} congestion points, {args.days} days of 15-minute history each, day-ahead 96 ISPs")
    print(f"  simulate history                  {simulated_s:8.2f} s")
    print(f"  fit LightGBM P10/P50/P90 on {args.fit_points:>4}  {fit_s:8.2f} s   (once, global)")
    print(f"  forecast, learned, one batch      {batch_s:8.2f} s   {batch_s / n * 1e3:6.2f} ms/pt")
    print(
        f"  forecast, learned, point by point {single_s:8.2f} s   {single_s / n * 1e3:6.2f} ms/pt"
    )
    print(f"  forecast, seasonal-naive          {naive_s:8.2f} s   {naive_s / n * 1e3:6.2f} ms/pt")
    print(
        f"  traffic lights + red windows      {lights_s:8.2f} s   ({red} windows at 90 % of peak)"
    )
    print(f"  day-ahead run (batch forecast + lights): {batch_s + lights_s:.2f} s")


if __name__ == "__main__":
    main()
