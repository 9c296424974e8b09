"""Who may talk to the server: API keys, loopback-only Host names, no cross-origin requests.

- An API key (when set) is presented as `Authorization: Bearer KEY` or `X-API-Key: KEY` and
  compared in constant time. Binding anything but a loopback address requires one (main.py).
- Bound to loopback, the server answers only to loopback Host names: a web page that points a
  DNS name of its own at 127.0.0.1 (DNS rebinding) gets nothing back.
- A browser request from another origin (its `Origin` header) is refused unless `--cors`
  names that origin: without this any web page could post jobs to a local server with no
  key, since simple form posts need no CORS preflight.
- Every answer carries nosniff / no-referrer / no-framing headers; the page also gets a
  Content-Security-Policy allowing its own scripts only.
"""

from __future__ import annotations

import hmac
import ipaddress
import json
from collections.abc import Iterable, Mapping
from urllib.parse import urlsplit

from starlette.types import ASGIApp, Message, Receive, Scope, Send

LOOPBACK_NAMES = frozenset({"localhost", "localhost.", "ip6-localhost"})

PAGE_POLICY = (
    "default-src 'self'; img-src 'self' blob: data:; media-src 'self' blob:; style-src 'self'; "
    "script-src 'self'; connect-src 'self'; object-src 'none'; frame-ancestors 'none'; "
    "base-uri 'none'; form-action 'none'"
)
#: FastAPI's docs pages load Swagger UI from a CDN with inline scripts: no page policy there.
_DOCS_PATHS = ("/docs", "/redoc")


def is_loopback(host: str) -> bool:
    """True for 127.0.0.0/8, ::1 and localhost (an address this machine alone can reach)."""
    host = host.strip().strip("[]").lower()
    if host in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def presented_key(headers: Mapping[str, str]) -> str | None:
    """The key a request presents: `Authorization: Bearer KEY`, else `X-API-Key: KEY`."""
    auth = headers.get("authorization")
    if auth and auth[:7].lower() == "bearer ":
        return auth[7:].strip()
    key = headers.get("x-api-key")
    return None if key is None else key.strip()


def key_matches(presented: str | None, key: str) -> bool:
    """Constant-time comparison (the time taken does not depend on how much of the key is right)."""
    if presented is None:
        return False
    return hmac.compare_digest(presented.encode("utf-8", "surrogateescape"), key.encode("utf-8"))


class Guard:
    """ASGI middleware: the Host and Origin rules above, and the response headers."""

    def __init__(self, app: ASGIApp, *, loopback_only: bool, cors: Iterable[str] = ()) -> None:
        self.app = app
        self.loopback_only = loopback_only
        self.cors = frozenset(origin.rstrip("/") for origin in cors)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        host = headers.get("host", "")
        problem = self._refusal(host, headers.get("origin"))
        if problem is not None:
            status, message = problem
            await _json(send, status, message)
            return
        path: str = scope.get("path", "")
        extra = [
            (b"x-content-type-options", b"nosniff"),
            (b"referrer-policy", b"no-referrer"),
            (b"x-frame-options", b"DENY"),
        ]
        if not path.startswith(_DOCS_PATHS):
            extra.append((b"content-security-policy", PAGE_POLICY.encode()))
        if path.startswith("/api/"):
            extra.append((b"cache-control", b"no-store"))

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = list(message.get("headers", [])) + extra
            await send(message)

        await self.app(scope, receive, send_with_headers)

    def _refusal(self, host: str, origin: str | None) -> tuple[int, str] | None:
        if self.loopback_only and not is_loopback(_hostname(host)):
            return 400, (
                f"this server answers to 127.0.0.1 and localhost only, not {host[:80]!r} "
                "(bind another address with an API key to serve other names)"
            )
        if origin is None:
            return None
        if origin.rstrip("/") in self.cors:
            return None
        parts = urlsplit(origin)
        if parts.scheme in ("http", "https") and parts.netloc.lower() == host.lower():
            return None  # same origin: the server's own page
        return 403, (
            f"cross-origin request from {origin[:80]!r} refused; start the server with "
            "--cors ORIGIN to allow a web page on another origin"
        )


def _hostname(host: str) -> str:
    """The name part of a Host header: `127.0.0.1:7000` -> `127.0.0.1`, `[::1]:7000` -> `::1`."""
    if host.startswith("["):
        return host[1 : host.find("]")] if "]" in host else host
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


async def _json(send: Send, status: int, message: str) -> None:
    body = json.dumps({"error": message}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"x-content-type-options", b"nosniff"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
