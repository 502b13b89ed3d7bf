"""The figures of a run and how they read in bench/RESULTS.md: each as onebox's value,
the peer's, their ratio (onebox ÷ peer), the target and whether it is met, by how much
when it is not. Pure: nothing here measures."""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass, field

from bench.stats import Spread


class Goal(enum.Enum):
    RATIO_AT_LEAST = "≥"  # onebox ÷ peer must reach the bound
    RATIO_AT_MOST = "≤"  # onebox ÷ peer must stay under the bound
    VALUE_AT_MOST = "value ≤"  # onebox's own value must stay under the bound


@dataclass(frozen=True)
class Target:
    goal: Goal
    bound: float
    unit: str = ""

    def text(self) -> str:
        if self.goal is Goal.VALUE_AT_MOST:
            return f"≤ {number(self.bound)} {self.unit}".rstrip()
        return f"{self.goal.value} {self.bound:g}×"


@dataclass(frozen=True)
class Row:
    section: str
    figure: str
    unit: str
    onebox: Spread | None
    peer_name: str = ""
    peer: Spread | None = None
    target: Target | None = None
    note: str = ""

    @property
    def ratio(self) -> float | None:
        if self.onebox is None or self.peer is None or self.peer.median == 0:
            return None
        return self.onebox.median / self.peer.median

    def verdict(self) -> str:
        """'met', 'missed: …by how much', or '' when there is no target or no value."""
        if self.target is None or self.onebox is None:
            return ""
        bound = self.target.bound
        if self.target.goal is Goal.VALUE_AT_MOST:
            value = self.onebox.median
            if value <= bound:
                return "met"
            over = value - bound
            return f"missed by {number(over)} {self.unit} ({over / bound:.0%} over)"
        ratio = self.ratio
        if ratio is None:
            return ""
        if self.target.goal is Goal.RATIO_AT_LEAST:
            if ratio >= bound:
                return "met"
            return f"missed by {1 - ratio / bound:.0%} ({times(ratio)} for {times(bound)})"
        if ratio <= bound:
            return "met"
        return f"missed by {ratio / bound - 1:.0%} ({times(ratio)} for {times(bound)})"


@dataclass
class Section:
    """One benchmark's rows, what it found out in words, and a profile when it has one."""

    name: str
    title: str
    rows: list[Row] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    profile: list[str] = field(default_factory=list)
    skipped: str = ""

    def add(self, row: Row) -> Row:
        self.rows.append(row)
        return row


def number(value: float) -> str:
    """A figure with as many digits as it deserves."""
    size = abs(value)
    if size >= 1000:
        return f"{value:,.0f}"
    if size >= 100:
        return f"{value:.0f}"
    if size >= 10:
        return f"{value:.1f}"
    if size >= 1:
        return f"{value:.2f}"
    return f"{value:.3f}"


def times(ratio: float) -> str:
    return f"{ratio:.2f}×"


def cell(spread: Spread | None, unit: str) -> str:
    if spread is None:
        return "—"
    text = f"{number(spread.median)} {unit}".rstrip()
    if spread.count >= 3:
        text += f" [p10 {number(spread.p10)}, p90 {number(spread.p90)}, n={spread.count}]"
    return text


def table(rows: Iterable[Row]) -> list[str]:
    lines = [
        "| figure | onebox | peer | peer's value | ratio | target | verdict |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for row in rows:
        ratio = times(row.ratio) if row.ratio is not None else "—"
        target = row.target.text() if row.target else "—"
        lines.append(
            f"| {row.figure} | {cell(row.onebox, row.unit)} | {row.peer_name or '—'} "
            f"| {cell(row.peer, row.unit)} | {ratio} | {target} | {row.verdict() or '—'} |"
        )
    return lines


@dataclass
class Report:
    started: str
    minutes: float
    machine: dict[str, str]
    sections: list[Section]
    commands: list[str]
    conditions: list[str]

    def targets(self) -> list[Row]:
        return [row for s in self.sections for row in s.rows if row.target is not None]

    def markdown(self) -> str:
        lines = ["# Benchmarks: onebox side by side with the tools it stands in for", ""]
        lines += [
            f"Run of {self.started}, {self.minutes:.1f} minutes, written by `bench/run`. "
            "Ratios are onebox ÷ peer, on medians; brackets hold p10 and p90 over n runs.",
            "",
            "## How this run went",
            "",
        ]
        lines += [f"- {line}" for line in self.conditions]
        lines += ["", "## Targets", ""]
        lines += table(self.targets())
        for section in self.sections:
            lines += ["", f"## {section.title}", ""]
            if section.skipped:
                lines += [f"Not measured: {section.skipped}", ""]
            if section.rows:
                lines += table(section.rows) + [""]
            lines += [f"- {note}" for note in section.notes]
            if section.profile:
                lines += ["", "Profile of the gateway under this load (py-spy, top frames):", ""]
                lines += ["```", *section.profile, "```"]
        lines += ["", "## Machine", ""]
        lines += [f"- {key}: {value}" for key, value in self.machine.items()]
        lines += ["", "## Reproduce", "", "```", *self.commands, "```", ""]
        return "\n".join(lines)
