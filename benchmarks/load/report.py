"""What the load benchmark reports: per-phase figures, the table, the JSON file and the plot.

Percentiles are nearest-rank over every successful request of the phase (all client processes
merged). Throughput is successful polls divided by the timed window (summed over segments; the
window of a segment ends when its last reply arrived). Server CPU is utime + stime of the server
process tree during the phase, per successful poll.
"""

from __future__ import annotations

import array
import math
import os
import platform
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

NOTE = (
    "client and server share the same machine ({cores} cores): the load generator's CPU is "
    "taken from the server's"
)


@dataclass(frozen=True)
class PhaseFigures:
    label: str
    signed: bool
    rate_per_s: float | None
    completed: int
    errors: dict[str, int]
    elapsed_s: float
    polls_per_s: float
    p50_ms: float
    p99_ms: float
    max_ms: float
    server_cpu_ms_per_poll: float
    server_cores_busy: float
    handshakes: int
    open_connections: int
    build_s: float
    segments: int
    ran_out: int
    readings_per_s: float = 0.0  # report ingest: stored readings per second
    readings_per_request: int = 0
    cdf_ms: list[tuple[float, float]] = field(default_factory=list)


@dataclass(frozen=True)
class FanOutFigures:
    """Pull: acknowledged = the VTN answered the VEN's oadrCreatedEvent with 200 (client clock).
    Push: acknowledged = the VTN committed the VEN's oadrCreatedEvent (watched in its database);
    `answered` counts the VENs' own side (the endpoint wrote its oadrCreatedEvent)."""

    label: str
    interval_s: float  # pull: the poll interval; push: 0
    vens: int
    acked: int
    all_acked_s: float | None  # event created -> last oadrCreatedEvent answered; None: not all
    median_ack_s: float | None
    target_s: float
    polls: int
    errors: dict[str, int]
    mode: str = "pull"  # "pull" | "push"
    pushes: int = 0  # push: POSTs the endpoints received (every service)
    handshakes: int = 0  # push: TLS connections the VTN opened to the endpoints
    resumed: int = 0  # push: of which resumed a TLS session the VTN kept from an earlier push
    answered: int = 0  # push: VENs whose endpoint answered an oadrDistributeEvent
    all_answered_s: float | None = None  # push: event created -> the last endpoint's answer
    server_cpu_s: float = 0.0  # the server's CPU seconds from the API call to the end
    cdf_s: list[tuple[float, float]] = field(default_factory=list)  # (s, fraction of the VENs)

    @property
    def met(self) -> bool:
        return self.all_acked_s is not None and self.all_acked_s <= self.target_s


@dataclass
class ScenarioFigures:
    name: str
    server: str  # "flex4grid" | "openleadr"
    database: str  # "sqlite" | "postgresql" | "memory"
    workers: int
    key: str
    vens: int
    distinct_keys: int
    clients: int
    concurrency: int
    setup: dict[str, Any]
    rss_idle_kb: int = 0  # server started, no VEN connected yet
    rss_connected_kb: int = 0  # every VEN registered and connected (one TLS connection each)
    rss_after_kb: int = 0  # after the timed phases, connections open
    rss_disconnected_kb: int = 0  # after the phases, every connection closed: idle VENs
    db_size_bytes: int | None = None
    phases: list[PhaseFigures] = field(default_factory=list)
    fan_outs: list[FanOutFigures] = field(default_factory=list)

    @property
    def rss_per_connected_ven_kb(self) -> float:
        """Server RSS growth per VEN from start to every VEN connected: its TLS connection
        (asyncio keeps a 256 KiB read buffer per SSL connection) and the server's one-off warm-up.
        A VEN without a connection holds no server memory: its state is rows in the database."""
        return (self.rss_connected_kb - self.rss_idle_kb) / self.vens if self.vens else 0.0


def percentile(sorted_values: Sequence[float], fraction: float) -> float:
    if not sorted_values:
        return math.nan
    rank = max(0, math.ceil(fraction * len(sorted_values)) - 1)
    return sorted_values[min(rank, len(sorted_values) - 1)]


def cdf(sorted_values: Sequence[float], points: int = 200) -> list[tuple[float, float]]:
    """(latency ms, fraction of requests at or below it), at most `points` steps."""
    n = len(sorted_values)
    if n == 0:
        return []
    step = max(1, n // points)
    indices = list(range(step - 1, n, step))
    if indices[-1] != n - 1:
        indices.append(n - 1)
    return [(round(sorted_values[i] * 1000, 3), round((i + 1) / n, 5)) for i in indices]


def merge_phase(
    label: str,
    signed: bool,
    rate_per_s: float | None,
    results: Sequence[dict[str, Any]],
    server_cpu_s: float,
    readings: int = 0,
) -> PhaseFigures:
    latencies = array.array("d")
    errors: dict[str, int] = {}
    for result in results:
        latencies.frombytes(result["latencies"])
        for key, count in result["errors"].items():
            errors[key] = errors.get(key, 0) + count
    ordered = sorted(latencies)
    completed = sum(r["completed"] for r in results)
    elapsed = max((r["elapsed_s"] for r in results), default=0.0)
    return PhaseFigures(
        label=label,
        signed=signed,
        rate_per_s=rate_per_s,
        completed=completed,
        errors=errors,
        elapsed_s=round(elapsed, 3),
        polls_per_s=round(completed / elapsed, 1) if elapsed else 0.0,
        p50_ms=round(percentile(ordered, 0.50) * 1000, 2),
        p99_ms=round(percentile(ordered, 0.99) * 1000, 2),
        max_ms=round(ordered[-1] * 1000, 2) if ordered else math.nan,
        server_cpu_ms_per_poll=round(server_cpu_s * 1000 / completed, 3) if completed else 0.0,
        server_cores_busy=round(server_cpu_s / elapsed, 2) if elapsed else 0.0,
        handshakes=sum(r["handshakes"] for r in results),
        open_connections=sum(r["open_connections"] for r in results),
        build_s=round(max((r["build_s"] for r in results), default=0.0), 2),
        segments=max((r["segments"] for r in results), default=0),
        ran_out=sum(r["ran_out"] for r in results),
        readings_per_s=round(completed * readings / elapsed, 1) if elapsed else 0.0,
        readings_per_request=readings,
        cdf_ms=cdf(ordered),
    )


def _fraction_cdf(
    delays: Sequence[float], total: int, points: int = 100
) -> list[tuple[float, float]]:
    """(seconds since the event was created, fraction of all `total` VENs acknowledged)."""
    return [(s / 1000, f * len(delays) / total) for s, f in cdf(delays, points)] if total else []


def merge_fan_out(
    label: str,
    interval_s: float,
    target_s: float,
    created: float,
    results: Sequence[dict[str, Any]],
    server_cpu_s: float = 0.0,
) -> FanOutFigures:
    delays = sorted(t - created for r in results for t in r["ack_times"])
    vens = sum(r["vens"] for r in results)
    return FanOutFigures(
        label=label,
        interval_s=interval_s,
        vens=vens,
        acked=len(delays),
        all_acked_s=round(delays[-1], 2) if delays and len(delays) == vens else None,
        median_ack_s=round(percentile(delays, 0.5), 2) if delays else None,
        target_s=target_s,
        polls=sum(r["polls"] for r in results),
        errors=_merge_errors(results),
        server_cpu_s=round(server_cpu_s, 2),
        cdf_s=_fraction_cdf(delays, vens),
    )


def merge_push_fan_out(
    label: str,
    target_s: float,
    created: float,
    samples: Sequence[tuple[float, int]],
    results: Sequence[dict[str, Any]],
    server_cpu_s: float,
) -> FanOutFigures:
    """`samples`: (seconds since the API call, answers the VTN had committed by then), from
    watching its database; `results`: what the endpoints saw."""
    vens = sum(r["vens"] for r in results)
    answered = sorted(t - created for r in results for t in r["ack_times"])
    acked = samples[-1][1] if samples else 0

    def first(count: int) -> float | None:
        return next((round(t, 2) for t, n in samples if n >= count), None)

    step = max(1, len(samples) // 100)
    return FanOutFigures(
        label=label,
        interval_s=0.0,
        vens=vens,
        acked=acked,
        all_acked_s=first(vens) if vens else None,
        median_ack_s=first(math.ceil(vens / 2)) if acked * 2 >= vens else None,
        target_s=target_s,
        polls=0,
        errors=_merge_errors(results),
        mode="push",
        pushes=sum(sum(r["pushes"].values()) for r in results),
        handshakes=sum(r["connections"] for r in results),
        resumed=sum(r["resumed"] for r in results),
        answered=len(answered),
        all_answered_s=round(answered[-1], 2) if answered and len(answered) == vens else None,
        server_cpu_s=round(server_cpu_s, 2),
        cdf_s=[(round(t, 3), n / vens) for t, n in [*samples[::step], samples[-1]]] if vens else [],
    )


def _merge_errors(results: Sequence[dict[str, Any]]) -> dict[str, int]:
    errors: dict[str, int] = {}
    for result in results:
        for key, count in result["errors"].items():
            errors[key] = errors.get(key, 0) + count
    return errors


def fan_out_table(scenarios: Sequence[ScenarioFigures]) -> str:
    lines = [
        "| scenario | fan-out | acknowledged | all acknowledged after | median | target | met "
        "| server CPU s | requests |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for s in scenarios:
        for f in s.fan_outs:
            after = "-" if f.all_acked_s is None else f"{f.all_acked_s:.1f} s"
            median = "-" if f.median_ack_s is None else f"{f.median_ack_s:.1f} s"
            if f.mode == "push":
                requests = (f"{f.pushes:,} pushes over {f.handshakes:,} new TLS connections "
                            f"({f.resumed:,} resumed); {f.answered:,} VENs answered")  # fmt: skip
            else:
                requests = f"{f.polls:,} polls"
            errors = sum(f.errors.values())
            if errors:
                requests += f"; {errors:,} errors"
            lines.append(
                f"| {s.name} | {f.label} | {f.acked:,}/{f.vens:,} | {after} | {median} | "
                f"{f.target_s:g} s | {'yes' if f.met else 'no'} | {f.server_cpu_s:.1f} | "
                f"{requests} |"
            )
    return "\n".join(lines) if len(lines) > 2 else ""


def machine() -> dict[str, Any]:
    model = "unknown"
    memory_kb = 0
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                memory_kb = int(line.split()[1])
    except OSError:
        pass
    load = Path("/proc/loadavg").read_text().split()[:3] if Path("/proc/loadavg").exists() else []
    return {
        "cpu": model,
        "cores": os.cpu_count(),
        "memory_gb": round(memory_kb / 1024 / 1024, 1),
        "python": platform.python_version(),
        "kernel": platform.release(),
        "load_average_at_start": load,
    }


# --- output ---------------------------------------------------------------------------------------

COLUMNS = (
    "scenario", "phase", "requests/s", "readings/s", "p50 ms", "p99 ms", "max ms", "errors",
    "srv ms CPU/req", "srv cores", "conns", "handshakes",
)  # fmt: skip


def rows(scenarios: Sequence[ScenarioFigures]) -> list[list[str]]:
    table = []
    for s in scenarios:
        for p in s.phases:
            readings = f"{p.readings_per_s:,.0f}" if p.readings_per_s else "-"
            table.append(
                [s.name, p.label, f"{p.polls_per_s:,.0f}", readings, f"{p.p50_ms:.1f}",
                 f"{p.p99_ms:.1f}", f"{p.max_ms:.0f}", str(sum(p.errors.values())),
                 f"{p.server_cpu_ms_per_poll:.2f}", f"{p.server_cores_busy:.2f}",
                 str(p.open_connections), str(p.handshakes)]
            )  # fmt: skip
    return table


def table(scenarios: Sequence[ScenarioFigures]) -> str:
    body = rows(scenarios)
    widths = [max(len(r[i]) for r in [list(COLUMNS), *body]) for i in range(len(COLUMNS))]
    lines = ["| " + " | ".join(c.ljust(w) for c, w in zip(COLUMNS, widths, strict=True)) + " |"]
    lines.append("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for row in body:
        lines.append("| " + " | ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) + " |")
    return "\n".join(lines)


def setup_table(scenarios: Sequence[ScenarioFigures]) -> str:
    lines = [
        "| scenario | VENs | keys | setup | connects/s (TLS handshake + 1st poll) "
        "| server RSS MB: start, all connected, after the phases, none connected "
        "| KB per connected VEN | DB MB |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for s in scenarios:
        setup = s.setup
        if "register_s" in setup:
            made = (f"{setup['registered']:,} registered in {setup['register_s']:.1f} s "
                    f"({setup['registrations_per_s']:.0f}/s)")  # fmt: skip
        elif "preload_s" in setup:
            made = f"preloaded into the database in {setup['preload_s']:.1f} s"
        else:
            made = "in-memory lookup"
        size = "-" if s.db_size_bytes is None else f"{s.db_size_bytes / 1e6:.1f}"
        mb = [x / 1024 for x in (s.rss_idle_kb, s.rss_connected_kb, s.rss_after_kb,
                                 s.rss_disconnected_kb)]  # fmt: skip
        lines.append(
            f"| {s.name} | {s.vens:,} | {s.distinct_keys:,} {s.key} | {made} | "
            f"{setup.get('handshakes_per_s', '-')} | "
            f"{mb[0]:.0f}, {mb[1]:.0f}, {mb[2]:.0f}, {mb[3]:.0f} | "
            f"{s.rss_per_connected_ven_kb:.0f} | {size} |"
        )
    return "\n".join(lines)


def ratios(scenarios: Sequence[ScenarioFigures]) -> list[dict[str, Any]]:
    """Ours against OpenLEADR on the same phase (signed or not, saturation), key type and VEN
    count."""
    theirs = {
        (s.vens, s.key, p.signed): p.polls_per_s
        for s in scenarios
        if s.server == "openleadr"
        for p in s.phases
        if p.rate_per_s is None and not p.readings_per_s
    }
    found = []
    for s in scenarios:
        if s.server != "flex4grid":
            continue
        for p in s.phases:
            reference = theirs.get((s.vens, s.key, p.signed))
            if p.rate_per_s is None and not p.readings_per_s and reference:
                found.append({
                    "scenario": s.name, "phase": p.label, "ours_polls_per_s": p.polls_per_s,
                    "openleadr_polls_per_s": reference,
                    "ratio": round(p.polls_per_s / reference, 2),
                })  # fmt: skip
    return found


def to_json(
    scenarios: Sequence[ScenarioFigures], meta: dict[str, Any], path: Path
) -> dict[str, Any]:
    import json

    document = {
        **meta,
        "scenarios": [
            {
                **asdict(s),
                "rss_per_connected_ven_kb": round(s.rss_per_connected_ven_kb, 1),
            }
            for s in scenarios
        ],
        "ratios": ratios(scenarios),
    }
    path.write_text(json.dumps(document, indent=1))
    return document


def plot(scenarios: Sequence[ScenarioFigures], path: Path, subtitle: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels, values, colors = [], [], []
    for s in scenarios:
        for p in s.phases:
            labels.append(f"{s.name}\n{p.label}")
            values.append(p.polls_per_s)
            colors.append("#1f77b4" if s.server == "flex4grid" else "#ff7f0e")
    fan_outs = [(s, f) for s in scenarios for f in s.fan_outs if f.cdf_s]
    height = max(5.0, 0.35 * len(labels) + 2)
    if fan_outs:
        figure, (bars, curves, spread) = plt.subplots(
            1, 3, figsize=(22, height), gridspec_kw={"width_ratios": [1.2, 1, 1]}
        )
        for s, f in fan_outs:
            spread.step(
                [0.0, *(x for x, _ in f.cdf_s)], [0.0, *(y for _, y in f.cdf_s)],
                where="post", label=f"{s.name} {f.label}", linewidth=1,
            )  # fmt: skip
            spread.axvline(f.target_s, linestyle=":", linewidth=0.8, color="grey")
        spread.set_xlabel("seconds since the admin API call (dotted: target)")
        spread.set_ylabel("fraction of the VENs acknowledged")
        spread.set_title("Event fan-out")
        spread.set_ylim(0, 1.02)
        spread.grid(True, alpha=0.3)
        spread.legend(fontsize=6, loc="lower right")
    else:
        figure, (bars, curves) = plt.subplots(1, 2, figsize=(16, height))
    positions = list(range(len(labels)))
    bars.barh(positions, values, color=colors)
    bars.set_yticks(positions, labels, fontsize=7)
    bars.invert_yaxis()
    bars.set_xlabel("successful polls/s (blue: Flex4Grid, orange: OpenLEADR)")
    bars.set_title("Throughput by scenario")
    for s in scenarios:
        for p in s.phases:
            if p.cdf_ms:
                xs = [x for x, _ in p.cdf_ms]
                ys = [y for _, y in p.cdf_ms]
                style = "-" if s.server == "flex4grid" else "--"
                curves.plot(xs, ys, style, label=f"{s.name} {p.label}", linewidth=1)
    curves.set_xscale("log")
    curves.set_xlabel("latency ms (log)")
    curves.set_ylabel("fraction of polls")
    curves.set_title("Latency CDF")
    curves.grid(True, which="both", alpha=0.3)
    if curves.get_legend_handles_labels()[0]:
        curves.legend(fontsize=6, loc="lower right")
    figure.suptitle(subtitle, fontsize=9)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
