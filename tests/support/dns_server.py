"""A DNS server on loopback for the tests: answers TXT, A and AAAA lookups from records a test sets.

The domain checks of single sign-on ask a real DNS server over UDP with dnspython; this one
(dnslib's server) answers from ``records`` and says NXDOMAIN for every other name.
"""

from __future__ import annotations

import ipaddress
import threading

from dnslib import AAAA, QTYPE, RCODE, RR, TXT, A
from dnslib.server import DNSLogger, DNSServer


class _Records:
    """dnslib's resolver interface, over dicts of name -> TXT strings and name -> addresses."""

    def __init__(self):
        self.txt: dict[str, list[str]] = {}
        self.addresses: dict[str, list[str]] = {}
        self.lock = threading.Lock()

    def resolve(self, request, handler):
        reply = request.reply()
        name = str(request.q.qname).rstrip(".").lower()
        with self.lock:
            values = list(self.txt.get(name, ()))
            addresses = list(self.addresses.get(name, ()))
        if not values and not addresses:
            reply.header.rcode = RCODE.NXDOMAIN
        if request.q.qtype in (QTYPE.TXT, QTYPE.ANY):
            for value in values:
                reply.add_answer(RR(request.q.qname, QTYPE.TXT, rdata=TXT(value), ttl=60))
        for address in addresses:
            if request.q.qtype == QTYPE.A and ":" not in address:
                reply.add_answer(RR(request.q.qname, QTYPE.A, rdata=A(address), ttl=60))
            elif request.q.qtype == QTYPE.AAAA and ":" in address:
                reply.add_answer(
                    RR(
                        request.q.qname,
                        QTYPE.AAAA,
                        rdata=AAAA(ipaddress.ip_address(address).exploded),
                        ttl=60,
                    )
                )
        return reply


class LocalDNS:
    """The server, on a free UDP port of 127.0.0.1, in a thread."""

    def __init__(self):
        self.records = _Records()
        quiet = DNSLogger("-request,-reply,-truncated,-error,-recv,-send,-data")
        self.server = DNSServer(self.records, address="127.0.0.1", port=0, logger=quiet)
        self.port = self.server.server.server_address[1]
        self.nameserver = f"127.0.0.1:{self.port}"
        self.server.start_thread()

    def set_txt(self, name: str, *values: str) -> None:
        with self.records.lock:
            self.records.txt[name.rstrip(".").lower()] = list(values)

    def set_addresses(self, name: str, *addresses: str) -> None:
        """A and AAAA records of ``name`` (IPv4 and IPv6 addresses)."""
        with self.records.lock:
            self.records.addresses[name.rstrip(".").lower()] = list(addresses)

    def clear(self) -> None:
        with self.records.lock:
            self.records.txt.clear()
            self.records.addresses.clear()

    def stop(self) -> None:
        self.server.stop()
        self.server.server.server_close()
