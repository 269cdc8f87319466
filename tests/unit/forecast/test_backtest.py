"""The backtest's choice of default model, its table and its plot."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from forecast import backtest, simulate
from forecast.backtest import Score
from forecast.models import QuantileGbm, SeasonalNaive, SimilarDay


def score(model: str, wape: float, horizon: str = "day-ahead") -> Score:
    return Score(model=model, horizon=horizon, wape=wape, mae_kw=1.0, coverage=0.8, count=96)


@pytest.mark.parametrize(
    ("scores", "default"),
    [
        ([score("seasonal-naive", 0.3), score("similar-day", 0.25), score("gbm", 0.2)], "gbm"),
        (
            [score("seasonal-naive", 0.3), score("similar-day", 0.2), score("gbm", 0.25)],
            "similar-day",
        ),
        ([score("seasonal-naive", 0.2), score("gbm", 0.25)], "seasonal-naive"),
        (
            [
                score("seasonal-naive", 0.3),
                score("gbm", 0.1, horizon="intraday-1h"),
                score("gbm", 0.35),
            ],
            "seasonal-naive",
        ),
    ],
    ids=["learned-best", "similar-day-best", "none-beats-naive", "only-day-ahead-counts"],
)
def test_the_default_is_the_best_model_that_beats_naive_day_ahead(
    scores: list[Score], default: str
) -> None:
    assert backtest.choose_default(scores) == default


def test_a_small_backtest_scores_every_model_and_horizon_and_plots(tmp_path: Path) -> None:
    history = simulate.simulate_points(1, datetime(2026, 3, 2, tzinfo=UTC), 17, seed=3)
    seen: list[str] = []
    models = (SeasonalNaive(), SimilarDay(), QuantileGbm(rounds=10))

    result = backtest.run(history, models, train_days=15, progress=seen.append)
    backtest.plot(result, str(tmp_path / "plot.png"))

    assert {(s.model, s.horizon) for s in result.scores} == {
        (m.name, h.name) for m in models for h in backtest.HORIZONS
    }
    assert all(s.count > 0 and s.wape > 0 for s in result.scores)
    assert any(message.startswith("day 2/2") for message in seen)
    assert (tmp_path / "plot.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    text = backtest.table(result)
    assert "seasonal-naive" in text and "default model" in text


def test_nothing_to_test_is_refused() -> None:
    history = simulate.simulate_points(1, datetime(2026, 3, 2, tzinfo=UTC), 10, seed=3)
    with pytest.raises(ValueError, match="nothing to test"):
        backtest.run(history, (SeasonalNaive(),), train_days=10)
