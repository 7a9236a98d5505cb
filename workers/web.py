"""The web process: the app served by waitress, stopped gracefully.

``waitress-serve`` stops on SIGTERM by closing every connection at once, requests in flight
included. This runner builds the same waitress server and, on SIGTERM (or SIGINT):

1. closes its listening socket, so new connections are refused (a proxy in front of several
   web processes sends them to another one);
2. lets the requests in flight finish. A request arriving on a connection that is already
   open is still served, with ``Connection: close``; an idle connection is left for its client
   to close (nginx closes idle upstream connections after its ``keepalive_timeout``), because
   a server closing an idle connection races a client that is just sending on it;
3. exits once no connection is left, or after ``shutdown_seconds`` at the latest (then the
   requests still running are cut and counted in the log).

Before serving, the objects start-up made (modules, the app, the ORM's mappers: some 150,000)
are moved out of the garbage collector's reach (``gc.freeze``). They live as long as the
process, yet each full collection walked them all: about 100 ms with the GIL held, every few
thousand requests, stalling every thread at once.
"""

from __future__ import annotations

import gc
import logging
import signal
import threading
import time

from flask import Flask
from sqlalchemy.orm import configure_mappers
from waitress import wasyncore
from waitress.channel import HTTPChannel
from waitress.server import BaseWSGIServer, MultiSocketServer, create_server
from waitress.task import WSGITask

from app.core.logs import written_in_background

log = logging.getLogger(__name__)

#: While stopping, a connection idle this long is closed (see above: above nginx's 3 s).
DRAIN_IDLE_SECONDS = 5.0
#: At most one "requests are waiting for a thread" warning per this many seconds.
QUEUE_WARNING_SECONDS = 10.0


class QueuedRequests:
    """Waitress's ``queue_logger``, which it calls (``warning``) each time a request finds every
    thread busy and has to wait in the queue. Two things happen then:

    - The loop hands the GIL over to the threads at work (``time.sleep(0)``). Otherwise it keeps
      the GIL to read and queue more requests while those threads wait for it, up to Python's
      switch interval (5 ms), to finish the requests they hold. Measured on `/healthz` under
      ``wrk -c16`` (8 threads): about 30% more requests per second and less CPU per request.
    - A warning, at most once per ``seconds``, with the deepest queue seen and how many requests
      waited. Waitress itself writes "Task queue depth is N" for every such request: on a loaded
      process a line per request, which says nothing new.
    """

    def __init__(self, logger: logging.Logger, seconds: float = QUEUE_WARNING_SECONDS, clock=time.monotonic):
        self.logger, self.seconds, self.clock = logger, seconds, clock
        self._next = 0.0
        self._deepest = 0
        self._waited = 0

    def warning(self, message: str, depth: int, *args) -> None:
        # Called under the dispatcher's lock (ThreadedTaskDispatcher.add_task): none of its own needed.
        self._deepest = max(self._deepest, depth)
        self._waited += 1
        now = self.clock()
        if now >= self._next:
            self._next = now + self.seconds
            self.logger.warning(
                "requests are waiting for a web thread",
                extra={"queue_depth_max": self._deepest, "requests_queued": self._waited},
            )
            self._deepest = self._waited = 0
        time.sleep(0)  # let the threads at work run now (see above)


class GracefulServer:
    """A waitress server that stops accepting, drains its connections, then returns from ``run``."""

    def __init__(self, app, shutdown_seconds: float, **settings):
        self.shutdown_seconds = shutdown_seconds
        self.draining = False
        runner = self

        class DrainingTask(WSGITask):
            def build_response_header(self):
                if runner.draining:  # answer, then close: the client must not reuse this connection
                    self.request.headers["CONNECTION"] = "close"
                return super().build_response_header()

        class Channel(HTTPChannel):
            task_class = DrainingTask

        self.map: dict = {}
        # create_server binds the listening sockets (one per address) into self.map.
        self.server = create_server(app, map=self.map, **settings)
        self.dispatcher = self.server.task_dispatcher
        self.dispatcher.queue_logger = QueuedRequests(logging.getLogger("waitress.queue"))
        for listener in self.listeners():
            listener.channel_class = Channel
        #: The pipes that wake the loop (the listeners may share one), kept past the listeners' close.
        self.triggers = list({id(d.trigger): d.trigger for d in self.listeners()}.values())

    def listeners(self) -> list[BaseWSGIServer]:
        return [d for d in self.map.values() if isinstance(d, BaseWSGIServer)]

    def channels(self) -> list[HTTPChannel]:
        return [d for d in self.map.values() if isinstance(d, HTTPChannel)]

    @property
    def addresses(self) -> list[tuple[str, int]]:
        if isinstance(self.server, MultiSocketServer):
            return [(s.effective_host, s.effective_port) for s in self.server.effective_listen]
        return [(self.server.effective_host, self.server.effective_port)]

    def stop(self, *_signal) -> None:
        """Begin a graceful stop (a signal handler): the loop notices on its next turn."""
        self.draining = True
        for listener in self.listeners():
            listener.pull_trigger()

    def run(self) -> int:
        """Serve until ``stop``; then drain. Returns the number of requests cut at the deadline."""
        loop_timeout = self.server.adj.asyncore_loop_timeout
        use_poll = self.server.adj.asyncore_use_poll
        try:
            while not self.draining:
                wasyncore.loop(timeout=loop_timeout, map=self.map, use_poll=use_poll, count=1)
            return self._drain(use_poll)
        finally:
            # The threads first, as waitress's own close does: a thread ends each request by waking
            # the loop through its trigger, a pipe, which must still be open then. Closed under a
            # thread still running (a request cut at the deadline), that write would fail, or land
            # in whatever file reused the pipe's descriptor: once closed, the trigger is pulled no more.
            self.dispatcher.shutdown(cancel_pending=True, timeout=1)
            for trigger in self.triggers:
                _close_trigger_for_good(trigger)
            wasyncore.close_all(self.map)

    def _close_idle(self, cutoff: float) -> None:
        for channel in self.channels():
            if not channel.requests and not channel.total_outbufs_len and channel.last_activity < cutoff:
                channel.will_close = True  # the loop closes it (waitress's own idle timeout does the same)

    def _drain(self, use_poll: bool) -> int:
        for listener in self.listeners():
            # Only the listening socket: the trigger stays, the running requests wake the loop with it.
            listener.accepting = False
            wasyncore.dispatcher.close(listener)
        in_flight = sum(len(c.requests) for c in self.channels())
        log.info(
            "web stopping: no longer accepting",
            extra={"connections": len(self.channels()), "requests_in_flight": in_flight},
        )
        deadline = time.monotonic() + self.shutdown_seconds
        while self.channels() and time.monotonic() < deadline:
            self._close_idle(time.time() - DRAIN_IDLE_SECONDS)
            wasyncore.loop(timeout=0.1, map=self.map, use_poll=use_poll, count=1)
        cut = sum(len(c.requests) for c in self.channels())
        if cut:
            log.warning("web stopped with requests still running", extra={"requests_cut": cut})
        else:
            log.info("web stopped", extra={"connections_left": len(self.channels())})
        return cut


def _close_trigger_for_good(trigger) -> None:
    """Close waitress's trigger so that a thread pulling it at the same moment, or later, does
    nothing, instead of writing to a closed (or reused) descriptor."""
    lock = threading.Lock()
    pull = trigger.pull_trigger
    closed = False

    def pull_unless_closed(thunk=None):
        with lock:
            if not closed:
                pull(thunk)

    trigger.pull_trigger = pull_unless_closed
    with lock:
        closed = True
        trigger.close()


def run_web(app: Flask, host: str, port: int, threads: int, shutdown_seconds: float, **settings) -> int:
    """Serve ``app`` until SIGTERM/SIGINT, then stop gracefully; returns the requests cut."""
    # Waitress drops every X-Forwarded-* header unless told which proxy to trust; the app trusts
    # PROXY_COUNT hops itself (ProxyFix), so waitress passes them on exactly when that is set.
    settings.setdefault("clear_untrusted_proxy_headers", not app.config.get("PROXY_COUNT"))
    server = GracefulServer(
        app, shutdown_seconds, host=host, port=port, threads=threads, ident="worklane", **settings
    )
    signal.signal(signal.SIGTERM, server.stop)
    signal.signal(signal.SIGINT, server.stop)
    frozen = freeze_startup_objects()
    for address in server.addresses:
        log.info(
            "web serving",
            extra={
                "address": f"http://{address[0]}:{address[1]}",
                "threads": threads,
                "gc_frozen_objects": frozen,
                **settings,
            },
        )
    with written_in_background():
        return server.run()


def freeze_startup_objects() -> int:
    """Keep what start-up made out of every later garbage collection (see the module's notes);
    returns how many objects that is. The mappers are configured first, as the first query would."""
    configure_mappers()
    gc.collect()
    gc.freeze()
    return gc.get_freeze_count()
