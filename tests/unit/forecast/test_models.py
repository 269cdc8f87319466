"""The forecasters on simulated history: the learned model must beat seasonal-naive day-ahead."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from forecast import backtest, models, simulate
from forecast.features import Site
from forecast.models import QuantileGbm, SeasonalNaive, SimilarDay
from forecast.series import ISP, ISPS_PER_DAY, ISPS_PER_WEEK, LoadSeries

START = datetime(2026, 3, 2, tzinfo=UTC)  # a Monday
UTC_SITE = Site(tz="UTC")


@pytest.fixture(scope="module")
def history() -> list[LoadSeries]:
    return simulate.simulate_points(2, START, 42, households=150, seed=7)


def test_the_learned_model_beats_seasonal_naive_day_ahead(history: list[LoadSeries]) -> None:
    day_ahead = [h for h in backtest.HORIZONS if h.name == "day-ahead"]

    result = backtest.run(
        history, models.models(seed=7), train_days=28, refit_days=14, horizons=day_ahead
    )

    naive = result.score("seasonal-naive", "day-ahead")
    learned = result.score("lightgbm-quantile", "day-ahead")
    assert learned.count == naive.count == 2 * 14 * ISPS_PER_DAY
    assert learned.wape < 0.9 * naive.wape  # at least 10 % better, seeded
    assert learned.mae_kw < naive.mae_kw
    assert 0.5 < learned.coverage < 0.95  # P10..P90 is a real interval, not a point
    assert result.default_model != "seasonal-naive"


def test_quantiles_are_ordered_and_finite(history: list[LoadSeries]) -> None:
    known = history[0].until(START + timedelta(days=30, hours=12))
    predictor = QuantileGbm(rounds=30).fit([known])

    made = predictor.predict(known, known.end + timedelta(hours=12), 2 * ISPS_PER_DAY)

    p10, p50, p90 = (np.array(q) for q in (made.p10_kw, made.p50_kw, made.p90_kw))
    assert len(made) == 2 * ISPS_PER_DAY
    assert np.isfinite(p10).all() and np.isfinite(p90).all()
    assert (p10 <= p50).all() and (p50 <= p90).all()
    assert (p90 - p10).mean() > 0
    assert made.model == "lightgbm-quantile" and made.model_version.startswith("1+")
    assert made.issued_at == known.end


def test_one_fitted_model_serves_many_points_at_once(history: list[LoadSeries]) -> None:
    known = [h.until(START + timedelta(days=35)) for h in history]
    predictor = QuantileGbm(rounds=30, max_rows=10_000).fit(known)

    together = predictor.predict_many(known, known[0].end, ISPS_PER_DAY)
    alone = [predictor.predict(k, k.end, ISPS_PER_DAY) for k in known]

    assert together == alone
    assert together[0].p50_kw != together[1].p50_kw  # each point at its own level


def test_seasonal_naive_repeats_last_week() -> None:
    week = np.arange(ISPS_PER_WEEK, dtype=np.float64)
    history = LoadSeries(START, np.concatenate([week, week + 1000.0]))

    made = SeasonalNaive().fit([history]).predict(history, history.end, ISPS_PER_DAY)

    assert made.p50_kw == tuple((week[:ISPS_PER_DAY] + 1000.0).tolist())


def test_seasonal_naive_falls_back_to_an_earlier_day_in_a_gap() -> None:
    values = np.tile(np.arange(ISPS_PER_DAY, dtype=np.float64), 14)
    values[7 * ISPS_PER_DAY : 8 * ISPS_PER_DAY] = np.nan  # last week's Monday is missing
    history = LoadSeries(START, values)

    made = SeasonalNaive().fit([history]).predict(history, history.end, ISPS_PER_DAY)

    assert made.p50_kw == tuple(np.arange(ISPS_PER_DAY, dtype=np.float64).tolist())


def test_similar_day_uses_days_of_the_same_kind() -> None:
    # Working days carry 10 kW, weekends 50 kW; the target (a Monday) must come out at 10.
    days = [50.0 if d % 7 in (5, 6) else 10.0 for d in range(14)]
    history = LoadSeries(START, np.repeat(np.array(days), ISPS_PER_DAY))

    model = SimilarDay(site=UTC_SITE)  # days in UTC, like the data

    made = model.fit([history]).predict(history, history.end, ISPS_PER_DAY)
    saturday = history.end + timedelta(days=5)
    weekend = model.fit([history]).predict(history, saturday, ISPS_PER_DAY)

    assert set(made.p50_kw) == {10.0}
    assert set(weekend.p50_kw) == {50.0}


def test_a_holiday_is_forecast_like_a_sunday() -> None:
    days = [50.0 if d % 7 == 6 else 10.0 for d in range(14)]
    history = LoadSeries(START, np.repeat(np.array(days), ISPS_PER_DAY))
    holiday = (history.end + timedelta(days=1)).date()  # a Tuesday

    made = (
        SimilarDay(site=UTC_SITE, holidays=frozenset({holiday}))
        .fit([history])
        .predict(history, history.end + timedelta(days=1), ISPS_PER_DAY)
    )

    assert set(made.p50_kw) == {50.0}


@pytest.mark.parametrize(
    "model", [SeasonalNaive(), SimilarDay(), QuantileGbm(rounds=20)], ids=lambda m: m.name
)
def test_every_model_forecasts_through_a_day_long_gap(
    model: SeasonalNaive | SimilarDay | QuantileGbm, history: list[LoadSeries]
) -> None:
    values = history[0].until(START + timedelta(days=21)).power_kw.copy()
    values[-ISPS_PER_DAY - 10 :] = np.nan  # the last day and a bit never arrived
    gappy = LoadSeries(START, values)

    made = model.fit([gappy]).predict(gappy, gappy.end, ISPS_PER_DAY)

    assert np.isfinite(made.p50_kw).all()
    assert np.isfinite(made.p10_kw).all() and np.isfinite(made.p90_kw).all()


def test_a_forecast_cannot_start_inside_its_history(history: list[LoadSeries]) -> None:
    known = history[0].until(START + timedelta(days=14))
    with pytest.raises(ValueError, match="after the end of the history"):
        SeasonalNaive().fit([known]).predict(known, known.end - ISP, 4)


def test_too_little_history_to_learn_from_is_refused() -> None:
    short = LoadSeries(START, np.ones(3 * ISPS_PER_DAY))
    with pytest.raises(ValueError, match="too little history"):
        QuantileGbm().fit([short])
