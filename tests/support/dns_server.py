"""A DNS server on loopback for the tests: answers TXT lookups from records a test sets.

The domain checks of single sign-on ask a real DNS server over UDP with dnspython; this one
(dnslib's server) answers from ``records`` and says NXDOMAIN for every other name.
"""

from __future__ import annotations

import threading

from dnslib import QTYPE, RCODE, RR, TXT
from dnslib.server import DNSLogger, DNSServer


class _Records:
    """dnslib's resolver interface, over a dict of name -> TXT strings."""

    def __init__(self):
        self.txt: dict[str, list[str]] = {}
        self.lock = threading.Lock()

    def resolve(self, request, handler):
        reply = request.reply()
        name = str(request.q.qname).rstrip(".").lower()
        with self.lock:
            values = list(self.txt.get(name, ()))
        if not values:
            reply.header.rcode = RCODE.NXDOMAIN
        elif request.q.qtype in (QTYPE.TXT, QTYPE.ANY):
            for value in values:
                reply.add_answer(RR(request.q.qname, QTYPE.TXT, rdata=TXT(value), ttl=60))
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

    def clear(self) -> None:
        with self.records.lock:
            self.records.txt.clear()

    def stop(self) -> None:
        self.server.stop()
        self.server.server.server_close()
