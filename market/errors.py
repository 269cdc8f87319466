"""Market errors: each carries the HTTP status the REST edge answers with (issue 8).

Raised where the rule lives (clearing, lifecycle, baselines, the service); turned into a reply
once, at the edge, as `{"error": message}` with `status`. Bad input raises before anything is
stored, so a refused request changes nothing.
"""

from __future__ import annotations

from typing import ClassVar


class MarketError(Exception):
    """Something the market refuses; `status` is the HTTP status of the reply."""

    status: ClassVar[int] = 400

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class BidRefused(MarketError):
    """A bid breaks a market rule (gate closed, foreign node, bad volume or price, ...)."""

    status = 422


class NotFound(MarketError):
    status = 404


class Forbidden(MarketError):
    """The caller may not see or touch this (another aggregator's node, bid or statement)."""

    status = 403


class Conflict(MarketError):
    """The request clashes with stored state (a prosumer already in a node, a duplicate id)."""

    status = 409


class InvalidTransition(MarketError):
    """A flex request cannot move from its status to the one asked for."""

    status = 409


class InsufficientData(MarketError):
    """Too few usable metered days or readings to compute a baseline."""

    status = 422
