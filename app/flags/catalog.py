"""Every feature flag, declared here: its name, what it turns on, and its state until an operator
sets it (``/operators/flags``)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Flag:
    name: str
    description: str
    #: On for everyone until an operator sets it.
    default_on: bool


FLAGS = {
    flag.name: flag
    for flag in (
        Flag("webhooks", "Outbound webhooks in organization settings", default_on=True),
        Flag("report_downloads", "Download a report's numbers as CSV, below each chart", default_on=True),
    )
}
