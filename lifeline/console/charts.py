"""The sentiment chart of one call as SVG geometry (the template draws it; no script needed)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

WIDTH, HEIGHT = 720, 200
_LEFT, _RIGHT, _TOP, _BOTTOM = 44, 12, 12, 28


@dataclass(frozen=True)
class Dot:
    """One message on the chart, with what its tooltip says."""

    x: float
    y: float
    score: float
    text: str


@dataclass(frozen=True)
class Series:
    """One party's line."""

    party: str
    points: str  # the polyline's "x,y x,y ..."
    dots: list[Dot]

    # The chart's words for those who cannot see it (the scores are in the transcript too).
    @property
    def first(self) -> float:
        return self.dots[0].score

    @property
    def last(self) -> float:
        return self.dots[-1].score

    @property
    def lowest(self) -> float:
        return min(d.score for d in self.dots)


@dataclass(frozen=True)
class Chart:
    """Everything the template needs to draw the chart."""

    width: int
    height: int
    series: list[Series]
    x_ticks: list[tuple[float, str]]
    y_ticks: list[tuple[float, str]]
    plot: tuple[float, float, float, float]  # left, top, right, bottom
    empty: bool = field(default=False)


def sentiment_chart(messages: Sequence[dict[str, Any]], duration_s: float) -> Chart:
    """Scores in [-1, 1] over the call's time (seconds from its start), one line per party."""
    left, top, right, bottom = _LEFT, _TOP, WIDTH - _RIGHT, HEIGHT - _BOTTOM
    scored = [m for m in messages if m.get("score") is not None]
    span = max([duration_s, 1.0] + [float(m.get("end") or m.get("start") or 0.0) for m in scored])

    def x(t: float) -> float:
        return round(left + (right - left) * min(max(t, 0.0), span) / span, 1)

    def y(score: float) -> float:
        return round(top + (bottom - top) * (1.0 - (min(max(score, -1.0), 1.0) + 1.0) / 2.0), 1)

    series: list[Series] = []
    for party in ("caller", "agent"):
        dots = [Dot(x(float(m.get("end") or m.get("start") or 0.0)), y(float(m["score"])),
                    float(m["score"]), str(m.get("text", ""))) for m in scored if m.get("party") == party]
        if dots:
            series.append(Series(party, " ".join(f"{d.x},{d.y}" for d in dots), dots))
    step = _tick_step(span)
    x_ticks = [(x(t), f"{int(t) // 60}:{int(t) % 60:02d}") for t in _range(0.0, span, step)]
    y_ticks = [(y(v), f"{v:+.1f}" if v else "0") for v in (1.0, 0.5, 0.0, -0.5, -1.0)]
    return Chart(WIDTH, HEIGHT, series, x_ticks, y_ticks, (left, top, right, bottom), empty=not series)


def _tick_step(span: float) -> float:
    for step in (5, 10, 15, 30, 60, 120, 300, 600, 1800):
        if span / step <= 8:
            return float(step)
    return 3600.0


def _range(start: float, stop: float, step: float) -> list[float]:
    values, value = [], start
    while value <= stop + 1e-9:
        values.append(value)
        value += step
    return values
