"""The OpenID Provider the single sign-on tests use (tests/support/oidc.py), end to end without the
app: discovery, registration, sign-in through its pages, the token endpoint, the ID token's
claims verified against its keys, and the tampered ID tokens it can be told to answer with."""

from __future__ import annotations

import base64
import hashlib
import http.server
import json
import secrets
import threading
import urllib.error
import urllib.parse
import urllib.request

import pytest
from joserfc import jwt
from joserfc.errors import BadSignatureError, ExpiredTokenError, InvalidClaimError
from joserfc.jwk import KeySet

from tests.support.oidc import TAMPER_MODES, Client, OpenIDProvider

pytestmark = pytest.mark.processes

#: Where the provider sends the browser back; nothing needs to answer there but in the browser test.
REDIRECT_URI = "http://127.0.0.1:8765/sso/callback"


def authorize_url(
    provider: OpenIDProvider, client: Client, *, redirect_uri: str = REDIRECT_URI, **extra
) -> str:
    params = {
        "response_type": "code",
        "client_id": client.client_id,
        "redirect_uri": redirect_uri,
        "scope": "openid email profile",
        "state": secrets.token_urlsafe(16),
        "nonce": secrets.token_urlsafe(16),
        **extra,
    }
    return provider.metadata()["authorization_endpoint"] + "?" + urllib.parse.urlencode(params)


def query_of(url: str) -> dict[str, str]:
    return dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(url).query))


def token_response(
    provider: OpenIDProvider,
    client: Client,
    code: str,
    *,
    auth: str = "client_secret_basic",
    redirect_uri: str = REDIRECT_URI,
    **extra: str,
) -> tuple[int, dict]:
    """(status, JSON body) of the token endpoint for ``code``, the client authenticated by ``auth``."""
    form = {"grant_type": "authorization_code", "code": code, "redirect_uri": redirect_uri, **extra}
    headers = {"Content-Type": "application/x-www-form-urlencoded"}
    if auth == "client_secret_basic":
        # RFC 6749, 2.3.1: each part form-encoded, then Basic.
        credentials = (client.client_id, client.client_secret)
        pair = ":".join(urllib.parse.quote(part, safe="") for part in credentials)
        headers["Authorization"] = "Basic " + base64.b64encode(pair.encode()).decode()
    else:
        form |= {"client_id": client.client_id, "client_secret": client.client_secret}
    request = urllib.request.Request(
        provider.metadata()["token_endpoint"], data=urllib.parse.urlencode(form).encode(), headers=headers
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.load(response)
    except urllib.error.HTTPError as exc:
        return exc.code, json.load(exc)


def signed_in(provider: OpenIDProvider, client: Client, login: str, **extra: str) -> tuple[dict, str]:
    """Sign ``login`` in and take the code to the token endpoint: (token response, nonce sent)."""
    url = authorize_url(provider, client, **extra)
    sent = query_of(url)
    back = provider.sign_in(url, login)
    assert back.startswith(REDIRECT_URI + "?"), back
    answer = query_of(back)
    assert answer["state"] == sent["state"]
    assert answer["iss"] == provider.issuer
    verifier = {"code_verifier": extra["code_verifier"]} if "code_verifier" in extra else {}
    status, body = token_response(provider, client, answer["code"], **verifier)
    assert status == 200, body
    return body, sent["nonce"]


def verified_claims(provider: OpenIDProvider, client: Client, id_token: str, nonce: str) -> dict:
    """The ID token's claims, its signature checked against the provider's JWKS and iss, aud,
    exp and nonce as a relying party checks them; joserfc's errors when one fails."""
    with urllib.request.urlopen(provider.metadata()["jwks_uri"], timeout=10) as response:
        keys = KeySet.import_key_set(json.load(response))
    token = jwt.decode(id_token, keys, algorithms=["RS256"])
    jwt.JWTClaimsRegistry(
        iss={"essential": True, "value": provider.issuer},
        aud={"essential": True, "value": client.client_id},
        exp={"essential": True},
        sub={"essential": True},
        nonce={"essential": True, "value": nonce},
    ).validate(token.claims)
    return token.claims


def test_discovery_names_the_issuer(openid_provider):
    """The discovery document names the issuer, registration, S256 PKCE and the claims offered."""
    metadata = openid_provider.metadata()
    assert metadata["issuer"] == openid_provider.issuer
    assert metadata["registration_endpoint"].startswith(openid_provider.issuer + "/")
    assert "S256" in metadata["code_challenge_methods_supported"]
    assert {"client_secret_basic", "client_secret_post"} <= set(
        metadata["token_endpoint_auth_methods_supported"]
    )
    assert {"openid", "email", "profile"} <= set(metadata["scopes_supported"])
    assert {"sub", "email", "email_verified", "name"} <= set(metadata["claims_supported"])


def test_sign_in_gives_an_id_token_with_the_person(openid_provider):
    """A registered client signs a person in and the ID token names them, verified and for it."""
    client = openid_provider.register_client([REDIRECT_URI])
    tokens, nonce = signed_in(openid_provider, client, "ada.lovelace@Example.com")
    claims = verified_claims(openid_provider, client, tokens["id_token"], nonce)
    assert claims["iss"] == openid_provider.issuer
    assert claims["aud"] == client.client_id
    assert claims["nonce"] == nonce
    assert claims["sub"] == "ada.lovelace@Example.com"
    assert claims["email"] == "ada.lovelace@example.com"
    assert claims["email_verified"] is True
    assert claims["name"] == "Ada.lovelace"
    assert 3590 <= claims["exp"] - claims["iat"] <= 3600


@pytest.mark.parametrize(
    ("login", "expected"),
    [
        ("unverified.bob@example.com", {"email": "bob@example.com", "email_verified": False, "name": "Bob"}),
        ("carol", {"name": "Carol"}),
    ],
)
def test_the_claims_follow_the_login(openid_provider, login, expected):
    """A login starting "unverified." has an unverified email, one without "@" none at all."""
    client = openid_provider.register_client([REDIRECT_URI])
    tokens, nonce = signed_in(openid_provider, client, login)
    claims = verified_claims(openid_provider, client, tokens["id_token"], nonce)
    assert claims["sub"] == login
    assert {key: claims[key] for key in ("email", "email_verified", "name") if key in claims} == expected


def test_client_secret_post_and_pkce(openid_provider):
    """A client_secret_post client with PKCE (S256) gets its tokens, only with the right verifier."""
    client = openid_provider.register_client([REDIRECT_URI], token_endpoint_auth_method="client_secret_post")
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).decode().rstrip("=")
    pkce = {"code_challenge": challenge, "code_challenge_method": "S256"}

    url = authorize_url(openid_provider, client, **pkce)
    code = query_of(openid_provider.sign_in(url, "dan@example.com"))["code"]
    status, body = token_response(
        openid_provider, client, code, auth="client_secret_post", code_verifier=secrets.token_urlsafe(48)
    )
    assert (status, body["error"]) == (400, "invalid_grant")

    url = authorize_url(openid_provider, client, **pkce)
    code = query_of(openid_provider.sign_in(url, "dan@example.com"))["code"]
    status, body = token_response(
        openid_provider, client, code, auth="client_secret_post", code_verifier=verifier
    )
    assert status == 200, body
    assert verified_claims(openid_provider, client, body["id_token"], query_of(url)["nonce"])["sub"] == (
        "dan@example.com"
    )


#: What a relying party's checks say about each tampered ID token.
REFUSALS = {
    "wrong_audience": (InvalidClaimError, "aud"),
    "expired": (ExpiredTokenError, "exp"),
    "bad_signature": (BadSignatureError, None),
    "wrong_nonce": (InvalidClaimError, "nonce"),
    "wrong_issuer": (InvalidClaimError, "iss"),
}


@pytest.mark.parametrize("mode", TAMPER_MODES)
def test_a_tampered_id_token_fails_verification_once(tamperable_openid_provider, mode):
    """Each tampering spoils the next ID token only, in the way its name says."""
    provider = tamperable_openid_provider
    client = provider.register_client([REDIRECT_URI])
    provider.tamper_next_id_token(mode)

    tokens, nonce = signed_in(provider, client, "erin@example.com")
    error, claim = REFUSALS[mode]
    with pytest.raises(error) as refused:
        verified_claims(provider, client, tokens["id_token"], nonce)
    assert getattr(refused.value, "claim", None) == claim

    tokens, nonce = signed_in(provider, client, "erin@example.com")
    assert verified_claims(provider, client, tokens["id_token"], nonce)["sub"] == "erin@example.com"


def test_reset_forgets_a_pending_tampering(tamperable_openid_provider):
    """After reset() the next ID token is sound; an unknown mode is refused."""
    provider = tamperable_openid_provider
    client = provider.register_client([REDIRECT_URI])
    provider.tamper_next_id_token("bad_signature")
    provider.reset()
    tokens, nonce = signed_in(provider, client, "fay@example.com")
    assert verified_claims(provider, client, tokens["id_token"], nonce)["sub"] == "fay@example.com"
    with pytest.raises(AssertionError, match="400"):
        provider.tamper_next_id_token("slightly_off")


class _Callback(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.end_headers()
        self.wfile.write(b"<!doctype html><title>Back</title><p>Back at the relying party.</p>")

    def log_message(self, *args):
        pass


@pytest.fixture
def callback_url():
    """A redirect_uri that answers, served from a thread of the test process."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Callback)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/sso/callback"
    server.shutdown()
    server.server_close()
    thread.join(5)


@pytest.mark.browser
def test_browser_sign_in(openid_provider, page, callback_url):
    """In Chromium, browser_sign_in() gets through the login and consent pages back to the client,
    and through the consent page alone for another client once signed in."""
    client = openid_provider.register_client([callback_url])
    url = authorize_url(openid_provider, client, redirect_uri=callback_url)
    page.goto(url)
    assert openid_provider.owns(page.url)
    openid_provider.browser_sign_in(page, "gil@example.com")
    assert page.url.startswith(callback_url + "?")
    assert page.get_by_text("Back at the relying party.").is_visible()
    status, body = token_response(
        openid_provider, client, query_of(page.url)["code"], redirect_uri=callback_url
    )
    assert status == 200, body
    assert verified_claims(openid_provider, client, body["id_token"], query_of(url)["nonce"])["name"] == "Gil"

    other = openid_provider.register_client([callback_url])
    page.goto(authorize_url(openid_provider, other, redirect_uri=callback_url))
    openid_provider.browser_sign_in(page, "gil@example.com")
    assert page.url.startswith(callback_url + "?code=")
    assert page.problems == []
