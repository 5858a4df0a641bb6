"""The HTTP server of ``sealcheck serve``: uvicorn with the connection limits it lacks.

uvicorn (0.55, h11 protocol, asyncio loop) times only the pause *between* requests of a
keep-alive connection. A connection that sends part of a request line, of its headers or of its
body and then waits is held for ever, so a few hundred such sockets (no key needed) use up the
process's file descriptors. Past that limit asyncio's accept loop (CPython 3.11,
``selector_events._accept_connection``) retries ``accept()`` up to `backlog` times per tick and
logs a traceback for each EMFILE: tens of MB of log per second, while ``/healthz`` no longer
answers. Three small pieces close that, each where uvicorn gives no hook:

1. :class:`_TimedH11Protocol`, uvicorn's h11 protocol with two timers: a deadline for a
   request's line and headers (not extended by more bytes, so dripping one byte at a time does
   not help) and a limit on pauses in a body. uvicorn's own keep-alive timeout still closes
   idle connections between requests. It also closes a connection whose request body is
   still coming (after a 413 or an early 401, service/limits.py) by lingering: the answer
   and a FIN go out, and what the client still sends is dropped for at most LINGER_SECONDS
   and LINGER_BYTES before the socket closes. A plain close of a socket with unread bytes
   makes the kernel send a reset, and a client still sending then loses the answer it was
   about to read (curl: "Recv failure: Connection reset by peer"); nginx lingers likewise.
2. :class:`_Listener`, the listening socket, whose ``accept()`` sheds a connection (a quick
   503, then close) when it would hold a descriptor in the top part of the file table, kept
   for the database, photos and pipeline, or when `max_connections` are open. It decides at
   accept time, because asyncio may accept a whole backlog in one tick before any protocol
   sees a connection; a low descriptor number proves the table below it is not full (Linux
   hands out the lowest free one).
3. An event-loop exception handler that logs the accept loop's EMFILE at most once a minute,
   without traceback, should the application's own files ever fill the reserve.

A reverse proxy in front should still add TLS, per-client limits and rates (README).
"""

from __future__ import annotations

import asyncio
import errno
import json
import logging
import resource
import socket
import time
from typing import Any

import h11
import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol

from service.settings import Settings

__all__ = ["ServerSetupError", "build_server", "connection_limits"]

# Descriptors kept free for everything but client connections: the database (a SQLite file with
# its WAL and shared memory per pooled connection, or PostgreSQL sockets), photos being written
# and read, upload spools, the model and the thread pools. A quarter of the soft limit, at least
# this many.
FD_RESERVE_MIN = 128

# Logged through uvicorn's logger so that these lines look like, and go where, the server's do.
log = logging.getLogger("uvicorn.error")

_SHED_ANSWER = (
    b"HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\n"
    b"retry-after: 1\r\nconnection: close\r\ncontent-length: %d\r\n\r\n%s")
_SHED_DETAIL = json.dumps({"detail": "the server has too many open connections; retry in a "
                           "moment"}).encode()
_SHED_PER_CALL = 256
# The lingering close (above): enough for a client to read the answer and stop sending, little
# enough that a client sending on is cut off well within 1 MB past its route's body cap.
LINGER_SECONDS = 2.0
LINGER_BYTES = 256 * 1024
_ACCEPT_OUT_OF_RESOURCE = "socket.accept() out of system resource"  # asyncio's message


class ServerSetupError(ValueError):
    """The server cannot start as configured; one-line message saying how to fix it."""


class _Throttled:
    """A warning logged at most once per `every` seconds, with how many it stood for."""

    def __init__(self, every: float) -> None:
        self.every = every
        self.last = -float("inf")
        self.skipped = 0

    def warn(self, message: str, *args: Any) -> None:
        now = time.monotonic()
        if now - self.last < self.every:
            self.skipped += 1
            return
        more = f" (and {self.skipped} more since the last such line)" if self.skipped else ""
        log.warning(message + more, *args)
        self.last, self.skipped = now, 0


def connection_limits(settings: Settings) -> tuple[int, int]:
    """(the most connections held at once, the file descriptor number below which a connection
    may live), from the soft RLIMIT_NOFILE and ``SEALCHECK_MAX_CONNECTIONS``."""
    soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    if soft == resource.RLIM_INFINITY:
        soft = 1 << 20
    if soft < 2 * FD_RESERVE_MIN:
        raise ServerSetupError(f"the soft file limit is {soft} descriptors, too few to serve "
                               f"clients beside the database and photos; raise it to at least "
                               f"{2 * FD_RESERVE_MIN} (ulimit -n)")
    fd_ceiling = soft - max(FD_RESERVE_MIN, soft // 4)
    wanted = settings.max_connections
    if wanted is not None and wanted > fd_ceiling:
        raise ServerSetupError(
            f"SEALCHECK_MAX_CONNECTIONS={wanted} needs more file descriptors than the soft "
            f"limit of {soft} gives (room for {fd_ceiling} connections beside the database and "
            "photos); lower it or raise the limit (ulimit -n)")
    return (wanted or fd_ceiling), fd_ceiling


class _LingeringTransport:
    """The connection's transport as uvicorn sees it, except that closing it while the
    request's body is still coming lingers (:meth:`_TimedH11Protocol.linger`)."""

    def __init__(self, transport: asyncio.Transport, protocol: _TimedH11Protocol) -> None:
        self.raw = transport
        self.protocol = protocol

    def close(self) -> None:
        protocol = self.protocol
        if protocol.lingering:
            return
        if protocol.conn.their_state is h11.SEND_BODY and not (
                protocol.lost or self.raw.is_closing()):
            protocol.linger()
        else:
            self.raw.close()

    def is_closing(self) -> bool:
        return self.protocol.lingering or self.raw.is_closing()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.raw, name)


class _TimedH11Protocol(H11Protocol):
    """uvicorn's h11 protocol plus a request-head deadline, a body pause limit and a
    lingering close."""

    header_timeout: float = 10.0
    read_timeout: float = 15.0

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._timer: asyncio.TimerHandle | None = None
        self._timing: str | None = None  # "head" or "body"
        self.lingering = self.lost = False
        self._dropped = 0

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self.transport = _LingeringTransport(transport, self)  # type: ignore[assignment]
        self._start("head")  # silence before the first request counts toward the deadline

    def data_received(self, data: bytes) -> None:
        if self.lingering:
            self._dropped += len(data)
            if self._dropped > LINGER_BYTES:  # still sending: cut off
                self.transport.raw.close()
            return
        super().data_received(data)
        self._follow(arrived=True)

    def eof_received(self) -> None:
        if self.lingering:  # the client is done sending: nothing more to wait for
            self.transport.raw.close()

    def on_response_complete(self) -> None:
        super().on_response_complete()  # may start a pipelined request already received
        self._follow(arrived=False)

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True
        self._stop()
        super().connection_lost(exc)

    def linger(self) -> None:
        """Close after the answer without a reset: send a FIN, drop what still arrives."""
        self.lingering = True
        self._stop()
        raw = self.transport.raw
        raw.write_eof()  # once the answer is written
        self.flow.resume_reading()
        self._timer = self.loop.call_later(LINGER_SECONDS, raw.close)

    def _follow(self, arrived: bool) -> None:
        """Set the timer for what the client owes now, from h11's view of the request."""
        if self.lingering:
            return
        state = self.conn.their_state
        if state is h11.IDLE and (arrived or self.conn.trailing_data[0]):
            if self._timing != "head":  # part of a head: a deadline, more bytes do not move it
                self._start("head")
        elif state is h11.SEND_BODY:
            if arrived or self._timing != "body":  # every arrival restarts the pause limit
                self._start("body")
        else:  # request complete (or none begun): uvicorn's keep-alive timer takes over
            self._stop()

    def _start(self, timing: str) -> None:
        self._stop()
        delay = self.header_timeout if timing == "head" else self.read_timeout
        self._timer = self.loop.call_later(delay, self._expired)
        self._timing = timing

    def _stop(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._timer = self._timing = None

    def _expired(self) -> None:
        waiting_on_us = self.flow.read_paused or (
            self.cycle is not None and self.cycle.waiting_for_100_continue)
        if self._timing == "body" and waiting_on_us:
            # The application has not asked for more of the body yet (uvicorn stopped
            # reading, or the client awaits "100 Continue"): the client is not the one waiting.
            self._start("body")
            return
        self._timer = self._timing = None
        # abort, not close: there is nothing to flush to a client that stopped sending, and the
        # descriptor must be freed now.
        self.transport.raw.abort()


class _Listener(socket.socket):
    """The listening socket; its ``accept()`` sheds connections the server cannot afford.

    asyncio's selector loop calls ``accept()`` on this object (the loop is forced to asyncio:
    uvloop would accept in C). Shed connections get a fixed 503 and are closed within the
    call, so they never reach uvicorn or hold a descriptor.
    """

    def __init__(self, family: int, connections: set, max_connections: int,
                 fd_ceiling: int) -> None:
        super().__init__(family, socket.SOCK_STREAM)
        self.connections = connections  # uvicorn's open connections (ServerState.connections)
        self.max_connections = max_connections
        self.fd_ceiling = fd_ceiling
        self.shed = _Throttled(every=10)
        self.emfile_at = -float("inf")

    def accept(self) -> tuple[socket.socket, Any]:
        for _ in range(_SHED_PER_CALL):
            if time.monotonic() - self.emfile_at < 1:
                # asyncio retries accept() up to `backlog` times after an EMFILE; end its batch
                # (it re-arms the listener itself, in a second).
                raise BlockingIOError(errno.EAGAIN, "out of file descriptors")
            try:
                conn, address = super().accept()  # BlockingIOError when none is pending
            except OSError as exc:
                if exc.errno in (errno.EMFILE, errno.ENFILE):
                    self.emfile_at = time.monotonic()
                raise
            if conn.fileno() < self.fd_ceiling and len(self.connections) < self.max_connections:
                return conn, address
            self.shed.warn("shedding new connections: %d open, limit %d (descriptor %d, "
                           "reserve starts at %d)", len(self.connections),
                           self.max_connections, conn.fileno(), self.fd_ceiling)
            _shed(conn)
        # Let the event loop run between bursts; the listener stays readable, so the next
        # tick sheds on.
        raise BlockingIOError(errno.EAGAIN, "shed enough for one turn of the loop")


def _shed(conn: socket.socket) -> None:
    try:
        conn.setblocking(False)
        conn.send(_SHED_ANSWER % (len(_SHED_DETAIL), _SHED_DETAIL))
    except OSError:
        pass  # the client is gone or its buffer is full: closing is answer enough
    finally:
        conn.close()


class _Server(uvicorn.Server):
    """uvicorn's server, which also keeps the accept loop's EMFILE from filling the log."""

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        loop = asyncio.get_running_loop()
        emfile = _Throttled(every=60)

        def handle(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
            if context.get("message") == _ACCEPT_OUT_OF_RESOURCE:
                emfile.warn("out of file descriptors, new connections wait (%s); raise the "
                            "file limit (ulimit -n) or lower SEALCHECK_MAX_CONNECTIONS",
                            context.get("exception"))
            else:
                loop.default_exception_handler(context)

        loop.set_exception_handler(handle)
        await super().startup(sockets)


def build_server(app: Any, settings: Settings, host: str, port: int
                 ) -> tuple[uvicorn.Server, socket.socket]:
    """The server for `app` and its bound listening socket: ``server.run(sockets=[listener])``.

    Raises :class:`ServerSetupError` when the file limit or the settings do not allow serving,
    or the address cannot be bound.
    """
    max_connections, fd_ceiling = connection_limits(settings)
    protocol = type("TimedH11Protocol", (_TimedH11Protocol,), {
        "header_timeout": float(settings.header_timeout),
        "read_timeout": float(settings.read_timeout)})
    config = uvicorn.Config(app, http=protocol, loop="asyncio", log_level="info",
                            timeout_keep_alive=settings.keepalive_timeout)
    server = _Server(config)
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    listener = _Listener(family, server.server_state.connections, max_connections, fd_ceiling)
    try:
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind((host, port))
    except OSError as exc:
        listener.close()
        raise ServerSetupError(f"cannot listen on {host}:{port} ({exc.strerror}); choose another "
                               "--host or --port") from None
    log.info("Listening on http://%s:%d; at most %d connections (soft file limit %d); request "
             "head within %d s, body pauses up to %d s, idle keep-alive %d s",
             f"[{host}]" if family == socket.AF_INET6 else host, port, max_connections,
             resource.getrlimit(resource.RLIMIT_NOFILE)[0], settings.header_timeout,
             settings.read_timeout, settings.keepalive_timeout)
    return server, listener
