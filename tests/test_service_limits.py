"""The connection layer of `sealcheck serve` (issue 25): slow and idle clients cannot use up the
server's file descriptors or fill its log, and an internal error keeps the connection.

A real `sealcheck serve` in a subprocess whose soft file limit is 256, with short timeouts set
through its settings (the full-scale figure, 1100 sockets against 1024: benchmarks/slow_clients.py).
"""

from __future__ import annotations

import resource
import socket
import subprocess
import sys
import threading
import time

import httpx
import pytest
import uvicorn

from service.app import create_app
from service.server import ServerSetupError, connection_limits
from service.settings import Settings
from testkit.server import free_port, stop
from testkit.slow_clients import (
    close_all,
    closed_by_server,
    exchange,
    healthz_seconds,
    open_slow_clients,
    serving_with_file_limit,
)

TIMEOUTS = {"SEALCHECK_HEADER_TIMEOUT": "2", "SEALCHECK_READ_TIMEOUT": "2",
            "SEALCHECK_KEEPALIVE_TIMEOUT": "1"}
HEALTHZ = b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """(port, log file) of a server with the soft file limit 256 and 1-2 s timeouts."""
    data_dir = tmp_path_factory.mktemp("limits")
    port = free_port()
    with serving_with_file_limit(port, data_dir, 256, TIMEOUTS):
        yield port, data_dir / "server.log"


def _seconds_until_closed(sock: socket.socket, limit: float, drip: bytes = b"") -> float:
    """Seconds until the server closes `sock`, sending `drip` every 0.25 s meanwhile."""
    start = time.monotonic()
    sock.settimeout(0.25)
    while time.monotonic() - start < limit:
        try:
            if drip:
                sock.sendall(drip)
            if sock.recv(65536) == b"":
                return time.monotonic() - start
        except TimeoutError:
            continue
        except OSError:  # reset
            return time.monotonic() - start
    return float("inf")


def test_300_slow_clients_against_a_256_file_limit_leave_healthz_answering(server):
    port, log = server
    before = log.stat().st_size
    opened_at = time.monotonic()
    sockets, failed = open_slow_clients(port, 300)  # idle, partial line, headers, body
    try:
        assert failed == 0
        time.sleep(max(0.0, opened_at + 4 - time.monotonic()))  # timeouts 2 s, and margin
        seconds, status = healthz_seconds(port)
        assert status == 200 and seconds < 1, (status, seconds)
        # Every one was shed at once or cut at its timeout: none holds a descriptor.
        assert closed_by_server(sockets) == 300
    finally:
        close_all(sockets)
    grown = log.read_bytes()[before:]
    # Today's code: no answer, and ~20 MB of accept-loop tracebacks in these 4 s.
    assert len(grown) < 20_000 and b"Traceback" not in grown, grown[-3000:]


def test_a_request_head_dripped_byte_by_byte_is_cut_at_the_header_deadline(server):
    port, _ = server
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        # A header line every 0.25 s, for ever: the deadline (2 s) does not move.
        assert 1.5 < _seconds_until_closed(sock, 10, drip=b"X-Slow: 1\r\n") < 3.5


def test_a_body_that_pauses_less_than_the_read_timeout_is_received_whole(server):
    port, _ = server
    body = b"api_key=sck_not-a-key&next=%2Fgoldens"
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.sendall(b"POST /signin HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: "
                     b"application/x-www-form-urlencoded\r\nContent-Length: %d\r\n\r\n"
                     % len(body))
        for piece in (body[:10], body[10:20], body[20:30]):  # 4.5 s in all, pauses of 1.5 s
            sock.sendall(piece)
            time.sleep(1.5)
        status, _, answer = exchange(sock, body[30:])
    assert status == 401 and b"not known" in answer  # the form arrived and was judged


def test_an_idle_keep_alive_connection_is_closed_after_the_keepalive_timeout(server):
    port, _ = server
    with socket.create_connection(("127.0.0.1", port)) as sock:
        assert exchange(sock, HEALTHZ)[0] == 200
        assert exchange(sock, HEALTHZ)[0] == 200  # kept alive
        assert 0.5 < _seconds_until_closed(sock, 10) < 2.5  # SEALCHECK_KEEPALIVE_TIMEOUT=1


def test_connections_beyond_max_connections_get_a_quick_503(tmp_path):
    port = free_port()
    with serving_with_file_limit(port, tmp_path, 1024, {"SEALCHECK_MAX_CONNECTIONS": "4"}):
        held = [socket.create_connection(("127.0.0.1", port)) for _ in range(4)]
        try:
            time.sleep(0.5)  # accepted
            with socket.create_connection(("127.0.0.1", port)) as extra:
                extra.settimeout(2)
                answer = b""
                while chunk := extra.recv(65536):
                    answer += chunk
            assert answer.startswith(b"HTTP/1.1 503 ")
            assert b"retry-after: 1" in answer and b"too many open connections" in answer
        finally:
            close_all(held)
        time.sleep(0.3)
        assert healthz_seconds(port)[1] == 200


def test_an_internal_error_answers_500_json_and_keeps_the_connection(tmp_path, caplog):
    app = create_app(Settings(data_dir=tmp_path))

    @app.get("/boom")
    def boom() -> None:
        raise RuntimeError("a bug")

    port = free_port()
    # Plain uvicorn: the answer and the connection are the app's doing, whatever the server.
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="info"))
    thread = threading.Thread(target=server.run)
    thread.start()
    try:
        deadline = time.monotonic() + 60
        while not server.started and time.monotonic() < deadline:
            time.sleep(0.05)
        with socket.create_connection(("127.0.0.1", port)) as sock:
            status, headers, body = exchange(sock, b"GET /boom HTTP/1.1\r\nHost: x\r\n\r\n")
            assert status == 500 and headers["content-type"] == "application/json"
            assert b"internal error (RuntimeError)" in body
            assert exchange(sock, HEALTHZ)[0] == 200  # the same connection
        metrics = httpx.get(f"http://127.0.0.1:{port}/metrics").text
        assert 'route="/boom",status="500"' in metrics
    finally:
        server.should_exit = True
        thread.join(30)
    tracebacks = [r for r in caplog.records if r.exc_info]
    assert len(tracebacks) == 1 and "internal error on GET /boom" in tracebacks[0].getMessage()


def test_serve_refuses_more_connections_than_the_file_limit_allows(cli, tmp_path, monkeypatch):
    monkeypatch.setenv("SEALCHECK_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("SEALCHECK_MAX_CONNECTIONS", "100000000")
    code, out, err = cli("serve", "--port", str(free_port()))
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert "SEALCHECK_MAX_CONNECTIONS=100000000" in err and "ulimit -n" in err


_FULL_TABLE_SERVER = r"""
import os, resource, sys, threading, time
from pathlib import Path
from service.server import build_server
from service.settings import Settings

async def app(scope, receive, send):  # the smallest ASGI app: the server is what is tested
    if scope["type"] == "lifespan":
        while (message := await receive())["type"] != "lifespan.shutdown":
            await send({"type": "lifespan.startup.complete"})
        await send({"type": "lifespan.shutdown.complete"})
        return
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-length", b"2")]})
    await send({"type": "http.response.body", "body": b"ok"})

resource.setrlimit(resource.RLIMIT_NOFILE, (256, resource.getrlimit(resource.RLIMIT_NOFILE)[1]))
server, listener = build_server(app, Settings(data_dir=Path(sys.argv[2])), "127.0.0.1",
                                int(sys.argv[1]))

def fill_then_release():  # the application's own files take every descriptor left
    while not server.started:
        time.sleep(0.05)
    fillers = []
    while True:
        try:
            fillers.append(os.open(os.devnull, os.O_RDONLY))
        except OSError:
            break
    print("full", flush=True)
    sys.stdin.readline()
    for fd in fillers:
        os.close(fd)

threading.Thread(target=fill_then_release, daemon=True).start()
server.run(sockets=[listener])
"""


def test_past_the_file_limit_the_accept_loop_logs_one_line_and_recovers(tmp_path):
    port = free_port()
    with open(tmp_path / "server.log", "wb") as log:
        child = subprocess.Popen([sys.executable, "-c", _FULL_TABLE_SERVER, str(port),
                                  str(tmp_path)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                 stderr=log, text=True)
    try:
        assert child.stdout.readline() == "full\n"
        waiting = [socket.create_connection(("127.0.0.1", port)) for _ in range(50)]
        time.sleep(3)  # accept() fails with EMFILE; the loop retries every second
        lines = (tmp_path / "server.log").read_text().splitlines()
        emfile = [line for line in lines if "out of file descriptors" in line]
        # Today's asyncio alone: a traceback per retry, up to 2048 a second.
        assert len(emfile) == 1 and not any("Traceback" in line for line in lines), lines
        child.stdin.write("release\n")
        child.stdin.flush()
        time.sleep(1.5)  # the next retry accepts the connections that waited
        status, _, body = exchange(waiting[0], HEALTHZ)
        assert (status, body) == (200, b"ok")
        close_all(waiting)
    finally:
        stop(child)


@pytest.mark.parametrize(("soft", "cap"), [(256, 128), (1024, 768), (4096, 3072)])
def test_the_connection_cap_keeps_a_quarter_of_the_file_limit_and_at_least_128(soft, cap):
    limits = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (soft, limits[1]))
    try:
        assert connection_limits(Settings()) == (cap, cap)
        assert connection_limits(Settings(max_connections=100)) == (100, cap)
        with pytest.raises(ServerSetupError, match="ulimit -n"):
            connection_limits(Settings(max_connections=cap + 1))
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, limits)
