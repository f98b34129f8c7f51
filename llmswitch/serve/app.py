"""The starlette application: routes, gateway keys, and errors in the shape of the protocol that was spoken."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Awaitable, Callable
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request as HTTPRequest
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from llmswitch.errors import LLMSwitchError
from llmswitch.serve import anthropic_api, failures, openai_api
from llmswitch.serve.answer import ANSWERING, AnswerResponse, send_json
from llmswitch.serve.failures import SHUTTING_DOWN, Failure, GatewayRequestError, failure_of
from llmswitch.serve.fields import parse_body
from llmswitch.serve.gateway import Gateway
from llmswitch.serve.keys import GatewayKeys, presented_key

Handler = Callable[[HTTPRequest], Awaitable[Any]]
ErrorShape = Callable[[Failure], dict[str, Any]]

UNAUTHORIZED = GatewayRequestError(
    "a gateway key is required: send it as 'Authorization: Bearer KEY' (OpenAI clients: api_key) or "
    "'x-api-key: KEY' (Anthropic clients)", status=401, gateway_kind=failures.UNAUTHENTICATED)


def create_app(gateway: Gateway, keys: GatewayKeys) -> Starlette:
    """The gateway's ASGI app over ``gateway``'s profiles, asking for one of ``keys`` when there are any."""

    def guarded(handler: Handler, shape: ErrorShape) -> Handler:
        async def endpoint(request: HTTPRequest) -> Any:
            known = keys.identify(presented_key(request.headers))
            if keys and known is None:
                return error_response(failure_of(UNAUTHORIZED), shape)
            request.state.gateway_key = keys.named.get(known) if known is not None else None
            request.state.profile = None  # the profile asked for, once the body names it (for the error's words)
            try:
                return await handler(request)
            except LLMSwitchError as error:
                return error_response(failure_of(error, request.state.profile), shape)

        return endpoint

    async def chat_completions(request: HTTPRequest) -> Any:
        asked = openai_api.parse_chat(parse_body(await request.body()))
        request.state.profile = asked.model
        call = await gateway.start(asked.model, asked.build, stream=asked.stream, key=request.state.gateway_key)
        return AnswerResponse(gateway, call, openai_api.OpenAIProtocol(asked.model, asked.include_usage))

    async def messages(request: HTTPRequest) -> Any:
        asked = anthropic_api.parse_messages(parse_body(await request.body()))
        request.state.profile = asked.model
        call = await gateway.start(asked.model, asked.build, stream=asked.stream, key=request.state.gateway_key)
        return AnswerResponse(gateway, call, anthropic_api.AnthropicProtocol(asked.model))

    async def count_tokens(request: HTTPRequest) -> Any:
        asked = anthropic_api.parse_messages(parse_body(await request.body()), counting=True)
        request.state.profile = asked.model
        return JSONResponse({"input_tokens": await gateway.count_tokens(asked.model, asked.build)})

    async def models(request: HTTPRequest) -> Any:
        names = gateway.models()
        if "anthropic-version" in request.headers:  # the anthropic SDK's models.list() reads its own shape
            return JSONResponse(anthropic_api.models_list(names))
        return JSONResponse(openai_api.models_list(names))

    async def healthz(request: HTTPRequest) -> Any:
        return JSONResponse({"status": "ok"})

    async def readyz(request: HTTPRequest) -> Any:
        ready, profiles = await gateway.readiness()
        body: dict[str, Any] = {"ready": ready}
        if not keys or keys.accepts(presented_key(request.headers)):
            body["profiles"] = profiles  # which profiles exist and how they fare is for key holders only
        return JSONResponse(body, status_code=200 if ready else 503)

    async def metrics(request: HTTPRequest) -> Any:
        assert gateway.metrics is not None
        return Response(gateway.metrics.exposition(), media_type=CONTENT_TYPE_LATEST)

    openai_shape, anthropic_shape = openai_api.error_body, anthropic_api.error_body
    routes = [
        Route("/v1/chat/completions", guarded(chat_completions, openai_shape), methods=["POST"]),
        Route("/v1/models", guarded(models, openai_shape), methods=["GET"]),
        Route("/v1/messages", guarded(messages, anthropic_shape), methods=["POST"]),
        Route("/v1/messages/count_tokens", guarded(count_tokens, anthropic_shape), methods=["POST"]),
        Route("/healthz", healthz, methods=["GET"]),
        Route("/readyz", readyz, methods=["GET"]),
    ]
    if gateway.metrics is not None:
        routes.append(Route("/metrics", guarded(metrics, openai_shape), methods=["GET"]))
    served = ", ".join(f"{method} {route.path}" for route in routes for method in sorted(route.methods or ())
                       if method != "HEAD")

    async def not_served(request: HTTPRequest, error: Exception) -> Response:
        """A path or method the gateway lacks (embeddings, the Responses API...): said in the protocol's shape,
        with what it does serve, where starlette would answer a plain-text 'Not Found'."""
        assert isinstance(error, HTTPException)
        method, path = request.method, request.url.path[:200]
        if error.status_code == 405:
            allowed = (error.headers or {}).get("Allow", "")
            failure = Failure(405, failures.INVALID_REQUEST,
                              f"{method} {path} is not served by llmswitch serve: {path} takes {allowed}",
                              "method_not_allowed")
            return error_response(failure, shape_for(path), {"Allow": allowed})
        failure = Failure(404, failures.UNKNOWN_PATH,
                          f"{method} {path} is not served by llmswitch serve (it serves {served})", "unknown_path")
        return error_response(failure, shape_for(path))

    paths = frozenset(route.path for route in routes)
    counter = gateway.metrics.http_requests if gateway.metrics is not None else None
    return Starlette(routes=routes, exception_handlers={404: not_served, 405: not_served},
                     middleware=[Middleware(Exchanges, counter=counter, paths=paths)])


def shape_for(path: str) -> ErrorShape:
    """The error shape a client of ``path`` parses: Anthropic's under /v1/messages, OpenAI's anywhere else."""
    if path == "/v1/messages" or path.startswith("/v1/messages/"):
        return anthropic_api.error_body
    return openai_api.error_body


class Exchanges:
    """Every HTTP exchange's response: counted by path and status (refusals before any call too: 400, 401, 404),
    and ended in its protocol's shape when the server's shutdown deadline cancels it.

    Past the deadline the server cancels each request's task; the cancellation stops here, so the operator's
    log gets no traceback and the client gets an answer it understands: a 503 in its protocol's shape when
    nothing was sent yet, the protocol's error event after the text already sent when a stream was going.
    """

    def __init__(self, app: Any, counter: Any, paths: frozenset[str]) -> None:
        self.app, self.counter, self.paths = app, counter, paths

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope["path"] if scope["path"] in self.paths else "other"  # a bounded set of label values
        counter = self.counter
        progress = [False, False]  # the response started, ended

        async def watched(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                progress[0] = True
                if counter is not None:
                    counter.labels(path, str(message["status"])).inc()
            elif not message.get("more_body", False):
                progress[1] = True
            await send(message)

        try:
            await self.app(scope, receive, watched)
        except asyncio.CancelledError:
            task = asyncio.current_task()
            if sys.version_info >= (3, 11) and task is not None:
                task.uncancel()  # this exchange ends here, in an orderly way
            started, ended = progress
            if ended:
                return
            protocol = scope.get(ANSWERING)
            if not started:
                shape = protocol.error_body if protocol is not None else shape_for(scope["path"])
                await send_json(watched, SHUTTING_DOWN.status, shape(SHUTTING_DOWN), SHUTTING_DOWN.headers)
            elif protocol is not None:
                await watched({"type": "http.response.body", "body": protocol.stream_error(SHUTTING_DOWN),
                               "more_body": False})


def error_response(failure: Failure, shape: ErrorShape, headers: dict[str, str] | None = None) -> Response:
    return JSONResponse(shape(failure), status_code=failure.status, headers={**failure.headers, **(headers or {})})
