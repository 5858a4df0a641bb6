"""A client that streams a huge request body over a raw socket and counts what the server
took before it answered or closed: how the request-body caps (service/limits.py) are measured
against a real ``sealcheck serve``, by tests and by benchmarks/edge_cutoff.py.
"""

from __future__ import annotations

import dataclasses
import re
import select
import socket
import time

__all__ = ["Cutoff", "stream_post"]

_BOUNDARY = "sealcheckboundary"
_SEND_BUFFER = 16 * 1024  # small, so that what the client's kernel holds barely counts


@dataclasses.dataclass(frozen=True)
class Cutoff:
    """How a streamed POST ended."""

    status: int | None  # of the server's answer; None: closed without one
    answer: bytes  # the answer's head and the start of its body
    sent: int  # body bytes the connection accepted before the answer or the close
    seconds: float

    @property
    def connection_closed(self) -> bool:
        return b"connection: close" in self.answer.lower()


def stream_post(port: int, path: str, body_bytes: int, *, headers: dict[str, str] | None = None,
                chunked: bool = False, chunk: int = 64 * 1024, limit_s: float = 60.0,
                field: str = "images", part_bytes: int | None = None,
                keep_sending: bool = False) -> Cutoff:
    """POST a multipart body of `body_bytes` (file parts named `field` of `part_bytes` each,
    or one part of them all: zeros after a JPEG marker) to 127.0.0.1:`port`, with a
    Content-Length or `chunked`. Stop as soon as the server answers, or with `keep_sending`
    (as an attacker would) only once it closes the connection."""
    head = (f"--{_BOUNDARY}\r\nContent-Disposition: form-data; name=\"{field}\"; "
            f"filename=\"huge.jpg\"\r\nContent-Type: image/jpeg\r\n\r\n").encode()
    part_end = b"\r\n" + head
    framing = ("Transfer-Encoding: chunked" if chunked else f"Content-Length: {body_bytes}")
    extra = "".join(f"{name}: {value}\r\n" for name, value in (headers or {}).items())
    request = (f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n{extra}{framing}\r\n"
               f"Content-Type: multipart/form-data; boundary={_BOUNDARY}\r\n\r\n").encode()
    payload = b"\xff\xd8\xff" + bytes(chunk - 3)
    start = time.monotonic()
    sent, answer, closed = 0, b"", False
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, _SEND_BUFFER)
        sock.settimeout(10)  # a server that neither reads nor answers for 10 s took no more
        sock.connect(("127.0.0.1", port))
        sock.sendall(request)
        data, in_part = head, 0
        while sent < body_bytes and time.monotonic() < start + limit_s:
            if select.select([sock], [], [], 0)[0]:
                try:
                    received = sock.recv(65536)
                except ConnectionResetError:
                    received = b""
                answer += received
                if not received or not keep_sending:
                    closed = not received
                    break  # the server answered or closed: stop sending
            if part_bytes is not None and in_part + len(data) > part_bytes:
                data, in_part = part_end, 0  # the next photo
            in_part += len(data)
            data = data[:body_bytes - sent]
            frame = f"{len(data):x}\r\n".encode() + data + b"\r\n" if chunked else data
            try:
                sock.sendall(frame)
            except (BrokenPipeError, ConnectionResetError, TimeoutError):
                break
            sent += len(data)
            data = payload
        if chunked and sent >= body_bytes:
            sock.sendall(b"0\r\n\r\n")
        try:
            while not closed and not _complete(answer):
                received = sock.recv(65536)
                if not received:
                    break
                answer += received
        except (ConnectionResetError, TimeoutError):
            pass
    status = None
    if answer.startswith(b"HTTP/1.1 "):
        status = int(answer[9:12])
    return Cutoff(status, answer, sent, time.monotonic() - start)


def _complete(answer: bytes) -> bool:
    """The answer's head and as much of its body as its Content-Length says."""
    head, found, body = answer.partition(b"\r\n\r\n")
    if not found:
        return False
    length = re.search(rb"(?im)^content-length: *(\d+)", head)
    return length is None or len(body) >= int(length[1])
