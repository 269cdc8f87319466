"""The market's store: its tables on the VTN's metadata and repositories working inside one of
the VTN's transactions (`Market(tx)`), so a market step and its audit entry commit together."""

from __future__ import annotations

from dataclasses import dataclass

from market.store.grid import Aggregators, Grid, Nodes, PointResource
from market.store.trading import (
    Awards,
    Bids,
    Deliveries,
    Requests,
    Statements,
    StatusChange,
    StoredAward,
)
from vtn.store.db import Tx


@dataclass(frozen=True)
class Market:
    """The market's repositories on an open VTN transaction (`tx.audit` is beside them)."""

    tx: Tx
    grid: Grid
    aggregators: Aggregators
    nodes: Nodes
    requests: Requests
    bids: Bids
    awards: Awards
    deliveries: Deliveries
    statements: Statements

    @classmethod
    def on(cls, tx: Tx) -> Market:
        connection = tx.connection
        return cls(
            tx=tx,
            grid=Grid(connection),
            aggregators=Aggregators(connection),
            nodes=Nodes(connection),
            requests=Requests(connection),
            bids=Bids(connection),
            awards=Awards(connection),
            deliveries=Deliveries(connection),
            statements=Statements(connection),
        )


__all__ = ["Market", "PointResource", "StatusChange", "StoredAward"]
