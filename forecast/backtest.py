"""Rolling-origin backtest: how well each model would have forecast, horizon by horizon.

The history of one or more points is split at `train_days`; from there on, origin after origin,
each model forecasts from only what was known at the origin and is scored against what came:

- intraday 1 h / 6 h: origins at 00, 06, 12 and 18 UTC, the next 4 / 24 ISPs;
- day-ahead: the origin at 12:00 UTC the day before, the 96 ISPs of the next UTC day.

Models are refitted every `refit_days` on everything known by then (a DSO retrains weekly).
Scores: WAPE = sum |actual - P50| / sum |actual| (scale-free, the headline), MAE in kW, and the
share of actuals inside P10..P90 (should be near 80 %). ISPs without an actual are not scored.

The default model is chosen here, not by taste: the best day-ahead WAPE among the models that
beat seasonal-naive's, else seasonal-naive itself (`choose_default`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import numpy as np

from forecast.models import Forecast, Model, Predictor
from forecast.series import ISPS_PER_DAY, FloatArray, LoadSeries

BASELINE = "seasonal-naive"


@dataclass(frozen=True, slots=True)
class Horizon:
    name: str
    origins_h: tuple[int, ...]  # origin hours (UTC) within the day before the target's start
    lead: timedelta  # from the origin to the first target ISP
    length: int  # target ISPs


HORIZONS = (
    Horizon("intraday-1h", (0, 6, 12, 18), timedelta(0), 4),
    Horizon("intraday-6h", (0, 6, 12, 18), timedelta(0), 24),
    Horizon("day-ahead", (12,), timedelta(hours=12), ISPS_PER_DAY),
)


@dataclass(frozen=True, slots=True)
class Score:
    model: str
    horizon: str
    wape: float
    mae_kw: float
    coverage: float  # share of actuals within P10..P90
    count: int  # ISPs scored


@dataclass
class _Tally:
    abs_error: float = 0.0
    abs_actual: float = 0.0
    inside: int = 0
    count: int = 0

    def add(self, actual: FloatArray, made: Forecast) -> None:
        known = ~np.isnan(actual)
        p50 = np.asarray(made.p50_kw)[known]
        y = actual[known]
        self.abs_error += float(np.abs(y - p50).sum())
        self.abs_actual += float(np.abs(y).sum())
        low, high = np.asarray(made.p10_kw)[known], np.asarray(made.p90_kw)[known]
        self.inside += int(((y >= low) & (y <= high)).sum())
        self.count += int(known.sum())


@dataclass(frozen=True)
class Result:
    scores: tuple[Score, ...]
    default_model: str
    # Day-ahead P50 (and P10/P90) per model for the first point, for the plot.
    day_ahead: dict[str, list[Forecast]] = field(default_factory=dict)
    actual: LoadSeries | None = None

    def score(self, model: str, horizon: str) -> Score:
        return next(s for s in self.scores if s.model == model and s.horizon == horizon)


def choose_default(scores: Sequence[Score]) -> str:
    """The best day-ahead WAPE among the models that beat seasonal-naive; else the baseline."""
    day_ahead = {s.model: s.wape for s in scores if s.horizon == "day-ahead"}
    naive = day_ahead.get(BASELINE, float("inf"))
    better = {model: wape for model, wape in day_ahead.items() if wape < naive}
    return min(better, key=lambda m: better[m]) if better else BASELINE


Progress = Callable[[str], None]


def run(
    histories: Sequence[LoadSeries],
    models: Sequence[Model],
    *,
    train_days: int,
    refit_days: int = 7,
    horizons: Sequence[Horizon] = HORIZONS,
    progress: Progress = lambda _: None,
) -> Result:
    """Backtest `models` on `histories` (all the same start and length) after `train_days`."""
    if not histories:
        raise ValueError("nothing to backtest")
    first = histories[0]
    days = len(first) // ISPS_PER_DAY
    if days <= train_days:
        raise ValueError(f"{days} days of history leave nothing to test after {train_days}")
    tallies = {(m.name, h.name): _Tally() for m in models for h in horizons}
    day_ahead: dict[str, list[Forecast]] = {m.name: [] for m in models}
    fitted: dict[str, Predictor] = {}
    test_days = range(train_days, days)
    for step, day in enumerate(test_days):
        day_start = first.time_of(day * ISPS_PER_DAY)
        if step % refit_days == 0:
            cutoff = day_start - timedelta(hours=12)  # the earliest origin this week
            for model in models:
                progress(f"fitting {model.name} on data before {cutoff:%Y-%m-%d %H:%M}")
                fitted[model.name] = model.fit([h.until(cutoff) for h in histories])
        progress(f"day {step + 1}/{len(test_days)}: {day_start:%Y-%m-%d}")
        for horizon in horizons:
            for hour in horizon.origins_h:
                origin = _origin(day_start, horizon, hour)
                start = origin + horizon.lead
                for index, history in enumerate(histories):
                    known = history.until(origin)
                    actual = history.window(start, horizon.length)
                    for model in models:
                        made = fitted[model.name].predict(known, start, horizon.length)
                        tallies[(model.name, horizon.name)].add(actual, made)
                        if index == 0 and horizon.name == "day-ahead":
                            day_ahead[model.name].append(made)
    scores = tuple(
        Score(
            model=m,
            horizon=h,
            wape=t.abs_error / t.abs_actual if t.abs_actual else np.nan,
            mae_kw=t.abs_error / t.count if t.count else np.nan,
            coverage=t.inside / t.count if t.count else np.nan,
            count=t.count,
        )
        for (m, h), t in tallies.items()
    )
    return Result(scores, choose_default(scores), day_ahead, first)


def _origin(day_start: datetime, horizon: Horizon, hour: int) -> datetime:
    if horizon.lead >= timedelta(hours=12):
        return day_start - timedelta(days=1) + timedelta(hours=hour)  # the day before
    return day_start + timedelta(hours=hour)


def table(result: Result) -> str:
    """The scores as a text table, each model next to the baseline."""
    models = list(dict.fromkeys(s.model for s in result.scores))
    horizons = list(dict.fromkeys(s.horizon for s in result.scores))
    lines = [
        f"{'model':<20} {'horizon':<12} {'WAPE':>7} {'vs naive':>9} {'MAE kW':>8} "
        f"{'P10-P90':>8} {'ISPs':>7}"
    ]
    for horizon in horizons:
        naive = result.score(BASELINE, horizon).wape if BASELINE in models else np.nan
        for model in models:
            s = result.score(model, horizon)
            change = (s.wape / naive - 1) * 100 if naive else np.nan
            lines.append(
                f"{model:<20} {horizon:<12} {s.wape:>7.3f} {change:>+8.1f}% "
                f"{s.mae_kw:>8.2f} {s.coverage:>8.0%} {s.count:>7}"
            )
    lines.append(
        f"default model (best day-ahead WAPE that beats {BASELINE}): {result.default_model}"
    )
    return "\n".join(lines)


def plot(result: Result, path: str, *, days: int = 7) -> None:
    """Last `days` of day-ahead forecasts against the actual load, and WAPE per horizon."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, (top, bottom) = plt.subplots(2, 1, figsize=(12, 8), height_ratios=(2, 1))
    if result.actual is not None:
        for name, made in result.day_ahead.items():
            shown = made[-days:]
            if not shown:
                continue
            x = [f.time_of(i) for f in shown for i in range(len(f))]
            top.plot(x, [v for f in shown for v in f.p50_kw], label=f"{name} P50", lw=1)
            if name == result.default_model:
                top.fill_between(
                    x,
                    [v for f in shown for v in f.p10_kw],
                    [v for f in shown for v in f.p90_kw],
                    alpha=0.2,
                    label=f"{name} P10-P90",
                )
        shown = next(iter(result.day_ahead.values()))[-days:]
        if shown:
            actual = result.actual.window(shown[0].start, len(shown) * len(shown[0]))
            x = [shown[0].time_of(i) for i in range(len(actual))]
            top.plot(x, actual, color="black", lw=1.2, label="actual")
    top.set_ylabel("load kW")
    top.set_title("day-ahead forecasts, first point")
    top.legend(loc="upper right", fontsize=8)
    models = list(dict.fromkeys(s.model for s in result.scores))
    horizons = list(dict.fromkeys(s.horizon for s in result.scores))
    width = 0.8 / max(len(models), 1)
    for k, model in enumerate(models):
        bottom.bar(
            [i + k * width for i in range(len(horizons))],
            [result.score(model, h).wape for h in horizons],
            width,
            label=model,
        )
    bottom.set_xticks([i + width * (len(models) - 1) / 2 for i in range(len(horizons))], horizons)
    bottom.set_ylabel("WAPE")
    bottom.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)
