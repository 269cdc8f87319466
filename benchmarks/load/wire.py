"""HTTP/1.1 on a VEN's own TLS connection, by hand: the request bytes and what counts as failed."""

from __future__ import annotations


class RequestFailed(Exception):
    """The server answered with an HTTP error status instead of an OpenADR reply."""


def http_request(path: str, host: str, body: bytes) -> bytes:
    head = (
        f"POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/xml\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    )
    return head.encode("ascii") + body
