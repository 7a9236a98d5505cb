"""Forms as a browser sees and submits them, parsed from a page with the standard library.

``parse_forms(html, page_url)`` finds every ``<form>`` with its controls;
``ParsedForm.submission()`` builds the data a browser sends when the form is submitted with
its first submit button, following the HTML standard's rules for the form data set:
disabled and nameless controls are left out, checkboxes and radios only when checked (value
``on`` by default), each selected option of a select (a single select with none selected
sends its first enabled option), a textarea's text with its newlines sent as CRLF, and the
submit button's own name and value if it has a name.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from html.parser import HTMLParser
from urllib.parse import urljoin

_NOT_SENT_INPUTS = {"submit", "image", "reset", "button", "file"}


@dataclass
class Control:
    tag: str  # input, select, textarea, button
    attrs: dict[str, str | None]
    options: list[tuple[str, bool, bool]] = field(default_factory=list)  # (value, selected, disabled)
    text: str = ""

    @property
    def name(self) -> str:
        return self.attrs.get("name") or ""

    @property
    def type(self) -> str:
        if self.tag == "input":
            return (self.attrs.get("type") or "text").lower()
        if self.tag == "button":
            return (self.attrs.get("type") or "submit").lower()
        return self.tag

    @property
    def disabled(self) -> bool:
        return "disabled" in self.attrs

    @property
    def is_submit_button(self) -> bool:
        return (self.tag == "button" and self.type == "submit") or (
            self.tag == "input" and self.type in ("submit", "image")
        )


@dataclass
class ParsedForm:
    attrs: dict[str, str | None]
    page_url: str
    controls: list[Control] = field(default_factory=list)

    @property
    def method(self) -> str:
        return (self.attrs.get("method") or "get").upper()

    @property
    def action(self) -> str:
        """The URL the form posts to, resolved against the page (no action: the page itself)."""
        return urljoin(self.page_url, self.attrs.get("action") or self.page_url)

    @property
    def novalidate(self) -> bool:
        return "novalidate" in self.attrs

    def submit_buttons(self) -> list[Control]:
        return [c for c in self.controls if c.is_submit_button and not c.disabled]

    def target(self, submitter: Control | None = None) -> tuple[str, str]:
        """(method, URL) the browser uses, honouring the button's formmethod/formaction."""
        method, action = self.method, self.action
        if submitter is not None:
            if submitter.attrs.get("formmethod"):
                method = submitter.attrs["formmethod"].upper()
            if submitter.attrs.get("formaction"):
                action = urljoin(self.page_url, submitter.attrs["formaction"])
        return method, action

    def submission(self, submitter: Control | None = None) -> list[tuple[str, str]]:
        """The (name, value) pairs a browser sends, in document order."""
        if submitter is None:
            buttons = self.submit_buttons()
            submitter = buttons[0] if buttons else None
        pairs: list[tuple[str, str]] = []
        for control in self.controls:
            if control.disabled or not control.name:
                continue
            kind = control.type
            if control.tag == "input":
                if kind in _NOT_SENT_INPUTS and control is not submitter:
                    continue
                if kind in ("checkbox", "radio"):
                    if "checked" in control.attrs:
                        pairs.append((control.name, control.attrs.get("value") or "on"))
                    continue
                pairs.append((control.name, control.attrs.get("value") or ""))
            elif control.tag == "button":
                if control is submitter:
                    pairs.append((control.name, control.attrs.get("value") or ""))
            elif control.tag == "select":
                pairs.extend((control.name, value) for value in _selected(control))
            elif control.tag == "textarea":
                pairs.append((control.name, _crlf(_textarea_value(control.text))))
        return pairs

    def values(self, submitter: Control | None = None) -> dict[str, list[str]]:
        found: dict[str, list[str]] = {}
        for name, value in self.submission(submitter):
            found.setdefault(name, []).append(value)
        return found

    def unfilled_required(self) -> list[str]:
        """Required controls left empty: a browser refuses to submit (unless novalidate)."""
        sent = self.values()
        return [
            c.name
            for c in self.controls
            if "required" in c.attrs and not c.disabled and c.name and not any(sent.get(c.name, []))
        ]


def _selected(select: Control) -> list[str]:
    chosen = [value for value, selected, _ in select.options if selected]
    if "multiple" in select.attrs:
        return chosen
    if chosen:
        return chosen[-1:]  # a single select keeps the last option marked selected
    size = select.attrs.get("size")
    if size and size.isdigit() and int(size) > 1:
        return []
    enabled = [value for value, _, disabled in select.options if not disabled]
    return enabled[:1]


def _textarea_value(text: str) -> str:
    # A browser reads CRLF and CR as LF, then drops one newline right after <textarea>.
    text = re.sub(r"\r\n|\r", "\n", text)
    return text[1:] if text.startswith("\n") else text


def _crlf(text: str) -> str:
    return re.sub(r"\r\n|\r|\n", "\r\n", text)


class _FormParser(HTMLParser):
    def __init__(self, page_url: str):
        super().__init__(convert_charrefs=True)
        self.page_url = page_url
        self.forms: list[ParsedForm] = []
        self._form: ParsedForm | None = None
        self._select: Control | None = None
        self._option: dict | None = None
        self._text_target: Control | None = None  # a textarea or button collecting its text

    def handle_starttag(self, tag, attrs):
        attributes = dict(attrs)
        if tag == "form":
            self._form = ParsedForm(attributes, self.page_url)
            self.forms.append(self._form)
            return
        if self._form is None:
            return
        if tag in ("input", "button", "textarea", "select"):
            control = Control(tag, attributes)
            self._form.controls.append(control)
            if tag == "select":
                self._select = control
            elif tag in ("textarea", "button"):
                self._text_target = control
        elif tag == "option" and self._select is not None:
            self._finish_option()
            self._option = {"attrs": attributes, "text": ""}

    def handle_startendtag(self, tag, attrs):
        self.handle_starttag(tag, attrs)
        if tag in ("textarea", "button", "select"):
            self.handle_endtag(tag)

    def handle_data(self, data):
        if self._option is not None:
            self._option["text"] += data
        elif self._text_target is not None:
            self._text_target.text += data

    def handle_endtag(self, tag):
        if tag == "form":
            self._finish_option()
            self._form = None
            self._select = None
        elif tag == "option":
            self._finish_option()
        elif tag == "select":
            self._finish_option()
            self._select = None
        elif tag in ("textarea", "button"):
            self._text_target = None

    def _finish_option(self):
        if self._option is None or self._select is None:
            self._option = None
            return
        attrs = self._option["attrs"]
        value = attrs.get("value")
        if value is None:
            value = " ".join(self._option["text"].split())
        self._select.options.append((value, "selected" in attrs, "disabled" in attrs))
        self._option = None


def parse_forms(html: str, page_url: str) -> list[ParsedForm]:
    parser = _FormParser(page_url)
    parser.feed(html)
    parser.close()
    return parser.forms


def post_forms(html: str, page_url: str) -> list[ParsedForm]:
    return [form for form in parse_forms(html, page_url) if form.method == "POST"]
