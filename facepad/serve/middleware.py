"""Pure ASGI middleware of the service: each decides before the request body is read.

Order, outermost first (see `facepad.serve.app.create_app`): `RequestLog` (request id, access
log, metrics), CORS (named origins only), `ApiKeyAuth` (401), `AdmissionGate` (503 beyond the
bounded queue), `BodyLimit` (413 on a declared or streamed size over the limit, counting bytes as
they arrive, chunked or not), then the routes.
"""

from __future__ import annotations

import hmac
import json
import logging
import os
import re
import time
import uuid
from datetime import UTC, datetime
from typing import Any

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from facepad.serve.metrics import ServeMetrics
from facepad.serve.settings import key_digests

PREDICT_PATH = "/v1/predict"
access_logger = logging.getLogger("facepad.access")


def state(scope: Scope) -> dict[str, Any]:
    """The per-request dict that `request.state` reads and writes."""
    return scope.setdefault("state", {})


async def send_json(send: Send, status: int, body: dict, headers: dict[str, str] | None = None):
    """A whole JSON response, sent without touching the request body."""
    data = json.dumps(body).encode("utf-8")
    raw = [(b"content-type", b"application/json"), (b"content-length", str(len(data)).encode())]
    raw += [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()]
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": data})


REQUEST_ID = re.compile(rb"[A-Za-z0-9._-]{8,64}")


class RequestLog:
    """Gives every request an id (`X-Request-ID`), then writes one JSON line and the metrics.

    With `trust_upstream_id` (behind Ray Serve's proxy, which sets its own), a well-formed
    `X-Request-ID` from upstream is kept, so one id follows the request through; otherwise a new
    one is made and sent back in that header (clients never choose what the log records).

    The line holds time, request id, client, method, path, status, latency, and for predictions
    the number of faces and the decisions: never image bytes, scores or depth maps.
    """

    def __init__(
        self,
        app: ASGIApp,
        metrics: ServeMetrics,
        known_paths: set[str],
        trust_upstream_id: bool = False,
    ):
        self.app = app
        self.metrics = metrics
        self.known_paths = known_paths
        self.trust_upstream_id = trust_upstream_id

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        upstream = dict(scope.get("headers", [])).get(b"x-request-id", b"")
        if self.trust_upstream_id and REQUEST_ID.fullmatch(upstream):
            request_id = upstream.decode()
        else:
            request_id, upstream = uuid.uuid4().hex, b""
        info = state(scope)
        info["request_id"] = request_id
        start = time.perf_counter()
        status = {"code": 500}

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
            if message["type"] == "http.response.start" and not upstream:
                headers = list(message.get("headers", []))
                headers.append((b"x-request-id", request_id.encode()))
                message = {**message, "headers": headers}
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            self.record(scope, info, status["code"], time.perf_counter() - start)

    def record(self, scope: Scope, info: dict, status: int, seconds: float) -> None:
        path = scope["path"] if scope["path"] in self.known_paths else "other"
        self.metrics.requests.labels(path, str(status)).inc()
        self.metrics.latency.labels(path).observe(seconds)
        if "decision" in info:
            self.metrics.decisions.labels(info["decision"]).inc()
        if not access_logger.handlers:
            return
        client = scope.get("client")
        line = {
            "time": datetime.now(UTC).isoformat(timespec="milliseconds"),
            "request_id": info["request_id"],
            "client": client[0] if client else None,
            "method": scope["method"],
            "path": path,
            "status": status,
            "latency_ms": round(seconds * 1000, 2),
            "pid": os.getpid(),
        }
        if "decision" in info:
            line["faces"] = info["faces"]
            line["decision"] = info["decision"]
            line["decisions"] = info["decisions"]
        access_logger.info(json.dumps(line))


class ApiKeyAuth:
    """401 unless the request carries one of the keys (`Authorization: Bearer KEY` or
    `X-API-Key: KEY`). Every key is compared, in constant time, whatever matched first."""

    def __init__(self, app: ASGIApp, keys: list[str], public_paths: set[str]):
        self.app = app
        self.digests = key_digests(keys)
        self.public_paths = public_paths

    def allowed(self, scope: Scope) -> bool:
        headers = dict(scope.get("headers", []))
        given = headers.get(b"x-api-key", b"")
        auth = headers.get(b"authorization", b"")
        if not given and auth[:7].lower() == b"bearer ":
            given = auth[7:].strip()
        (digest,) = key_digests([given.decode("utf-8", "replace")])
        found = False
        for expected in self.digests:
            found |= hmac.compare_digest(digest, expected)
        return found and bool(given)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] != "http"
            or scope["path"] in self.public_paths
            or scope["method"] == "OPTIONS"
            or self.allowed(scope)
        ):
            return await self.app(scope, receive, send)
        await send_json(
            send,
            401,
            {
                "error": "missing or wrong API key; send it as 'Authorization: Bearer KEY' "
                "or 'X-API-Key: KEY'",
                "request_id": state(scope).get("request_id"),
            },
            {"WWW-Authenticate": "Bearer"},
        )


class AdmissionGate:
    """Bounds predictions per process: at most `max_inflight + max_queue` admitted at once.

    A prediction beyond that is answered 503 with `Retry-After` before its body is read, so a
    flood costs neither memory nor CPU. Other paths (`/healthz`, `/metrics`) are never held up.
    The route itself runs at most `max_inflight` predictions at once (`Capacity.limiter`).
    """

    def __init__(self, app: ASGIApp, capacity: Capacity):
        self.app = app
        self.capacity = capacity

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] != PREDICT_PATH or scope["method"] != "POST":
            return await self.app(scope, receive, send)
        cap = self.capacity
        if cap.admitted >= cap.max_inflight + cap.max_queue:
            await send_json(
                send,
                503,
                {
                    "error": f"server busy ({cap.admitted} predictions in flight or queued); "
                    f"retry after {cap.retry_after_s} s",
                    "request_id": state(scope).get("request_id"),
                },
                {"Retry-After": str(cap.retry_after_s)},
            )
            return
        cap.admitted += 1
        cap.metrics.admitted.inc()
        try:
            await self.app(scope, receive, send)
        finally:
            cap.admitted -= 1
            cap.metrics.admitted.dec()


class BodyLimit:
    """413 for a body over `max_bytes`, counted while it streams in, never buffered first.

    A declared `Content-Length` over the limit is answered before any byte is read; a chunked (or
    lying) body is cut off as soon as the bytes received pass the limit: reading stops with an
    HTTPException(413) that the app answers, and the server drops the rest of the upload.
    """

    def __init__(self, app: ASGIApp, max_bytes: int, message: str):
        self.app = app
        self.max_bytes = max_bytes
        self.message = message

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        declared = dict(scope.get("headers", [])).get(b"content-length", b"")
        if declared.isdigit() and int(declared) > self.max_bytes:
            body = {"error": self.message, "request_id": state(scope).get("request_id")}
            return await send_json(send, 413, body, {"Connection": "close"})
        received = 0

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise HTTPException(413, self.message, headers={"Connection": "close"})
            return message

        await self.app(scope, limited_receive, send)


class Capacity:
    """Counters and the thread limiter shared by `AdmissionGate` and the predict route."""

    def __init__(self, max_inflight: int, max_queue: int, retry_after_s: int, metrics):
        self.max_inflight = max_inflight
        self.max_queue = max_queue
        self.retry_after_s = retry_after_s
        self.metrics = metrics
        self.admitted = 0
        self._limiters: dict[int, Any] = {}

    def limiter(self):
        """An anyio CapacityLimiter of `max_inflight` tokens for the running event loop."""
        import asyncio

        import anyio

        loop = id(asyncio.get_running_loop())
        if loop not in self._limiters:
            self._limiters = {loop: anyio.CapacityLimiter(self.max_inflight)}
        return self._limiters[loop]
