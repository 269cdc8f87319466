"""`flex4grid demo`'s arguments: a day the pilot's certificates cannot cover is refused up front."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from flex4grid.cli import build_parser


@pytest.mark.parametrize("offset_days", [-400, 400])
def test_a_day_more_than_a_year_away_is_refused(
    offset_days: int, capsys: pytest.CaptureFixture[str]
) -> None:
    day = date.today() + timedelta(days=offset_days)
    with pytest.raises(SystemExit) as stop:
        build_parser().parse_args(["demo", "--day", day.isoformat()])
    assert stop.value.code == 2
    assert "must be within 365 days of today" in capsys.readouterr().err


@pytest.mark.parametrize("offset_days", [-365, -1, 0, 1, 365])
def test_a_day_within_a_year_is_taken(offset_days: int) -> None:
    day = date.today() + timedelta(days=offset_days)
    assert build_parser().parse_args(["demo", "--day", day.isoformat()]).day == day
