"""Requests the server makes to addresses people give it (webhooks), safe from server-side
request forgery.

- Only ``http`` and ``https`` URLs without credentials.
- A host written as a number is taken only in its standard form (``203.0.113.7``, ``[2001:db8::1]``):
  ``2130706433``, ``0x7f000001``, ``0177.0.0.1`` or ``127.1``, which the system's resolver would
  read as 127.0.0.1, are refused, so nothing the checks did not read is left for the OS to parse.
- A name is resolved once (``getaddrinfo``, or dnspython through ``DNS_NAMESERVERS``); if ANY of
  its addresses is not public (private, loopback, link-local and the cloud metadata address,
  shared, unspecified, multicast, reserved, or an IPv6 form embedding IPv4: mapped, NAT64,
  6to4, Teredo) the request is refused, and the connection is made to the checked address
  itself, with the name in ``Host`` and, for HTTPS, as the name the certificate must show.
- Redirects are never followed; timeouts bound the connection and each read, and only the
  first bytes of the answer are read.
- ``OUTBOUND_ALLOWED_NETWORKS`` (CIDRs) lets listed addresses through: none in production.
"""

from __future__ import annotations

import ipaddress
import re
import socket
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

import dns.exception
import dns.resolver
import urllib3
from flask import current_app

CONNECT_SECONDS = 5
READ_SECONDS = 10
#: Bytes of an answer read and kept.
EXCERPT_BYTES = 1024
LOOKUP_SECONDS = 5

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_NAT64_LOCAL = ipaddress.ip_network("64:ff9b:1::/48")
_SHARED = ipaddress.ip_network("100.64.0.0/10")
#: A host whose last label is a number is an IPv4 address to a browser and to inet_aton.
_NUMERIC_LABEL = re.compile(r"^(0x[0-9a-f]*|[0-9]+)$", re.IGNORECASE)
_HOST_NAME = re.compile(
    r"^(?=.{1,253}$)([a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?\.)*[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$"
)


class RefusedURL(ValueError):
    """A URL or address outbound requests may not reach; the message says why, for people."""


class RequestFailed(Exception):
    """No answer came: the connection, TLS or a timeout failed (the message says which)."""


@dataclass(frozen=True)
class Target:
    """A checked URL: where to connect (``address``) and what to ask for."""

    scheme: str
    host: str
    port: int
    path: str
    address: IPAddress

    @property
    def host_header(self) -> str:
        default = 443 if self.scheme == "https" else 80
        host = f"[{self.host}]" if ":" in self.host else self.host
        return host if self.port == default else f"{host}:{self.port}"


@dataclass(frozen=True)
class Answer:
    status: int
    headers: dict[str, str]
    #: The first ``EXCERPT_BYTES`` of the body, as text (undecodable bytes replaced).
    excerpt: str
    duration_ms: int


def _allowed_networks() -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
    return [ipaddress.ip_network(n, strict=False) for n in current_app.config["OUTBOUND_ALLOWED_NETWORKS"]]


def _embedded_ipv4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 form carries (mapped, NAT64, 6to4, Teredo), if any."""
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address in _NAT64 or address in _NAT64_LOCAL:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    if address.sixtofour is not None:
        return address.sixtofour
    if address.teredo is not None:
        return address.teredo[1]
    return None


def address_problem(address: IPAddress) -> str | None:
    """Why outbound requests may not reach ``address`` (None: they may)."""
    if any(address in network for network in _allowed_networks()):
        return None
    if isinstance(address, ipaddress.IPv6Address) and _embedded_ipv4(address) is not None:
        return f"{address} is an IPv6 form of the IPv4 address {_embedded_ipv4(address)}"
    kinds = (
        ("loopback", address.is_loopback),
        ("unspecified", address.is_unspecified),
        ("link-local (such as the cloud metadata service)", address.is_link_local),
        ("multicast", address.is_multicast),
        ("reserved", address.is_reserved),
        ("shared (carrier-grade NAT)", address in _SHARED if address.version == 4 else False),
        ("private", address.is_private),
    )
    for kind, matches in kinds:
        if matches:
            return f"{address} is a {kind} address"
    if not address.is_global:
        return f"{address} is not a public address"
    return None


def _literal(host: str) -> IPAddress | None:
    """The address a numeric host names in standard form; RefusedURL for any other numeric form."""
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        pass
    if ":" in host:
        raise RefusedURL(f"{host} is not an IP address.")
    if _NUMERIC_LABEL.match(host.rstrip(".").rsplit(".", 1)[-1]):
        raise RefusedURL(
            f"{host} is an IP address in an unusual form: write it as four decimal numbers separated by dots."
        )
    return None


def _ascii_host(host: str) -> str:
    if not host.isascii():
        try:
            host = host.encode("idna").decode("ascii")
        except UnicodeError as exc:
            raise RefusedURL(f"{host} is not a valid host name.") from exc
    host = host.lower().rstrip(".")
    if not _HOST_NAME.match(host):
        raise RefusedURL(f"{host or 'The host'} is not a valid host name.")
    return host


def _resolve(host: str, port: int) -> list[IPAddress]:
    """Every address ``host`` has, looked up once (RefusedURL when it has none)."""
    servers = current_app.config.get("DNS_NAMESERVERS") or ()
    found: list[IPAddress] = []
    if servers:
        resolver = dns.resolver.Resolver(configure=False)
        for server in servers:
            name, _, server_port = server.partition(":")
            resolver.nameservers.append(name)
            if server_port:
                resolver.nameserver_ports[name] = int(server_port)
        resolver.lifetime = LOOKUP_SECONDS
        for kind in ("A", "AAAA"):
            try:
                found += [ipaddress.ip_address(r.address) for r in resolver.resolve(host, kind)]
            except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer, dns.resolver.NoNameservers):
                continue
            except dns.exception.Timeout as exc:
                raise RefusedURL(f"{host} could not be looked up (the DNS server did not answer).") from exc
    else:
        try:
            infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except (socket.gaierror, UnicodeError):
            infos = []
        found = [ipaddress.ip_address(info[4][0].split("%", 1)[0]) for info in infos]
    if not found:
        raise RefusedURL(f"{host} could not be resolved: no such host.")
    return list(dict.fromkeys(found))


def check_url(url: str, resolve: bool = True) -> Target:
    """The target of ``url`` once every check passed; RefusedURL otherwise.

    Without ``resolve`` only the URL itself is checked (the name is looked up when it is used).
    """
    url = (url or "").strip()
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise RefusedURL(f"Not a valid URL: {exc}.") from exc
    if parts.scheme not in ("http", "https"):
        raise RefusedURL("Use an http:// or https:// URL.")
    if parts.username is not None or parts.password is not None or "@" in parts.netloc:
        raise RefusedURL("A URL with a user name or password in it is not accepted.")
    host = parts.hostname or ""
    if not host:
        raise RefusedURL("The URL has no host.")
    port = port or (443 if parts.scheme == "https" else 80)
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    address = _literal(host)
    if address is not None:
        addresses = [address]
        host = str(address)
    else:
        host = _ascii_host(host)
        if not resolve:
            return Target(parts.scheme, host, port, path, ipaddress.ip_address("0.0.0.0"))
        addresses = _resolve(host, port)
    for candidate in addresses:
        if problem := address_problem(candidate):
            shown = "" if address is not None else f"{host} resolves to an address that is not allowed: "
            raise RefusedURL(f"{shown}{problem}; webhooks go to public addresses only.")
    return Target(parts.scheme, host, port, path, addresses[0])


def _pool(target: Target) -> urllib3.HTTPConnectionPool:
    timeout = urllib3.Timeout(connect=CONNECT_SECONDS, read=READ_SECONDS)
    address = str(target.address)
    if target.scheme == "https":
        return urllib3.HTTPSConnectionPool(
            address,
            target.port,
            timeout=timeout,
            retries=False,
            cert_reqs="CERT_REQUIRED",
            server_hostname=target.host,
            assert_hostname=target.host,
        )
    return urllib3.HTTPConnectionPool(address, target.port, timeout=timeout, retries=False)


def post(url: str, body: bytes, headers: dict[str, str]) -> Answer:
    """POST ``body`` to ``url`` once, checked as ``check_url`` does, following no redirect.

    Raises RefusedURL (nothing was sent) or RequestFailed (no answer came).
    """
    target = check_url(url)
    started = time.monotonic()
    pool = _pool(target)
    try:
        response = pool.urlopen(
            "POST",
            target.path,
            body=body,
            headers={**headers, "Host": target.host_header},
            redirect=False,
            retries=False,
            preload_content=False,
            assert_same_host=False,
        )
        try:
            raw = response.read(EXCERPT_BYTES, decode_content=False)
        finally:
            response.release_conn()
            response.close()
    except urllib3.exceptions.NewConnectionError as exc:  # a subclass of ConnectTimeoutError
        raise RequestFailed(f"Connection failed: {_reason(exc)}") from exc
    except urllib3.exceptions.ConnectTimeoutError as exc:
        raise RequestFailed(f"Connection timed out after {CONNECT_SECONDS} s.") from exc
    except urllib3.exceptions.ReadTimeoutError as exc:
        raise RequestFailed(f"No answer within {READ_SECONDS} s.") from exc
    except urllib3.exceptions.SSLError as exc:
        raise RequestFailed(f"TLS failed: {_reason(exc)}") from exc
    except (urllib3.exceptions.HTTPError, OSError) as exc:
        raise RequestFailed(f"Connection failed: {_reason(exc)}") from exc
    finally:
        pool.close()
    return Answer(
        status=response.status,
        headers={name.lower(): value for name, value in response.headers.items()},
        excerpt=raw.decode("utf-8", errors="replace"),
        duration_ms=int((time.monotonic() - started) * 1000),
    )


def _reason(exc: BaseException) -> str:
    """The innermost error's words (urllib3 wraps the socket's)."""
    while getattr(exc, "reason", None) is not None and isinstance(exc.reason, BaseException):
        exc = exc.reason
    text = str(exc)
    if "Connection refused" in text or isinstance(exc, ConnectionRefusedError):
        return "connection refused."
    return text[:300]
