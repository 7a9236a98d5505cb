"""Chart geometry for the server-rendered SVG charts: positions computed here, markup in
``templates/reports/_charts.html``. Values come from a report snapshot's data."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

WIDTH = 640
BAR_ROW = 30  # height of one horizontal bar's row


@dataclass
class Tick:
    value: int
    pos: float  # y for vertical charts, x for horizontal ones


@dataclass
class Bar:
    label: str
    value: int
    x: float
    y: float
    width: float
    height: float


@dataclass
class Series:
    name: str
    css: str
    points: list[tuple[float, float, int]]  # (x, y, value)

    @property
    def path(self) -> str:
        return " ".join(f"{x:.1f},{y:.1f}" for x, y, _ in self.points)


@dataclass
class Chart:
    id: str
    kind: str  # "vbar", "hbar" or "line"
    title: str
    desc: str
    x_label: str
    y_label: str
    width: int
    height: int
    left: float
    top: float
    right: float
    bottom: float
    ticks: list[Tick] = field(default_factory=list)
    bars: list[Bar] = field(default_factory=list)
    series: list[Series] = field(default_factory=list)
    categories: list[tuple[str, float]] = field(default_factory=list)  # (label, x)

    @property
    def plot_width(self) -> float:
        return self.right - self.left

    @property
    def plot_height(self) -> float:
        return self.bottom - self.top


def nice_ticks(maximum: int, count: int = 4) -> list[int]:
    """Round tick values from 0 to at least ``maximum`` (steps of 1, 2 or 5 x 10^n)."""
    if maximum <= 0:
        return [0, 1]
    raw = maximum / count
    magnitude = 10 ** math.floor(math.log10(raw)) if raw >= 1 else 1
    step = next(s * magnitude for s in (1, 2, 5, 10) if s * magnitude >= raw)
    step = max(1, int(step))
    top = step * math.ceil(maximum / step)
    return list(range(0, top + 1, step))


def _short(text: str, limit: int = 18) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def vertical_bars(chart_id, title, desc, x_label, y_label, items: list[tuple[str, int]]) -> Chart:
    chart = Chart(chart_id, "vbar", title, desc, x_label, y_label, WIDTH, 300, 52, 16, WIDTH - 12, 244)
    ticks = nice_ticks(max((value for _, value in items), default=0))
    scale = chart.plot_height / ticks[-1]
    chart.ticks = [Tick(value, chart.bottom - value * scale) for value in ticks]
    slot = chart.plot_width / max(1, len(items))
    for index, (label, value) in enumerate(items):
        height = value * scale
        x = chart.left + index * slot + slot * 0.15
        chart.bars.append(Bar(label, value, x, chart.bottom - height, slot * 0.7, height))
        chart.categories.append((label, chart.left + (index + 0.5) * slot))
    return chart


def horizontal_bars(chart_id, title, desc, x_label, y_label, items: list[tuple[str, int]]) -> Chart:
    height = 16 + BAR_ROW * max(1, len(items)) + 48
    chart = Chart(
        chart_id, "hbar", title, desc, x_label, y_label, WIDTH, height, 150, 16, WIDTH - 40, height - 48
    )
    ticks = nice_ticks(max((value for _, value in items), default=0))
    scale = chart.plot_width / ticks[-1]
    chart.ticks = [Tick(value, chart.left + value * scale) for value in ticks]
    for index, (label, value) in enumerate(items):
        y = chart.top + index * BAR_ROW
        chart.bars.append(Bar(_short(label), value, chart.left, y + 5, value * scale, BAR_ROW - 10))
    return chart


def lines(chart_id, title, desc, x_label, y_label, categories: list[str], series: list[tuple]) -> Chart:
    """``series``: (name, css class suffix, values) with one value per category."""
    chart = Chart(chart_id, "line", title, desc, x_label, y_label, WIDTH, 300, 52, 16, WIDTH - 12, 244)
    ticks = nice_ticks(max((max(values, default=0) for _, _, values in series), default=0))
    scale = chart.plot_height / ticks[-1]
    chart.ticks = [Tick(value, chart.bottom - value * scale) for value in ticks]
    slot = chart.plot_width / max(1, len(categories))
    xs = [chart.left + (index + 0.5) * slot for index in range(len(categories))]
    chart.categories = list(zip(categories, xs, strict=True))
    for name, css, values in series:
        points = [(x, chart.bottom - value * scale, value) for x, value in zip(xs, values, strict=True)]
        chart.series.append(Series(name, css, points))
    return chart


def _week(label: str) -> str:
    """``2026-W07`` -> ``W07`` (the table keeps the year)."""
    return label.split("-", 1)[-1]


def _days(value) -> str:
    return "none yet" if value is None else f"{value:g} days"


def _open_issues_by(chart_id, title, intro, y_label, items: list[tuple[str, int]]) -> Chart:
    """A bar for each group of open issues; the description lists every group with its count."""
    desc = f"{intro}: " + ", ".join(f"{label} {count}" for label, count in items) + "."
    return horizontal_bars(chart_id, title, desc, "Open issues", y_label, items)


def report_charts(data: dict) -> dict[str, Chart]:
    """The five charts of a snapshot, by the name their CSV download uses."""
    throughput = data["throughput"]
    done = sum(w["done"] for w in throughput)
    cycle = data["cycle_time"]
    burnup = data["burnup"]
    by_state = data["open_by_state"]
    by_assignee = data["open_by_assignee"]
    first, last = throughput[0]["week"], throughput[-1]["week"]
    return {
        "throughput": vertical_bars(
            "throughput",
            "Throughput per week",
            f"Issues moved to Done in each ISO week from {first} to {last}: {done} in all, "
            f"at most {max(w['done'] for w in throughput)} in one week.",
            "ISO week",
            "Issues done",
            [(_week(w["week"]), w["done"]) for w in throughput],
        ),
        "cycle-time": vertical_bars(
            "cycle-time",
            "Cycle time",
            f"How long the {cycle['count']} issues done from {first} to {last} took from first "
            f"In progress (or creation) to Done: median {_days(cycle['median_days'])}, "
            f"85th percentile {_days(cycle['p85_days'])}.",
            "Days from start to Done",
            "Issues",
            [(b["label"], b["count"]) for b in cycle["buckets"]],
        ),
        "burn-up": lines(
            "burn-up",
            "Burn-up",
            f"Issues created and issues done in total by the end of each week from {first} to {last}: "
            f"{burnup[-1]['created']} created and {burnup[-1]['done']} done by {last}.",
            "ISO week",
            "Issues (total)",
            [_week(w["week"]) for w in burnup],
            [
                ("Created", "created", [w["created"] for w in burnup]),
                ("Done", "done", [w["done"] for w in burnup]),
            ],
        ),
        "open-by-state": _open_issues_by(
            "open-by-state",
            "Open issues by state",
            "Open issues in each workflow state",
            "State",
            [(s["label"], s["count"]) for s in by_state],
        ),
        "open-by-assignee": _open_issues_by(
            "open-by-assignee",
            "Open issues by assignee",
            "Open issues per assignee (an issue with two assignees counts for both)",
            "Assignee",
            [(a["name"], a["count"]) for a in by_assignee],
        ),
    }
