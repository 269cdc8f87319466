"""Structured logs: one JSON object per line with the extra fields as keys."""

from __future__ import annotations

import json
import logging
import sys

from flex4grid.logs import JsonFormatter


def test_json_lines_carry_message_level_and_extra_fields() -> None:
    record = logging.makeLogRecord(
        {
            "name": "flex4grid.vtn",
            "levelno": logging.WARNING,
            "levelname": "WARNING",
            "msg": "%s refused with %d",
            "args": ("OadrPoll", 463),
            "ven_id": "ven-1",
        }
    )
    line = json.loads(JsonFormatter().format(record))
    assert line["message"] == "OadrPoll refused with 463"
    assert (line["level"], line["logger"], line["ven_id"]) == ("warning", "flex4grid.vtn", "ven-1")
    assert line["ts"].endswith("+00:00")


def test_exceptions_are_kept_in_one_line() -> None:
    try:
        raise ValueError("boom")
    except ValueError:
        record = logging.getLogger("x").makeRecord(
            "x",
            logging.ERROR,
            __file__,
            1,
            "failed",
            None,
            exc_info=sys.exc_info(),
        )
    text = JsonFormatter().format(record)
    assert "\n" not in text and "ValueError: boom" in json.loads(text)["exception"]
