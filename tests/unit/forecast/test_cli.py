"""`flex4grid forecast backtest` prints the scores next to seasonal-naive and writes its plot."""

from __future__ import annotations

from pathlib import Path

import pytest

from flex4grid import cli


def test_backtest_on_simulated_history(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    plot = tmp_path / "backtest.png"

    code = cli.main(
        [
            "forecast",
            "backtest",
            "--days",
            "17",
            "--train-days",
            "15",
            "--points",
            "1",
            "--households",
            "50",
            "--seed",
            "4",
            "--plot",
            str(plot),
        ]
    )

    out, err = capsys.readouterr()
    assert code == 0
    for model in ("seasonal-naive", "similar-day", "lightgbm-quantile"):
        assert out.count(model) >= 3  # one row per horizon
    assert "day-ahead" in out and "default model" in out
    assert "day 2/2" in err  # progress on stderr
    assert plot.read_bytes()[:4] == b"\x89PNG"


def test_backtest_refuses_a_history_too_short_to_test(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = cli.main(
        [
            "forecast",
            "backtest",
            "--days",
            "10",
            "--train-days",
            "15",
            "--plot",
            str(tmp_path / "x.png"),
        ]
    )

    assert code == 2
    assert "nothing to test" in capsys.readouterr().err


def test_stored_backtest_needs_the_vens(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["forecast", "backtest", "--db", "sqlite:///nowhere.db"]) == 2
    assert "--ven" in capsys.readouterr().err
