"""A prosumer's reward for one event: what its delivered energy earned it, in EUR (issue 14,
"the events they took part in and what each achieved (kW, kWh, reward)"). Pure.

Delivered energy is the page's own measure (`prosumer_pages.achieved`): mean power during the
event against the same length just before, times the event's hours; a prosumer whose load went
up delivered nothing (never a negative reward).

- A market event (an award dispatched as an OpenADR event, `market.dispatch`) is paid to the
  aggregator's virtual end node. The prosumer's reward is the node's payment for that award
  shared pro rata to the delivered kWh of the node's members:
  reward = node payment x mine_kwh / sum of the members' delivered kWh.
  Settled: the node's payment is the settlement statement's `payment_eur` over the award's lines
  (penalties stay with the aggregator, who made the bid). Not settled yet: an estimate, marked
  so, of what settlement would pay on the same measure: min(members' kWh, awarded kWh) x the
  award's price.
- A direct DSO event (created by the operator, not from a market award) pays the operator's
  incentive rate (`ConsoleExtension.direct_event_rate_eur_per_kwh`): reward = rate x mine_kwh.
  The default rate is 0: no payment for direct events, and the page says so.

Money is Decimal EUR, rounded once to cents (ROUND_HALF_EVEN, as settlement rounds).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, Decimal
from enum import StrEnum

CENT = Decimal("0.01")
ZERO = Decimal(0)
KWH_QUANTUM = Decimal("0.000001")  # telemetry-derived kWh to 1 mWh: floats made exact


class Basis(StrEnum):
    SETTLED = "settled"  # the node's settled payment, shared pro rata
    ESTIMATED = "estimated"  # the award not settled yet: what settlement would pay
    DIRECT = "direct"  # a direct DSO event at the operator's rate
    UNPAID = "unpaid"  # a direct DSO event while the operator's rate is 0


@dataclass(frozen=True, slots=True, kw_only=True)
class Reward:
    amount_eur: Decimal  # cents
    basis: Basis
    delivered_kwh: Decimal  # mine, >= 0

    @property
    def estimated(self) -> bool:
        return self.basis is Basis.ESTIMATED


def delivered_kwh(reduction_kwh: float | None) -> Decimal:
    """A measured reduction as exact kWh; no measurement or more load counts as nothing."""
    if reduction_kwh is None or reduction_kwh <= 0:
        return ZERO
    return Decimal(repr(reduction_kwh)).quantize(KWH_QUANTUM, rounding=ROUND_HALF_EVEN)


def cents(amount_eur: Decimal) -> Decimal:
    return amount_eur.quantize(CENT, rounding=ROUND_HALF_EVEN)


def share(node_eur: Decimal, mine_kwh: Decimal, members_kwh: Sequence[Decimal]) -> Decimal:
    """My pro rata part of the node's money (exact); nothing delivered by anyone: nothing."""
    total = sum(members_kwh, ZERO)
    if total <= 0 or mine_kwh <= 0:
        return ZERO
    return node_eur * mine_kwh / total


def market(
    *,
    mine_kwh: Decimal,
    members_kwh: Sequence[Decimal],
    settled_payment_eur: Decimal | None,
    awarded_kwh: Decimal,
    price_eur_per_kwh: Decimal,
) -> Reward:
    """A market event's reward; `settled_payment_eur` None: not settled yet (an estimate).

    `members_kwh` holds every member's delivered kWh, mine included.
    """
    if settled_payment_eur is not None:
        node_eur, basis = settled_payment_eur, Basis.SETTLED
    else:
        node_eur = min(sum(members_kwh, ZERO), awarded_kwh) * price_eur_per_kwh
        basis = Basis.ESTIMATED
    return Reward(
        amount_eur=cents(share(node_eur, mine_kwh, members_kwh)),
        basis=basis,
        delivered_kwh=mine_kwh,
    )


def direct(*, mine_kwh: Decimal, rate_eur_per_kwh: Decimal) -> Reward:
    """A direct DSO event's reward at the operator's incentive rate."""
    if rate_eur_per_kwh <= 0:
        return Reward(amount_eur=cents(ZERO), basis=Basis.UNPAID, delivered_kwh=mine_kwh)
    return Reward(
        amount_eur=cents(rate_eur_per_kwh * mine_kwh), basis=Basis.DIRECT, delivered_kwh=mine_kwh
    )


def node_payment(statement: Mapping[str, object], bid_id: str) -> Decimal:
    """The payment of one award in an issued statement (`Statement.to_json`): its lines' sum."""
    lines = statement.get("lines")
    if not isinstance(lines, list):
        return ZERO
    return sum(
        (
            Decimal(str(line["payment_eur"]))
            for line in lines
            if isinstance(line, dict) and line.get("bid_id") == bid_id
        ),
        ZERO,
    )
