"""Slow clients against a real ``sealcheck serve`` whose soft file limit is set low.

Used by tests/test_service_limits.py (small scale) and benchmarks/slow_clients.py (issue 25's
figure: 1100 sockets against a soft limit of 1024). Each socket is one of four kinds of
client that opens a connection and then waits: idle (sends nothing), a partial request line,
partial headers, or complete headers and part of a body (a sign-in form, which the server
reads).
"""

from __future__ import annotations

import contextlib
import os
import resource
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx

from testkit.server import SEALCHECK, stop, wait_ready

KINDS: dict[str, bytes] = {
    "idle": b"",
    "request line": b"GET /healthz HT",
    "headers": b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: slow",
    "body": (b"POST /signin HTTP/1.1\r\nHost: 127.0.0.1\r\n"
             b"Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 400\r\n\r\n"
             b"api_key=sck_"),
}


def open_slow_clients(port: int, count: int) -> tuple[list[socket.socket], int]:
    """`count` connections to 127.0.0.1:`port`, the kinds in turn, each sent its partial
    request; (the sockets, how many could not connect or send)."""
    sockets, failed = [], 0
    kinds = list(KINDS.values())
    for n in range(count):
        sock = socket.socket()
        sock.settimeout(5)
        try:
            sock.connect(("127.0.0.1", port))
            if kinds[n % len(kinds)]:
                sock.sendall(kinds[n % len(kinds)])
        except OSError:
            sock.close()
            failed += 1
            continue
        sockets.append(sock)
    return sockets, failed


def closed_by_server(sockets: list[socket.socket]) -> int:
    """How many of `sockets` the server has closed (end of stream or reset; an answer such as
    a 503 before the close counts too)."""
    closed = 0
    for sock in sockets:
        sock.setblocking(False)
        try:
            while chunk := sock.recv(65536):
                del chunk  # an answer the server sent before closing
            closed += 1
        except BlockingIOError:
            pass  # still open, nothing sent
        except OSError:
            closed += 1  # reset
    return closed


def close_all(sockets: list[socket.socket]) -> None:
    for sock in sockets:
        sock.close()


def healthz_seconds(port: int, timeout: float = 10) -> tuple[float, int | str]:
    """Time of a fresh `GET /healthz`, and its status (or the transport error's name)."""
    start = time.perf_counter()
    try:
        status: int | str = httpx.get(f"http://127.0.0.1:{port}/healthz",
                                      timeout=timeout).status_code
    except httpx.HTTPError as exc:
        status = type(exc).__name__
    return time.perf_counter() - start, status


def _soft_file_limit(soft: int):
    def apply() -> None:  # in the child, before exec: only the server's soft limit changes
        hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    return apply


@contextlib.contextmanager
def serving_with_file_limit(port: int, data_dir: Path, soft_limit: int,
                            settings: dict[str, str] | None = None
                            ) -> Iterator[subprocess.Popen]:
    """`sealcheck serve` on 127.0.0.1:`port` with the soft RLIMIT_NOFILE `soft_limit`, SQLite
    and photos in `data_dir`, its log in `data_dir`/server.log; ready when yielded."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SEALCHECK_")}
    env.update(SEALCHECK_DATA_DIR=str(data_dir), SEALCHECK_WORKERS="1", **(settings or {}))
    with open(data_dir / "server.log", "ab") as log:
        server = subprocess.Popen([SEALCHECK, "serve", "--port", str(port)], env=env,
                                  stdout=log, stderr=subprocess.STDOUT, cwd=data_dir,
                                  preexec_fn=_soft_file_limit(soft_limit))
    try:
        wait_ready(f"http://127.0.0.1:{port}", server)
        yield server
    finally:
        stop(server)


def exchange(sock: socket.socket, request: bytes) -> tuple[int, dict[str, str], bytes]:
    """Send one raw HTTP/1.1 request on an open connection and read its answer (which must
    carry a Content-Length, as the service's do): (status, headers in lower case, body). The
    connection stays open for the next request if the server keeps it; a closed one raises
    ConnectionError."""
    sock.sendall(request)
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("the server closed the connection before answering")
        data += chunk
    head, body = data.split(b"\r\n\r\n", 1)
    lines = head.decode("latin-1").split("\r\n")
    headers = dict((k.strip().lower(), v.strip())
                   for k, v in (line.split(":", 1) for line in lines[1:]))
    while len(body) < int(headers["content-length"]):
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("the server closed the connection within its answer")
        body += chunk
    return int(lines[0].split()[1]), headers, body
