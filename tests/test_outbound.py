"""Outbound requests safe from server-side request forgery (app/core/outbound.py): the addresses
and URL forms refused, names resolved once and connected to by address, no redirect followed,
timeouts and a capped read, against a real local receiver and a real DNS server."""

from __future__ import annotations

import ssl
import threading
from datetime import UTC, datetime, timedelta

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from app.core import outbound
from tests.conftest import free_port, make_config
from tests.support.webhook_receiver import Reply, WebhookReceiver


@pytest.fixture
def receiver(webhook_receiver):
    return webhook_receiver


@pytest.fixture
def no_allowlist(app, monkeypatch):
    """Production's setting: no network is let through for being listed."""
    monkeypatch.setitem(app.config, "OUTBOUND_ALLOWED_NETWORKS", ())


#: Literal forms of internal addresses, including those only the OS's resolver reads as one.
REFUSED_LITERALS = [
    ("http://127.0.0.1/hook", "loopback"),
    ("http://2130706433/hook", "unusual form"),  # decimal 127.0.0.1
    ("http://0177.0.0.1/hook", "unusual form"),  # octal
    ("http://0x7f000001/hook", "unusual form"),  # hexadecimal
    ("http://127.1/hook", "unusual form"),  # short form
    ("http://017700000001/hook", "unusual form"),
    ("http://[::ffff:127.0.0.1]/hook", "IPv6 form of the IPv4 address 127.0.0.1"),
    ("http://[::ffff:7f00:1]/hook", "IPv6 form of the IPv4 address 127.0.0.1"),
    ("http://[64:ff9b::a9fe:a9fe]/hook", "IPv6 form of the IPv4 address 169.254.169.254"),  # NAT64
    ("http://[2002:a00:1::]/hook", "IPv6 form of the IPv4 address 10.0.0.1"),  # 6to4
    ("http://[::1]/hook", "loopback"),
    ("http://[fe80::1]/hook", "link-local"),
    ("http://[fd00::1]/hook", "private"),
    ("http://169.254.169.254/latest/meta-data/", "link-local"),
    ("http://10.1.2.3/hook", "private"),
    ("http://172.16.0.1/hook", "private"),
    ("http://192.168.1.1/hook", "private"),
    ("http://100.64.0.1/hook", "shared"),
    ("http://0.0.0.0/hook", "unspecified"),
    ("http://224.0.0.1/hook", "multicast"),
    ("http://240.0.0.1/hook", "reserved"),
    ("http://203.0.113.7/hook", "203.0.113.7 is a"),  # documentation range
]


@pytest.mark.parametrize(("url", "why"), REFUSED_LITERALS, ids=[url for url, _ in REFUSED_LITERALS])
def test_internal_addresses_are_refused_in_every_literal_form(app, no_allowlist, url, why):
    """Private, loopback, link-local, metadata, shared, special and IPv6-embedded addresses are
    refused, and numeric hosts only the OS would read (decimal, octal, hex, short) never reach it."""
    with app.app_context(), pytest.raises(outbound.RefusedURL, match=why):
        outbound.check_url(url)


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("ftp://example.com/hook", "http:// or https://"),
        ("file:///etc/passwd", "http:// or https://"),
        ("gopher://example.com/", "http:// or https://"),
        ("http://user:secret@example.com/hook", "user name or password"),
        ("http:///hook", "no host"),
        ("http://exa mple.com/hook", "not a valid host name"),
        ("http://example.com:99999/hook", "Not a valid URL"),
    ],
)
def test_only_plain_http_urls_are_accepted(app, url, why):
    """Other schemes, credentials in the URL, missing or malformed hosts and ports are refused."""
    with app.app_context(), pytest.raises(outbound.RefusedURL, match=why):
        outbound.check_url(url)


def test_names_are_resolved_and_every_address_checked(app, dns_records, no_allowlist):
    """A name resolving to a private address, or to a public and a private one, is refused; an
    unresolvable name is refused; a name with public addresses only is accepted, with its address."""
    dns_records.set_addresses("internal.example.test", "10.0.0.5")
    dns_records.set_addresses("mixed.example.test", "93.184.215.14", "127.0.0.1")
    dns_records.set_addresses("metadata.example.test", "169.254.169.254")
    dns_records.set_addresses("mapped.example.test", "::ffff:127.0.0.1")
    dns_records.set_addresses(
        "public.example.test", "93.184.215.14", "2606:2800:21f:cb07:6820:80da:af6b:8b2c"
    )
    with app.app_context():
        for name, why in [
            ("internal", "internal.example.test resolves to an address that is not allowed: 10.0.0.5"),
            ("mixed", "127.0.0.1 is a loopback address"),
            ("metadata", "link-local"),
            ("mapped", "IPv6 form of the IPv4 address 127.0.0.1"),
            ("nowhere", "could not be resolved"),
        ]:
            with pytest.raises(outbound.RefusedURL, match=why):
                outbound.check_url(f"https://{name}.example.test/hook")
        target = outbound.check_url("https://Public.Example.Test./hook?x=1")
    assert (target.host, target.port, target.path, str(target.address)) == (
        "public.example.test",
        443,
        "/hook?x=1",
        "93.184.215.14",
    )


def test_the_allowlist_lets_listed_addresses_through_but_not_their_disguises(app):
    """The tests' allowlist (127.0.0.1/32) admits the receiver's address, never its IPv6-mapped
    or numeric forms, nor other loopback addresses."""
    with app.app_context():
        assert str(outbound.check_url("http://127.0.0.1:8080/hook").address) == "127.0.0.1"
        for url in ("http://[::ffff:127.0.0.1]:8080/", "http://2130706433:8080/", "http://127.0.0.2/"):
            with pytest.raises(outbound.RefusedURL):
                outbound.check_url(url)


def test_the_connection_goes_to_the_resolved_address_with_the_name_as_host(app, dns_records, receiver):
    """A name is looked up once and the request sent to that address, naming the host in Host."""
    dns_records.set_addresses("receiver.example.test", "127.0.0.1")
    with app.app_context():
        answer = outbound.post(
            f"http://receiver.example.test:{receiver.port}/in?x=1", b'{"a":1}', {"X-Test": "yes"}
        )
    assert answer.status == 200 and answer.excerpt == "ok"
    [request] = receiver.requests
    assert request.path == "/in?x=1"
    assert request.headers["Host"] == f"receiver.example.test:{receiver.port}"
    assert request.headers["X-Test"] == "yes" and request.body == b'{"a":1}'


def test_a_redirect_is_answered_not_followed(app, receiver):
    """A 3xx comes back as it is: the Location (here an internal address) is never requested."""
    receiver.script(Reply(302, {"Location": "http://169.254.169.254/latest/meta-data/"}, b""))
    with app.app_context():
        answer = outbound.post(receiver.url(), b"{}", {})
    assert answer.status == 302
    assert answer.headers["location"] == "http://169.254.169.254/latest/meta-data/"
    assert len(receiver.requests) == 1


def test_only_the_first_kilobyte_of_an_answer_is_read(app, receiver):
    """The answer's excerpt is at most 1 KB, as text even when the bytes are not UTF-8."""
    receiver.script(Reply(500, {}, b"\xff\xfe" + b"x" * 5000))
    with app.app_context():
        answer = outbound.post(receiver.url(), b"{}", {})
    assert answer.status == 500
    assert len(answer.excerpt) <= outbound.EXCERPT_BYTES and answer.excerpt.endswith("x")
    assert "\ufffd" in answer.excerpt


def test_no_answer_is_a_readable_failure(app, receiver, monkeypatch):
    """A refused connection and an answer that does not come in time fail with words for the log."""
    with app.app_context():
        with pytest.raises(outbound.RequestFailed, match="connection refused"):
            outbound.post(f"http://127.0.0.1:{free_port()}/hook", b"{}", {})
        release = threading.Event()
        receiver.script(Reply(200, hold=release))
        monkeypatch.setattr(outbound, "READ_SECONDS", 0.5)
        try:
            with pytest.raises(outbound.RequestFailed, match="No answer within"):
                outbound.post(receiver.url(), b"{}", {})
        finally:
            release.set()


def _self_signed(tmp_path, name: str) -> ssl.SSLContext:
    """A server context with a certificate for ``name`` that no public authority signed."""
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.now(UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(hours=1))
        .not_valid_after(now + timedelta(hours=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert_path, key_path)
    return context


def test_https_checks_the_certificate(app, dns_records, tmp_path):
    """Over HTTPS the connection to the checked address still verifies the server's certificate:
    one no trusted authority signed is refused before anything is sent."""
    receiver = WebhookReceiver(tls=_self_signed(tmp_path, "secure.example.test"))
    dns_records.set_addresses("secure.example.test", "127.0.0.1")
    try:
        with (
            app.app_context(),
            pytest.raises(outbound.RequestFailed, match=r"TLS failed: .*certificate verify failed"),
        ):
            outbound.post(f"https://secure.example.test:{receiver.port}/hook", b"{}", {})
    finally:
        receiver.stop()
    assert receiver.requests == []


def test_the_allowlist_is_read_from_the_environment(test_env):
    """OUTBOUND_ALLOWED_NETWORKS is a comma-separated list of CIDRs (a bare address is one host);
    empty lets nothing through; a value that is no network stops the app from starting."""
    networks = make_config({**test_env, "OUTBOUND_ALLOWED_NETWORKS": "10.0.0.0/8, 192.168.1.5,::1"})
    assert networks.OUTBOUND_ALLOWED_NETWORKS == ("10.0.0.0/8", "192.168.1.5/32", "::1/128")
    assert make_config({**test_env, "OUTBOUND_ALLOWED_NETWORKS": ""}).OUTBOUND_ALLOWED_NETWORKS == ()
    assert make_config(test_env).OUTBOUND_ALLOWED_NETWORKS == ("127.0.0.1/32",)
    with pytest.raises(ValueError, match="does not appear to be an IPv4 or IPv6 network"):
        make_config({**test_env, "OUTBOUND_ALLOWED_NETWORKS": "intranet"})
