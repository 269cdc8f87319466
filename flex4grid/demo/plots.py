"""The demo's pictures: each feeder's load without and with flexibility, its capacity, the event.

Two files per run in the output directory: `feeder-load.png` (matplotlib, Agg: no display
needed) and `feeder-load.html` (plotly with its JavaScript inlined, so it opens offline). One
panel per feeder; times are the site's local time.
"""

from __future__ import annotations

from datetime import datetime, tzinfo
from pathlib import Path

from flex4grid.demo.profiles import STEP
from flex4grid.demo.results import FeederResult, Outcome

PNG_NAME = "feeder-load.png"
HTML_NAME = "feeder-load.html"


def _times(result: FeederResult, zone: tzinfo) -> list[datetime]:
    # Each value is a period's mean: plot it at the period's middle.
    return [
        (result.start + i * STEP + STEP / 2).astimezone(zone).replace(tzinfo=None)
        for i in range(len(result.baseline_kw))
    ]


def _local(moment: datetime, zone: tzinfo) -> datetime:
    return moment.astimezone(zone).replace(tzinfo=None)


def write_png(outcome: Outcome, zone: tzinfo, path: Path, title: str) -> Path:
    import matplotlib

    matplotlib.use("Agg")  # files only, never a window
    import matplotlib.dates as mdates
    import matplotlib.pyplot as plt

    count = len(outcome.feeders)
    figure, axes = plt.subplots(count, 1, figsize=(11, 3.6 * count), sharex=True, squeeze=False)
    for axis, result in zip(axes[:, 0], outcome.feeders, strict=True):
        times = _times(result, zone)
        if result.window is not None:
            start, end = (_local(t, zone) for t in result.window)
            axis.axvspan(start, end, color="tab:orange", alpha=0.15, label="event window")
        axis.plot(times, result.baseline_kw, color="tab:gray", label="without flexibility")
        axis.plot(times, result.measured_kw, color="tab:blue", label="with flexibility (measured)")
        axis.axhline(result.capacity_kw, color="tab:red", linestyle="--", label="capacity")
        axis.set_ylabel("kW")
        axis.set_title(result.name)
        axis.grid(alpha=0.3)
        axis.legend(loc="upper left", fontsize="small")
    axes[-1, 0].xaxis.set_major_formatter(mdates.DateFormatter("%H:%M"))  # type: ignore[no-untyped-call]
    figure.suptitle(title)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path


def write_html(outcome: Outcome, zone: tzinfo, path: Path, title: str) -> Path:
    from plotly import graph_objects as go
    from plotly.subplots import make_subplots

    count = len(outcome.feeders)
    figure = make_subplots(
        rows=count,
        cols=1,
        shared_xaxes=True,
        subplot_titles=[f.name for f in outcome.feeders],
        vertical_spacing=0.08,
    )
    for row, result in enumerate(outcome.feeders, start=1):
        times = _times(result, zone)
        first = row == 1  # one legend entry per kind of line
        figure.add_trace(
            go.Scatter(
                x=times, y=result.baseline_kw, name="without flexibility", legendgroup="base",
                showlegend=first, line={"color": "gray"},
            ),
            row=row, col=1,
        )  # fmt: skip
        figure.add_trace(
            go.Scatter(
                x=times, y=result.measured_kw, name="with flexibility (measured)",
                legendgroup="flex", showlegend=first, line={"color": "royalblue"},
            ),
            row=row, col=1,
        )  # fmt: skip
        figure.add_trace(
            go.Scatter(
                x=[times[0], times[-1]], y=[result.capacity_kw] * 2, name="capacity",
                legendgroup="capacity", showlegend=first, mode="lines",
                line={"color": "firebrick", "dash": "dash"},
            ),
            row=row, col=1,
        )  # fmt: skip
        if result.window is not None:
            start, end = (_local(t, zone) for t in result.window)
            figure.add_vrect(
                x0=start, x1=end, fillcolor="orange", opacity=0.15, line_width=0,
                annotation_text="event", annotation_position="top left", row=row, col=1,
            )  # fmt: skip
        figure.update_yaxes(title_text="kW", row=row, col=1)
    figure.update_layout(title=title, height=380 * count, hovermode="x unified")
    figure.write_html(path, include_plotlyjs=True, full_html=True)
    return path


def write(outcome: Outcome, zone: tzinfo, directory: Path, title: str) -> tuple[Path, Path]:
    """Both files in `directory` (created if needed); their paths."""
    directory.mkdir(parents=True, exist_ok=True)
    return (
        write_png(outcome, zone, directory / PNG_NAME, title),
        write_html(outcome, zone, directory / HTML_NAME, title),
    )
