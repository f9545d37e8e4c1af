"""Reading raw HTTP/1.1 answers off a socket, for tests that speak bytes, not a client."""

from __future__ import annotations

import socket


def read_answers(
    sock: socket.socket, count: int, *, head_first: bool = False
) -> list[tuple[bytes, dict[str, str], bytes]]:
    """`count` answers as (status line, lower-cased headers, body); the first has no body
    when it answers a HEAD (`head_first`). Fails if the server closes before them."""
    buffer = b""
    answers: list[tuple[bytes, dict[str, str], bytes]] = []
    while len(answers) < count:
        while b"\r\n\r\n" not in buffer:
            chunk = sock.recv(65536)
            assert chunk, f"closed after {len(answers)} of {count} answers: {buffer!r}"
            buffer += chunk
        head, buffer = buffer.split(b"\r\n\r\n", 1)
        status, *lines = head.split(b"\r\n")
        headers = {}
        for line in lines:
            name, _, value = line.decode("latin-1").partition(":")
            headers[name.strip().lower()] = value.strip()
        size = 0 if head_first and not answers else int(headers.get("content-length", "0"))
        while len(buffer) < size:
            chunk = sock.recv(65536)
            assert chunk, "closed in the middle of a body"
            buffer += chunk
        answers.append((status, headers, buffer[:size]))
        buffer = buffer[size:]
    return answers
