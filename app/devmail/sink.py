"""A local SMTP server that accepts every message and stores it as a file.

    python -m app.devmail.sink --host 127.0.0.1 --port 1025 --maildir instance/mail

Each message is written to a hidden temporary file and renamed to
``<timestamp>-<uuid>.eml``, so a reader never sees half a message. It relays
nothing. SIGTERM or SIGINT stops it cleanly (exit status 0). ``make run``
starts one when ``SMTP_URL`` is unset; the tests start their own.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import sys
from pathlib import Path

from aiosmtpd.smtp import SMTP, Envelope, Session

from app.devmail import new_message_name

HOSTNAME = "worklane-devmail"


def log(message: str) -> None:
    print(f"devmail: {message}", file=sys.stderr, flush=True)


class MaildirHandler:
    """aiosmtpd handler: every accepted message becomes one ``.eml`` file."""

    def __init__(self, maildir: Path) -> None:
        self.maildir = maildir

    def store(self, content: bytes) -> Path:
        name = new_message_name()
        temporary = self.maildir / f".{name}.tmp"
        with open(temporary, "wb") as fh:
            fh.write(content)
            fh.flush()
            os.fsync(fh.fileno())
        final = self.maildir / name
        os.replace(temporary, final)
        return final

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        content = envelope.original_content or b""
        if isinstance(envelope.content, str) and not content:
            content = envelope.content.encode()
        path = await asyncio.to_thread(self.store, content)
        log(f"stored {path.name} for {', '.join(envelope.rcpt_tos)}")
        return "250 Message accepted for delivery"


async def serve(host: str, port: int, maildir: Path) -> None:
    loop = asyncio.get_running_loop()
    stopping = asyncio.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stopping.set)
    handler = MaildirHandler(maildir)
    server = await loop.create_server(
        lambda: SMTP(handler, hostname=HOSTNAME, enable_SMTPUTF8=True, loop=loop),
        host=host,
        port=port,
    )
    log(f"listening on smtp://{host}:{port}, storing messages in {maildir}")
    try:
        await stopping.wait()
    finally:
        server.close()
        await server.wait_closed()
    log("stopped")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m app.devmail.sink", description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--maildir", type=Path, required=True, help="where to store the .eml files")
    args = parser.parse_args(argv)
    args.maildir.mkdir(parents=True, exist_ok=True)
    try:
        asyncio.run(serve(args.host, args.port, args.maildir))
    except OSError as exc:  # typically: the port is taken
        log(f"cannot listen on {args.host}:{args.port}: {exc}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
