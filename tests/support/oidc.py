"""The OpenID Provider single sign-on is tested against: panva's oidc-provider (OpenID Certified),
run by tests/oidc/provider.mjs as a child process on a free local port.

`make test` installs it (``npm ci`` in tests/oidc) and sets WORKLANE_OIDC_NODE to the node it
found. Clients register themselves (:meth:`OpenIDProvider.register_client`); a person signs in
with any login and password, through the provider's own login and consent pages, from an HTTP
client (:meth:`OpenIDProvider.sign_in`) or a Playwright page (:meth:`OpenIDProvider.browser_sign_in`).
The claims a login gets are those of provider.mjs: ``sub`` is the login as typed; a login with
"@" is the ``email`` (lower-cased), ``email_verified`` unless it starts with ``unverified.`` (the
email is then the rest); ``name`` is the part before "@", capitalised. They are in the ID token.
"""

from __future__ import annotations

import http.cookiejar
import json
import os
import shutil
import subprocess
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path

from app.config import PROJECT_ROOT
from tests.conftest import free_port
from tests.support.workers import poll, stop_process

PROVIDER_DIR = PROJECT_ROOT / "tests" / "oidc"
#: The ways provider.mjs can spoil the next ID token of its token endpoint.
TAMPER_MODES = ("wrong_audience", "expired", "bad_signature", "wrong_nonce", "wrong_issuer")
#: What the login form's password field gets: the provider accepts any.
PASSWORD = "any password"


def node_executable() -> str | None:
    """The node that runs the provider: WORKLANE_OIDC_NODE, which `make test` sets (empty when it
    found none fit to run it); without the variable, the PATH's."""
    if "WORKLANE_OIDC_NODE" in os.environ:
        return os.environ["WORKLANE_OIDC_NODE"] or None
    return shutil.which("node")


def unavailable() -> str | None:
    """Why the provider cannot be started here, or None when it can."""
    if not node_executable():
        return "no Node.js for the OpenID Provider (set WORKLANE_OIDC_NODE or install nodejs and npm)"
    if not (PROVIDER_DIR / "node_modules" / "oidc-provider").is_dir():
        return "oidc-provider is not installed (npm ci --prefix tests/oidc, as `make test` does)"
    return None


@dataclass(frozen=True)
class Client:
    """A relying party registered at the provider."""

    client_id: str
    client_secret: str


class OpenIDProvider:
    """tests/oidc/provider.mjs on a free port of 127.0.0.1; issuer ``http://127.0.0.1:<port>``."""

    def __init__(self, node: str, log_path: Path):
        self.node = node
        self.log_path = log_path
        self.port = free_port()
        self.issuer = f"http://127.0.0.1:{self.port}"
        self.discovery_url = self.issuer + "/.well-known/openid-configuration"
        self.process: subprocess.Popen | None = None

    def start(self, timeout: float = 30) -> None:
        """Start the provider and return once its discovery document answers."""
        command = [
            self.node,
            str(PROVIDER_DIR / "provider.mjs"),
            "--port",
            str(self.port),
            "--exit-on-stdin-close",
        ]
        with open(self.log_path, "ab") as log:
            # The marker of the test run comes with os.environ; the provider exits when this
            # process's end closes its standard input, even without a SIGTERM.
            self.process = subprocess.Popen(
                command, cwd=PROVIDER_DIR, env=dict(os.environ), stdin=subprocess.PIPE, stdout=log, stderr=log
            )
        if not poll(self._answers, timeout):
            self.stop()
            raise RuntimeError(f"the OpenID Provider did not answer within {timeout}s:\n{self.output()}")

    def _answers(self) -> bool:
        if self.process.poll() is not None:
            raise RuntimeError(f"the OpenID Provider exited at start:\n{self.output()}")
        try:
            return self.metadata()["issuer"] == self.issuer
        except OSError:
            return False

    def stop(self) -> int | None:
        """SIGTERM (SIGKILL after 10 s); the exit status."""
        if self.process is None:
            return None
        status = stop_process(self.process, 10)
        self.process.stdin.close()
        return status

    def output(self) -> str:
        """What the provider logged."""
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def metadata(self) -> dict:
        """The discovery document."""
        with urllib.request.urlopen(self.discovery_url, timeout=5) as response:
            return json.load(response)

    def register_client(
        self, redirect_uris: list[str], token_endpoint_auth_method: str = "client_secret_basic"
    ) -> Client:
        """Register a confidential client for the authorization-code flow (RFC 7591)."""
        registered = self._post_json(
            self.metadata()["registration_endpoint"],
            {"redirect_uris": redirect_uris, "token_endpoint_auth_method": token_endpoint_auth_method},
        )
        return Client(registered["client_id"], registered["client_secret"])

    def tamper_next_id_token(self, mode: str) -> None:
        """Spoil the ID token of the token endpoint's next response (one of TAMPER_MODES); later
        responses are sound again."""
        self._post_json(self.issuer + "/__test__/tamper", {"mode": mode})

    def reset(self) -> None:
        """Forget a tampering that no token response has used yet."""
        self._post_json(self.issuer + "/__test__/reset", {})

    @staticmethod
    def _post_json(url: str, data: dict) -> dict:
        request = urllib.request.Request(
            url, data=json.dumps(data).encode(), headers={"Content-Type": "application/json"}
        )
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return json.load(response)
        except urllib.error.HTTPError as exc:
            raise AssertionError(f"POST {url}: {exc.code} {exc.read().decode(errors='replace')}") from None

    def owns(self, url: str) -> bool:
        """Whether ``url`` is one of the provider's (same scheme, host and port as the issuer)."""
        ours, theirs = urllib.parse.urlsplit(self.issuer), urllib.parse.urlsplit(url)
        return (theirs.scheme, theirs.netloc) == (ours.scheme, ours.netloc)

    def sign_in(self, authorize_url: str, login: str, password: str = PASSWORD) -> str:
        """Sign in as ``login`` the way a browser would, from a fresh cookie jar: open
        ``authorize_url``, submit the login form as rendered with the login and password filled
        in, then the consent form as rendered. Returns the URL the provider finally redirects to
        (the relying party's redirect_uri with ``code`` and ``state``, or with ``error``),
        without requesting it."""
        browser = _Browser()
        page = browser.open(authorize_url)
        for _ in range(12):
            if page.location:
                target = urllib.parse.urljoin(page.url, page.location)
                if not self.owns(target):
                    return target
                page = browser.open(target)
                continue
            form = page.form_to_submit()
            page = browser.open(form.action, form.filled(login, password), method=form.method)
        raise AssertionError(f"still at the provider after twelve steps: {page.url}")

    def browser_sign_in(self, page, login: str, password: str = PASSWORD) -> None:
        """In a Playwright ``page`` on its way to (or at) the provider's login page: fill in the
        login and password, submit, and continue on the consent page; returns once the browser
        has left the provider. A person already signed in at the provider in this browser gets
        no login page (``login`` is not used then), and one who consented before no consent page."""
        page.wait_for_url(self.owns)
        login_form = page.locator("form", has=page.locator("input[type=password]"))
        if login_form.count():
            typed = "input:not([type=hidden]):not([type=password]):not([type=submit]):not([type=checkbox])"
            login_form.locator(typed).first.fill(login)
            login_form.locator("input[type=password]").fill(password)
            login_page = page.url
            login_form.locator("[type=submit]").first.click()
            page.wait_for_url(lambda url: url != login_page)
        if self.owns(page.url):
            page.locator("form [type=submit]").first.click()
            page.wait_for_url(lambda url: not self.owns(url))


@dataclass
class _Form:
    action: str
    method: str
    #: (name, type, value, checked) of each named input but its submit buttons.
    fields: list[tuple[str, str, str, bool]] = field(default_factory=list)
    #: (name, value) of the first submit button that has a name.
    submitter: tuple[str, str] | None = None

    @property
    def asks_for_a_password(self) -> bool:
        return any(kind == "password" for _, kind, _, _ in self.fields)

    def filled(self, login: str, password: str) -> dict[str, str]:
        """The fields as a browser submits them, the login in the first field one types into
        and the password in each password field."""
        data: dict[str, str] = {}
        login_typed = False
        for name, kind, value, checked in self.fields:
            if kind in {"button", "reset", "image", "file"} or (
                kind in {"checkbox", "radio"} and not checked
            ):
                continue
            if kind == "password":
                value = password
            elif kind in {"text", "email"} and not login_typed:
                value, login_typed = login, True
            data[name] = value
        if self.submitter:
            data[self.submitter[0]] = self.submitter[1]
        return data


class _PageParser(HTMLParser):
    """The forms of a page, and its text (for messages when it has none to submit)."""

    def __init__(self, url: str):
        super().__init__()
        self.url = url
        self.forms: list[_Form] = []
        self.text: list[str] = []
        self._form: _Form | None = None

    def handle_starttag(self, tag, attrs):
        attributes = {name: value or "" for name, value in attrs}
        if tag == "form":
            action = urllib.parse.urljoin(self.url, attributes.get("action") or self.url)
            self._form = _Form(action, (attributes.get("method") or "get").upper())
            self.forms.append(self._form)
            return
        if self._form is None:
            return
        kind = attributes.get("type", "text" if tag == "input" else "submit").lower()
        if tag in {"input", "button"} and kind == "submit":
            if self._form.submitter is None and attributes.get("name"):
                self._form.submitter = (attributes["name"], attributes.get("value", ""))
        elif tag == "input" and attributes.get("name"):
            self._form.fields.append(
                (attributes["name"], kind, attributes.get("value", ""), "checked" in attributes)
            )

    def handle_endtag(self, tag):
        if tag == "form":
            self._form = None

    def handle_data(self, data):
        if data.strip():
            self.text.append(data.strip())


@dataclass
class _Page:
    url: str
    status: int
    location: str
    body: str

    def form_to_submit(self) -> _Form:
        """The login form (the one asking for a password), else the page's only form."""
        parser = _PageParser(self.url)
        parser.feed(self.body)
        login_forms = [form for form in parser.forms if form.asks_for_a_password]
        if login_forms:
            return login_forms[0]
        if len(parser.forms) == 1:
            return parser.forms[0]
        raise AssertionError(
            f"the provider's page {self.url} ({self.status}) has {len(parser.forms)} forms, "
            f"none asking for a password: {' '.join(parser.text)}"
        )


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


class _Browser:
    """One cookie jar; redirects are returned, not followed."""

    def __init__(self):
        self.opener = urllib.request.build_opener(
            urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()), _NoRedirect
        )

    def open(self, url: str, data: dict[str, str] | None = None, method: str = "GET") -> _Page:
        body = None
        if data is not None and method == "POST":
            body = urllib.parse.urlencode(data).encode()
        elif data is not None:
            url = url.split("?")[0] + "?" + urllib.parse.urlencode(data)
        request = urllib.request.Request(url, data=body, method=method)
        try:
            with self.opener.open(request, timeout=30) as response:
                return _Page(
                    url, response.status, response.headers.get("Location", ""), response.read().decode()
                )
        except urllib.error.HTTPError as exc:
            return _Page(url, exc.code, exc.headers.get("Location", ""), exc.read().decode(errors="replace"))
