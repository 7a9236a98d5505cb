"""The issue lists' filters: read from the query string (each filter may repeat: any of its values
matches, and every filter must match), checked against the organization's people, labels and
projects, shown as chips, and written back as the list's shareable address."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field, replace
from urllib.parse import urlencode

from app.models.work import PRIORITY_LABELS

SORTS = {
    "updated": "Recently updated",
    "created": "Newest",
    "priority": "Priority",
    "due": "Due date",
    "number": "Number",
}
#: The filters that take several values, by query parameter, with the name their chips show.
MULTI = {
    "state": "State",
    "priority": "Priority",
    "assignee": "Assignee",
    "label": "Label",
    "project": "Project",
}
#: At most this many values of one filter are read (a longer address is cut, visibly).
MAX_VALUES = 30
#: Query parameters that name no filter: a page of the list and a chip's remove button.
PAGE_ARGS = ("after", "before")


def _values(given: list[str]) -> list[str]:
    """The distinct non-empty values of a repeated parameter, in the order given."""
    found = []
    for value in given:
        value = value.strip()[:40]
        if value and value not in found:
            found.append(value)
    return found


@dataclass
class IssueFilters:
    states: list[str] = field(default_factory=list)
    priorities: list[int] = field(default_factory=list)
    assignees: list[str] = field(default_factory=list)  # user ids, "me", "none"
    labels: list[str] = field(default_factory=list)  # label ids
    projects: list[str] = field(default_factory=list)  # project keys (the organization's list)
    text: str = ""
    sort: str = "updated"
    #: What the address asked for that the list could not use, in words (shown above the list).
    ignored: list[str] = field(default_factory=list, compare=False)

    @classmethod
    def from_args(cls, args) -> IssueFilters:
        """The filters an address (or a form) names; a chip's ``remove=<filter>:<value>`` is left out."""
        removed = set(args.getlist("remove"))
        given = {
            "state": args.getlist("state"),
            "priority": args.getlist("priority"),
            "assignee": args.getlist("assignee"),
            "label": args.getlist("label"),
            "project": args.getlist("project"),
        }
        wanted = {name: [v for v in _values(given[name]) if f"{name}:{v}" not in removed] for name in MULTI}
        ignored = []
        for name, values in wanted.items():
            if len(values) > MAX_VALUES:
                ignored.append(
                    f"Only the first {MAX_VALUES} values of the {MULTI[name].lower()} filter are used."
                )
                wanted[name] = values[:MAX_VALUES]
        priorities = []
        for value in wanted["priority"]:
            if value.isdigit() and int(value) in PRIORITY_LABELS:
                priorities.append(int(value))
            else:
                ignored.append(f"There is no priority “{value}”: it was ignored.")
        sort = args.get("sort", "updated")
        if sort not in SORTS:
            ignored.append(f"There is no sort order “{sort[:40]}”: the list is sorted by the latest update.")
        return cls(
            states=wanted["state"],
            priorities=priorities,
            assignees=wanted["assignee"],
            labels=wanted["label"],
            projects=wanted["project"],
            text=args.get("q", "").strip()[:200],
            sort=sort if sort in SORTS else "updated",
            ignored=ignored,
        )

    def known(self, people, labels, projects=None, states=()) -> IssueFilters:
        """These filters without the states, people, labels and projects the list does not have
        (a state no project of the list has, a label of another organization, someone who
        left), each named in ``ignored``; ``states`` are the list's state keys."""
        member_ids = {person.id for person in people} | {"me", "none"}
        label_ids = {label.id for label in labels}
        assignees = [a for a in self.assignees if a in member_ids]
        kept_labels = [label for label in self.labels if label in label_ids]
        ignored = list(self.ignored)
        kept_states = [s for s in self.states if s in states]
        ignored += [f"There is no state “{s}”: it was ignored." for s in self.states if s not in states]
        if len(assignees) < len(self.assignees):
            ignored.append("An assignee who is not a member of this organization was ignored.")
        if len(kept_labels) < len(self.labels):
            ignored.append("A label that is not one of this organization's was ignored.")
        kept_projects = []
        if projects is not None:
            project_keys = {project.key for project in projects}
            kept_projects = [key for key in self.projects if key in project_keys]
            ignored += [
                f"There is no project “{key}”: it was ignored."
                for key in self.projects
                if key not in project_keys
            ]
        return replace(
            self,
            states=kept_states,
            assignees=assignees,
            labels=kept_labels,
            projects=kept_projects,
            ignored=ignored,
        )

    def as_dict(self) -> dict:
        """The filters as a saved view keeps them (and as the address names them)."""
        return {
            "state": self.states,
            "priority": [str(p) for p in self.priorities],
            "assignee": self.assignees,
            "label": self.labels,
            "project": self.projects,
            "q": self.text,
            "sort": self.sort,
        }

    def query_pairs(self) -> list[tuple[str, str]]:
        """The address's parameters: each value of each filter, the text, a sort other than the default."""
        pairs = [
            (name, value) for name, values in self.as_dict().items() if name in MULTI for value in values
        ]
        if self.text:
            pairs.append(("q", self.text))
        if self.sort != "updated":
            pairs.append(("sort", self.sort))
        return pairs

    def url(self, path: str, **page) -> str:
        """The list at ``path`` with these filters (and ``after`` or ``before`` a row, if given)."""
        query = urlencode(self.query_pairs() + [(k, v) for k, v in page.items() if v])
        return f"{path}?{query}" if query else path

    def cache_token(self) -> str:
        """A digest of every filter value (a cut of the values would let two filter sets share rows)."""
        return hashlib.sha256(json.dumps(self.as_dict(), sort_keys=True).encode()).hexdigest()


@dataclass(frozen=True)
class Chip:
    """A chosen filter value as the list shows it: ``Label: bug`` with a button that removes it."""

    name: str  # the query parameter
    value: str
    title: str  # the filter's name
    label: str  # the value in words

    @property
    def remove(self) -> str:
        return f"{self.name}:{self.value}"


def chips(filters: IssueFilters, people, labels, projects=(), state_labels=None) -> list[Chip]:
    """The chips of the chosen values, filter by filter, in the order they were chosen."""
    people_names = {"me": "Me", "none": "Nobody", **{person.id: person.name for person in people}}
    label_names = {label.id: label.name for label in labels}
    project_names = {project.key: project.key for project in projects}
    found = [Chip("state", s, "State", (state_labels or {}).get(s, s)) for s in filters.states]
    found += [Chip("priority", str(p), "Priority", PRIORITY_LABELS[p]) for p in filters.priorities]
    found += [Chip("assignee", a, "Assignee", people_names.get(a, a)) for a in filters.assignees]
    found += [Chip("label", x, "Label", label_names.get(x, x)) for x in filters.labels]
    found += [Chip("project", k, "Project", project_names.get(k, k)) for k in filters.projects]
    return found
