"""The parts `flex4grid vtn serve --with NAME` adds to the VTN, wired from server options.

`vtn/serve.py` names these factories by module path only, so the VTN imports none of the parts
built on it; this module, the application's composition root, may import them all. Each factory
gets the VTN's store and its options and returns a `vtn.app.Extension`, or raises ServeError with
a one-line reason the operator can act on.
"""

from __future__ import annotations

import os
from datetime import datetime, timedelta
from decimal import Decimal, InvalidOperation

from vtn.app import Extension
from vtn.serve import ServeError, ServeOptions
from vtn.store.db import Store

PRICE_CAP_ENV = "FLEX4GRID_FLEX_PRICE_CAP"  # EUR/kWh of the forecast's automatic flex requests
DEFAULT_PRICE_CAP = Decimal("0.50")
DIRECT_RATE_ENV = "FLEX4GRID_DIRECT_EVENT_RATE"  # EUR/kWh the console shows for direct events
FORECAST_INTERVAL = timedelta(minutes=15)  # one ISP: every point is re-forecast each ISP


def market(store: Store, options: ServeOptions) -> Extension:
    from market.http import MarketExtension

    return MarketExtension()


def forecast(store: Store, options: ServeOptions) -> Extension:
    """Forecast every congestion point of the market's grid model each ISP; a red window
    becomes a market flex request (the default policy), capped at $FLEX4GRID_FLEX_PRICE_CAP.

    The served predictor is seasonal-naive: it needs no training run before the first start. Fitted
    on no history its intervals have zero width (P90 = P50), so the traffic light compares the
    point forecast with capacity until a predictor fitted on this grid's readings is wired in.
    `flex4grid forecast backtest --db` shows whether the learned model beats it on this grid's
    history before an operator switches.
    """
    from forecast.http import ForecastExtension
    from forecast.models import SeasonalNaive
    from forecast.trigger import MarketRequests
    from market import service
    from market.accounts import Actor, MarketGrid
    from market.model import FlexRequest

    try:
        cap = Decimal(os.environ.get(PRICE_CAP_ENV, str(DEFAULT_PRICE_CAP)))
    except InvalidOperation:
        raise ServeError(f"${PRICE_CAP_ENV} must be a price in EUR/kWh, e.g. 0.50") from None
    dso = Actor("forecast")

    async def publish(request: FlexRequest, now: datetime) -> FlexRequest:
        return await service.create_request(store, request, actor=dso, now=now)

    return ForecastExtension(
        MarketGrid(store),
        SeasonalNaive().fit([]),
        market=MarketRequests(publish, price_cap_eur_per_kwh=cap),
        interval=FORECAST_INTERVAL,
    )


def data(store: Store, options: ServeOptions) -> Extension:
    from dataservice import jobs, keys
    from dataservice.crypto import CryptoError
    from dataservice.http import DataExtension

    try:
        master = keys.load()
    except (OSError, ValueError, CryptoError) as exc:
        raise ServeError(
            f"the data service needs its master key ($FLEX4GRID_DATA_KEY_FILE; make one with "
            f"`flex4grid data keygen FILE`): {exc}"
        ) from None
    return DataExtension(master, housekeeping=jobs.Housekeeping())


def console(store: Store, options: ServeOptions) -> Extension:
    """The web console; $FLEX4GRID_DIRECT_EVENT_RATE (EUR/kWh, default 0: no payment) is the
    operator's reward for energy a prosumer delivers in a direct DSO event."""
    from console.web import ConsoleExtension

    try:
        rate = Decimal(os.environ.get(DIRECT_RATE_ENV, "0"))
        return ConsoleExtension(
            secure_cookies=not options.insecure_http, direct_event_rate_eur_per_kwh=rate
        )
    except (InvalidOperation, ValueError):
        raise ServeError(f"${DIRECT_RATE_ENV} must be a price >= 0 in EUR/kWh, e.g. 0.10") from None
