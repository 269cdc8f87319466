"""The demo's words: the live status line while it runs, and the table at the end. Pure text."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta, tzinfo
from decimal import Decimal
from typing import TYPE_CHECKING

from flex4grid.demo.results import FeederResult, Outcome

if TYPE_CHECKING:  # the market's classes only for the types: the table stays plain text
    from flex4grid.demo.marketplace import Settled

BAR_WIDTH = 24


def status_line(
    *,
    now: datetime,
    start: datetime,
    zone: tzinfo,
    phase: str,
    online: int,
    households: int,
    acknowledged: int,
    targeted: int,
    loads: list[tuple[str, float, float]],  # (feeder, kW now, capacity kW)
) -> str:
    """One line: a bar for the simulated day, then VENs online, answers, feeder loads."""
    done = min(max((now - start) / timedelta(days=1), 0.0), 1.0)
    filled = round(done * BAR_WIDTH)
    bar = "#" * filled + "-" * (BAR_WIDTH - filled)
    feeders = "  ".join(
        f"{name} {load:5.0f}/{capacity:.0f} kW{' OVER' if load > capacity else ''}"
        for name, load, capacity in loads
    )
    answered = f"{acknowledged}/{targeted}" if targeted else "-"
    return (
        f"[{bar}] {now.astimezone(zone):%H:%M} {phase:<11} VENs online {online}/{households}"
        f"  event acks {answered}  {feeders}"
    )


def _window(result: FeederResult, zone: tzinfo) -> str:
    if result.window is None:
        return "none (no overload forecast)"
    start, end = (t.astimezone(zone) for t in result.window)
    return f"{start:%H:%M}-{end:%H:%M}"


def _change(before: float, after: float) -> str:
    if before == 0:
        return f"{after:.1f} kW"
    return f"{after:.1f} kW ({(after - before) / before * 100:+.1f} %)"


def table(
    outcome: Outcome, zone: tzinfo, *, runtime_s: float, registration_s: float, speed: float
) -> str:
    """The result table: per feeder, then the pilot as a whole."""
    rows: list[tuple[str, list[str]]] = [
        ("capacity", [f"{f.capacity_kw:.0f} kW" for f in outcome.feeders]),
        ("event window", [_window(f, zone) for f in outcome.feeders]),
        (
            "peak in window, no flex",
            [f"{f.peak_kw(f.baseline_kw, f.in_window):.1f} kW" for f in outcome.feeders],
        ),
        (
            "peak in window, with flex",
            [
                _change(
                    f.peak_kw(f.baseline_kw, f.in_window), f.peak_kw(f.measured_kw, f.in_window)
                )
                for f in outcome.feeders
            ],
        ),
        ("day peak, no flex", [f"{f.peak_kw(f.baseline_kw):.1f} kW" for f in outcome.feeders]),
        (
            "day peak, with flex",
            [_change(f.peak_kw(f.baseline_kw), f.peak_kw(f.measured_kw)) for f in outcome.feeders],
        ),
        ("energy shifted out of window", [f"{f.shifted_kwh:.1f} kWh" for f in outcome.feeders]),
        ("rebound in the 4 h after", [f"{f.rebound_kwh:.1f} kWh" for f in outcome.feeders]),
        (
            "energy over capacity",
            [
                f"{f.overload_kwh(f.baseline_kw):.1f} -> {f.overload_kwh(f.measured_kw):.1f} kWh"
                for f in outcome.feeders
            ],
        ),
        (
            "telemetry vs forecast before ask",
            [f"±{f.tracking_error_kw:.1f} kW mean" for f in outcome.feeders],
        ),
        ("telemetry coverage", [f"{f.coverage * 100:.1f} %" for f in outcome.feeders]),
    ]
    label_width = max(len(label) for label, _ in rows) + 2
    widths = [
        max(len(f.name), *(len(values[i]) for _, values in rows)) + 2
        for i, f in enumerate(outcome.feeders)
    ]
    names = zip(outcome.feeders, widths, strict=True)
    lines = [" " * label_width + "".join(f.name.ljust(w) for f, w in names)]
    for label, values in rows:
        cells = "".join(v.ljust(w) for v, w in zip(values, widths, strict=True))
        lines.append(label.ljust(label_width) + cells)
    answered = outcome.answered
    outs = sum(not a.opted_in for a in answered)
    reasons = ", ".join(f"{rule} {n}" for rule, n in outcome.opt_out_reasons.most_common())
    p50, p99 = outcome.latency_s(0.50), outcome.latency_s(0.99)
    latency = (
        "-" if p50 is None or p99 is None else f"p50 {p50 * 1000:.0f} ms, p99 {p99 * 1000:.0f} ms"
    )
    lines += [
        "",
        f"VENs registered              {outcome.registered}/{outcome.households}",
        f"event acknowledged           {len(answered)}/{len(outcome.answers)} targeted VENs",
        f"opt-out rate                 {outcome.opt_out_rate * 100:.0f} % ({outs} of"
        f" {len(answered)}{': ' + reasons if reasons else ''})",
        f"event delivery latency       {latency} (created -> oadrCreatedEvent, real time)",
        f"readings stored at the VTN   {outcome.readings}",
        f"runtime                      {runtime_s:.0f} s real (VENs registered after"
        f" {registration_s:.0f} s), clock {speed:g}x",
    ]
    return "\n".join(lines)


def market_table(trades: Sequence[Settled]) -> str:
    """The market's part: per feeder, the request, what was bought and how it was settled."""
    lines = ["local flexibility market (one aggregator, one node per feeder)"]
    for trade in trades:
        blocks = " ".join(f"{kw:.1f}" for kw in trade.cleared_kw)
        lines += [
            f"{trade.feeder}: request {trade.request_id}, {trade.bids} bid(s),"
            f" node answered {trade.node_opt or '-'}",
            f"  cleared volume               {blocks} kW per 15-min block"
            f" = {trade.cleared_kwh:.2f} kWh",
            f"  cost at the award prices     {trade.cost_eur:.2f} EUR",
        ]
        statement = trade.statement
        if statement is None:
            lines.append("  settlement                   none (nothing was dispatched)")
            continue
        totals = statement["totals"]
        lines += [
            f"  delivered (vs {', '.join(statement['methods']) or 'no baseline'})"
            f"  {Decimal(totals['delivered_kwh']):.2f} kWh of"
            f" {Decimal(totals['awarded_kwh']):.2f} kWh awarded",
            f"  settlement                   payment {totals['payment_eur']} EUR,"
            f" penalty {totals['penalty_eur']} EUR, net {totals['net_eur']} EUR",
        ]
    return "\n".join(lines)
