"""Settlement of a cleared flex request: what each aggregator is paid or owes (USEF FlexSettlement).

Pure: the request, its awards and their measured deliveries go in; one `Statement` per
aggregator comes out. Per award and block with a non-zero award (our readings of issue 8):

- awarded_kwh = awarded_kw x block hours; delivered_kwh = delivered_kw x block hours, as
  measured (it may be negative: load went up). A block with no `Delivery` (no usable telemetry)
  counts as nothing delivered: delivery must be shown to be paid.
- paid_kwh = min(max(delivered_kwh, 0), awarded_kwh): energy beyond the award is not bought, and
  payment is never negative. payment_eur = paid_kwh x the award's price.
- shortfall_kwh = awarded_kwh - paid_kwh. Only the part beyond the tolerance is penalized:
  penalized_kwh = max(0, shortfall_kwh - tolerance x awarded_kwh); penalty_eur = penalized_kwh x
  the penalty price (default: the award's own price). The tolerance is a fraction of the award
  per block (0.1 = 10 %).
- Lines keep exact Decimal amounts; only totals are quantized to cents with ROUND_HALF_EVEN, so
  rounding happens once per statement rather than once per line. net_eur = payment_eur -
  penalty_eur of the rounded totals, so the printed statement adds up.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Final

from market.model import (
    CENT,
    AggregatorId,
    Award,
    BidId,
    Delivery,
    FlexRequest,
    NodeId,
    RequestId,
)

ZERO: Final = Decimal(0)
DEFAULT_TOLERANCE: Final = Decimal("0.1")
CSV_COLUMNS: Final = (
    "bid_id",
    "node_id",
    "block",
    "block_start",
    "price_eur_per_kwh",
    "baseline_kw",
    "actual_kw",
    "awarded_kwh",
    "delivered_kwh",
    "paid_kwh",
    "payment_eur",
    "shortfall_kwh",
    "penalty_eur",
)


@dataclass(frozen=True, slots=True, kw_only=True)
class StatementLine:
    """One award in one block. Amounts are exact; see the module docstring for each formula."""

    bid_id: BidId
    node_id: NodeId
    block: int
    block_start: datetime
    price_eur_per_kwh: Decimal
    awarded_kwh: Decimal
    delivered_kwh: Decimal
    paid_kwh: Decimal
    payment_eur: Decimal
    shortfall_kwh: Decimal
    penalty_eur: Decimal
    baseline_kw: Decimal | None = None  # as measured for this award; None: no delivery data
    actual_kw: Decimal | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Statement:
    """One aggregator's settlement of one request for one period (JSON and CSV)."""

    aggregator_id: AggregatorId
    request_id: RequestId
    period: str
    lines: tuple[StatementLine, ...]
    methods: tuple[str, ...]  # the baseline methods (with parameters) the deliveries used
    tolerance: Decimal
    awarded_kwh: Decimal
    delivered_kwh: Decimal
    paid_kwh: Decimal
    shortfall_kwh: Decimal
    payment_eur: Decimal  # cents, ROUND_HALF_EVEN of the exact line sum
    penalty_eur: Decimal  # cents, ROUND_HALF_EVEN of the exact line sum
    net_eur: Decimal  # payment_eur - penalty_eur

    def to_json(self) -> dict[str, object]:
        """A JSON-ready dict: Decimals as strings (exact), datetimes as ISO 8601."""
        return {
            "aggregator_id": self.aggregator_id,
            "request_id": self.request_id,
            "period": self.period,
            "methods": list(self.methods),
            "tolerance": str(self.tolerance),
            "lines": [
                {name: _text(getattr(line, name)) for name in CSV_COLUMNS} for line in self.lines
            ],
            "totals": {
                "awarded_kwh": str(self.awarded_kwh),
                "delivered_kwh": str(self.delivered_kwh),
                "paid_kwh": str(self.paid_kwh),
                "shortfall_kwh": str(self.shortfall_kwh),
                "payment_eur": str(self.payment_eur),
                "penalty_eur": str(self.penalty_eur),
                "net_eur": str(self.net_eur),
            },
        }

    def to_csv(self) -> str:
        """One row per line, then a TOTAL row with the rounded totals."""
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(CSV_COLUMNS)
        for line in self.lines:
            writer.writerow([_text(getattr(line, name)) for name in CSV_COLUMNS])
        writer.writerow(
            [
                "TOTAL",
                "",
                "",
                "",
                "",
                "",
                "",
                str(self.awarded_kwh),
                str(self.delivered_kwh),
                str(self.paid_kwh),
                str(self.payment_eur),
                str(self.shortfall_kwh),
                str(self.penalty_eur),
            ]
        )
        return out.getvalue()


def _text(value: object) -> str:
    if isinstance(value, datetime):
        return value.isoformat()
    if value is None:
        return ""
    return str(value)


def settle(
    request: FlexRequest,
    awards: Sequence[Award],
    deliveries: Sequence[Delivery],
    tolerance: Decimal = DEFAULT_TOLERANCE,
    penalty_eur_per_kwh: Decimal | None = None,
    *,
    period: str,
) -> list[Statement]:
    """One statement per aggregator with non-zero awards in `request`, by aggregator id."""
    if not ZERO <= tolerance <= 1:
        raise ValueError(f"tolerance {tolerance} is not a fraction between 0 and 1")
    by_block: Mapping[tuple[BidId, int], Delivery] = {(d.bid_id, d.block): d for d in deliveries}
    hours = request.block_hours
    lines_of: dict[AggregatorId, list[StatementLine]] = {}
    methods_of: dict[AggregatorId, set[str]] = {}
    for award in awards:
        lines = lines_of.setdefault(award.aggregator_id, [])
        methods = methods_of.setdefault(award.aggregator_id, set())
        for block, awarded_kw in enumerate(award.awarded_kw):
            if awarded_kw <= 0:
                continue
            delivery = by_block.get((award.bid_id, block))
            if delivery is not None:
                methods.add(delivery.method)
            line = _line(
                award,
                block,
                request.block_start(block),
                awarded_kw * hours,
                ZERO if delivery is None else delivery.delivered_kw * hours,
                tolerance,
                penalty_eur_per_kwh,
            )
            if delivery is not None:
                line = replace(line, baseline_kw=delivery.baseline_kw, actual_kw=delivery.actual_kw)
            lines.append(line)
    return [
        _statement(
            request,
            aggregator,
            tuple(lines_of[aggregator]),
            tuple(sorted(methods_of[aggregator])),
            tolerance,
            period,
        )
        for aggregator in sorted(lines_of)
        if lines_of[aggregator]  # an award of nothing in every block settles nothing
    ]


def _line(
    award: Award,
    block: int,
    block_start: datetime,
    awarded_kwh: Decimal,
    delivered_kwh: Decimal,
    tolerance: Decimal,
    penalty_eur_per_kwh: Decimal | None,
) -> StatementLine:
    price = award.price_eur_per_kwh
    paid_kwh = min(max(delivered_kwh, ZERO), awarded_kwh)
    shortfall_kwh = awarded_kwh - paid_kwh
    penalized_kwh = max(ZERO, shortfall_kwh - tolerance * awarded_kwh)
    penalty_price = price if penalty_eur_per_kwh is None else penalty_eur_per_kwh
    return StatementLine(
        bid_id=award.bid_id,
        node_id=award.node_id,
        block=block,
        block_start=block_start,
        price_eur_per_kwh=price,
        awarded_kwh=awarded_kwh,
        delivered_kwh=delivered_kwh,
        paid_kwh=paid_kwh,
        payment_eur=paid_kwh * price,
        shortfall_kwh=shortfall_kwh,
        penalty_eur=penalized_kwh * penalty_price,
    )


def _statement(
    request: FlexRequest,
    aggregator: AggregatorId,
    lines: tuple[StatementLine, ...],
    methods: tuple[str, ...],
    tolerance: Decimal,
    period: str,
) -> Statement:
    payment = sum((line.payment_eur for line in lines), ZERO).quantize(CENT, ROUND_HALF_EVEN)
    penalty = sum((line.penalty_eur for line in lines), ZERO).quantize(CENT, ROUND_HALF_EVEN)
    return Statement(
        aggregator_id=aggregator,
        request_id=request.request_id,
        period=period,
        lines=lines,
        methods=methods,
        tolerance=tolerance,
        awarded_kwh=sum((line.awarded_kwh for line in lines), ZERO),
        delivered_kwh=sum((line.delivered_kwh for line in lines), ZERO),
        paid_kwh=sum((line.paid_kwh for line in lines), ZERO),
        shortfall_kwh=sum((line.shortfall_kwh for line in lines), ZERO),
        payment_eur=payment,
        penalty_eur=penalty,
        net_eur=payment - penalty,
    )
