"""The HTTP side of `bridge serve` (Starlette): the webhook endpoints, `/health`, `/metrics`.

A webhook route does only what `intake.Intake` says and answers at once; the body is read
only up to the size limit (a `Content-Length` over it is refused before a byte is read,
and a body that streams past it is refused as soon as it does).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from bridge.serve.intake import Intake, Verdict

__all__ = ["create_app"]


def create_app(
    intake: Intake, health: Callable[[], dict[str, Any]], registry: CollectorRegistry
) -> Starlette:
    """The ASGI app: `POST /webhooks/<side>[/<pair>]`, `GET /health`, `GET /metrics`."""

    async def webhook(request: Request) -> Response:
        params = request.path_params
        endpoint = intake.endpoint(params["side"], params.get("pair"))
        if endpoint is None:
            return JSONResponse({"error": "no such webhook endpoint"}, status_code=404)
        refused = intake.received(endpoint)
        if refused is not None:
            return _answer(refused)
        limit = intake.max_body_bytes
        length = request.headers.get("content-length")
        if length is not None and (not length.isdigit() or int(length) > limit):
            return _answer(intake.too_large(endpoint))
        body = bytearray()
        async for chunk in request.stream():
            body += chunk
            if len(body) > limit:
                return _answer(intake.too_large(endpoint))
        headers = {key.lower(): value for key, value in request.headers.items()}
        return _answer(intake.accept(endpoint, headers, bytes(body)))

    async def health_route(_request: Request) -> Response:
        facts = health()
        return JSONResponse(facts, status_code=200 if facts["ok"] else 503)

    async def metrics_route(_request: Request) -> Response:
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    return Starlette(
        routes=[
            Route("/webhooks/{side}", webhook, methods=["POST"]),
            Route("/webhooks/{side}/{pair}", webhook, methods=["POST"]),
            Route("/health", health_route, methods=["GET"]),
            Route("/metrics", metrics_route, methods=["GET"]),
        ]
    )


def _answer(verdict: Verdict) -> Response:
    return JSONResponse(verdict.body, status_code=verdict.status)
