"""The OpenID Connect client of each organization, and the check of its provider.

Authlib's client registry caches a client by name, with the provider's discovery document and
keys once read. Each organization's client is named by its id, its connection's id and the
version of its configuration (``sso-<org>-<connection>-v<version>``): a changed issuer, client
id or secret, or a connection removed and set up again, makes a new client, never a stale one;
the registry is per app (``register_clients``).

The issuer is a URL an admin types and the server fetches, so it must be HTTPS on a public
address (``public_url_problem``); ``SSO_ALLOW_PRIVATE_ISSUERS`` lets development and the tests
use a provider on loopback over plain HTTP.
"""

from __future__ import annotations

import ipaddress
import socket
from urllib.parse import urlsplit

import requests
from authlib.integrations.flask_client import OAuth
from flask import Flask, current_app

from app.models import SsoConnection

DISCOVERY_PATH = "/.well-known/openid-configuration"
SCOPES = "openid email profile"
#: Seconds a request to a provider may take.
TIMEOUT = 10
_REGISTRY = "authlib.integrations.flask_client"


def register_clients(app: Flask) -> None:
    OAuth(app)  # keeps itself in app.extensions


def client_name(connection: SsoConnection) -> str:
    return f"sso-{connection.tenant_id.hex}-{connection.id.hex}-v{connection.version}"


def client_for(connection: SsoConnection):
    """The organization's Authlib client for its current configuration (made on first use)."""
    oauth: OAuth = current_app.extensions[_REGISTRY]
    name = client_name(connection)
    client = oauth.create_client(name)
    if client is None:
        client = oauth.register(
            name,
            client_id=connection.client_id,
            client_secret=connection.client_secret,
            server_metadata_url=discovery_url(connection.issuer),
            client_kwargs={"scope": SCOPES, "code_challenge_method": "S256", "default_timeout": TIMEOUT},
        )
    return client


def discovery_url(issuer: str) -> str:
    return issuer.rstrip("/") + DISCOVERY_PATH


def normalize_issuer(value: str) -> str:
    """The issuer from what an admin typed: the issuer itself or its discovery document's URL."""
    value = value.strip()
    if value.endswith(DISCOVERY_PATH):
        value = value[: -len(DISCOVERY_PATH)]
    return value.rstrip("/")


def _is_public(address: str) -> bool:
    ip = ipaddress.ip_address(address)
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped:
        ip = ip.ipv4_mapped
    return ip.is_global and not ip.is_multicast


def public_url_problem(url: str) -> str | None:
    """Why the server must not fetch ``url`` as a provider's (None: it may)."""
    parts = urlsplit(url)
    allow_private = current_app.config["SSO_ALLOW_PRIVATE_ISSUERS"]
    if not parts.hostname or parts.scheme not in ("https", "http"):
        return "Enter the provider's issuer URL, starting with https://."
    if parts.username or parts.password or parts.query or parts.fragment:
        return "The issuer URL may not carry a user name, a password, a query or a fragment."
    if parts.scheme == "http" and not (allow_private and _is_loopback_name(parts.hostname)):
        return "The provider must be reached over HTTPS."
    try:
        addresses = {info[4][0] for info in socket.getaddrinfo(parts.hostname, parts.port or 443)}
    except (OSError, UnicodeError):
        return f"The name {parts.hostname} does not resolve."
    if not allow_private and not all(_is_public(address.split("%")[0]) for address in addresses):
        return f"{parts.hostname} is a private or local address, which this service does not connect to."
    return None


def _is_loopback_name(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_provider(issuer: str) -> str | None:
    """Read the provider's discovery document and keys as sign-ins will: what is wrong, or None."""
    problem = public_url_problem(issuer)
    if problem:
        return problem
    try:
        response = requests.get(discovery_url(issuer), timeout=TIMEOUT, allow_redirects=False)
        response.raise_for_status()
        metadata = response.json()
    except (requests.RequestException, ValueError) as exc:
        return f"The discovery document at {discovery_url(issuer)} could not be read ({_reason(exc)})."
    if not isinstance(metadata, dict):
        return "The discovery document is not a JSON object."
    if metadata.get("issuer") != issuer:
        named = metadata.get("issuer")
        return f"The provider names itself {named!r}, not {issuer!r}: enter its exact issuer."
    endpoints = ("authorization_endpoint", "token_endpoint", "jwks_uri")
    missing = [key for key in endpoints if not metadata.get(key)]
    if missing:
        return f"The discovery document lacks {', '.join(missing)}."
    if "code" not in metadata.get("response_types_supported", ["code"]):
        return "The provider does not offer the authorization code flow."
    for key in endpoints:
        problem = public_url_problem(metadata[key])
        if problem:
            return f"{key}: {problem}"
    try:
        keys = requests.get(metadata["jwks_uri"], timeout=TIMEOUT, allow_redirects=False)
        keys.raise_for_status()
        if not keys.json().get("keys"):
            return "The provider publishes no signing keys."
    except (requests.RequestException, ValueError, AttributeError) as exc:
        return f"The provider's keys at {metadata['jwks_uri']} could not be read ({_reason(exc)})."
    return None


def _reason(exc: Exception) -> str:
    if isinstance(exc, requests.HTTPError) and exc.response is not None:
        return f"HTTP {exc.response.status_code}"
    if isinstance(exc, requests.Timeout):
        return "no answer in time"
    if isinstance(exc, requests.ConnectionError):
        return "no connection"
    return "not JSON" if isinstance(exc, ValueError) else type(exc).__name__
