"""A client that announces a huge body and reads the answer the server gives before receiving it."""

from __future__ import annotations

import re
import socket


def announce_huge_body(port: int, path: str, content_type: str, announced: int = 1 << 30) -> str:
    """POST with Content-Length ``announced`` but only 64 KiB sent; return the raw HTTP answer."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(
            f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: {content_type}\r\n"
            f"Content-Length: {announced}\r\n\r\n".encode()
            + b"\xff" * 65536
        )
        received = b""
        while not _complete(received):  # the body may come in a later packet
            chunk = sock.recv(4096)
            if not chunk:
                break
            received += chunk
    return received.decode(errors="replace")


def _complete(answer: bytes) -> bool:
    head, separator, body = answer.partition(b"\r\n\r\n")
    length = re.search(rb"(?im)^content-length:\s*(\d+)", head)
    return bool(separator and length and len(body) >= int(length[1]))
