"""llmswitch-tiny: a complete backend for any OpenAI-style chat server, on the llmswitch toolkit."""

from collections.abc import AsyncIterator, Iterator

from llmswitch import hookimpl, kit
from llmswitch.errors import (AuthError, BadResponseError, LLMSwitchError, ModelNotFoundError, RateLimitError,
                              UnsupportedOptionError)
from llmswitch.http_headers import parse_retry_after
from llmswitch.types import (BackendInfo, Check, CheckStatus, HealthReport, OptionSpec, Request, Response,
                             StreamEnd, StreamEvent, Target, TextDelta, Usage, UsageEvent)

INFO = BackendInfo(
    name="tiny", summary="any OpenAI-style chat server", default_model="test-model",
    key_env="TINY_API_KEY", key_required=False, default_base_url="http://127.0.0.1:8000/v1",
    options=(OptionSpec("base_url", "str", None, "the server, ending in /v1"),
             OptionSpec("timeout", "float", 60.0, "seconds to wait for each read")),
    generation_extras=(OptionSpec("reasoning_effort", "str", description="how hard a reasoning model thinks",
                                  choices=("low", "medium", "high")),),
)
KEY = "export TINY_API_KEY=... with a key that has access to this model"
STATUS_ERRORS = {401: (AuthError, KEY), 403: (AuthError, KEY), 404: (ModelNotFoundError, "pick a model it lists")}


@hookimpl
def llmswitch_backends() -> list[BackendInfo]:
    return [INFO]


def status_error(target: Target, answer: kit.ErrorAnswer) -> LLMSwitchError:
    """The one piece of error handling that is wire format: status and body to an error with a remedy."""
    message = f"the server at {target.base_url} answered {answer.status}: {answer.body[:200].decode(errors='replace')}"
    if answer.status == 429:
        return RateLimitError(message, retry_after=parse_retry_after(answer.headers), remedy="wait, try again")
    kind, remedy = STATUS_ERRORS.get(answer.status, (BadResponseError, "look at the server's log"))
    return kind(message, remedy=remedy, status_code=answer.status)


def chat(target: Target, request: Request, stream: bool) -> kit.Call:
    if request.top_k is not None:  # every setting is sent or refused, never dropped
        raise UnsupportedOptionError("OpenAI-style servers take no top_k", remedy="remove top_k")
    messages = [{"role": "system", "content": request.system}] if request.system else []
    messages += [{"role": m.role, "content": m.content} for m in request.messages]
    settings = {"temperature": request.temperature, "top_p": request.top_p, "max_tokens": request.max_tokens,
                "seed": request.seed, "stop": list(request.stop) or None, **request.extras,
                "stream_options": {"include_usage": True} if stream else None}
    body = {"model": target.model, "messages": messages, "stream": stream,
            **{name: value for name, value in settings.items() if value is not None}}
    return kit.Call(endpoint(target), "POST", "chat/completions", body)


def endpoint(target: Target) -> kit.Endpoint:
    url = kit.check_base_url(target, target.base_url or "", "http://127.0.0.1:8000/v1")
    return kit.Endpoint(url, target.profile, "tiny", f"the server at {url}", timeout=target.option("timeout"),
                        headers={"Authorization": f"Bearer {target.api_key.value}"} if target.api_key else {},
                        unreachable_remedy="start the server", status_error=lambda a: status_error(target, a))


def usage(data: dict | None) -> Usage:
    return Usage(data.get("prompt_tokens"), data.get("completion_tokens")) if isinstance(data, dict) else Usage()


class Chunks:
    """SSE events to stream events: the state machine that both the sync and the async stream drive."""

    def __init__(self, target: Target) -> None:
        self.target, self.done, self.finish, self.usage = target, False, None, None

    def feed(self, event: kit.SSEEvent) -> tuple[StreamEvent, ...]:
        if event.data == "[DONE]":
            self.done = True
            return ()
        try:
            chunk = kit.json_object(event.data)
        except ValueError:
            raise BadResponseError(f"not JSON: {event.data[:80]!r}", remedy="check base_url") from None
        self.usage = chunk.get("usage") or self.usage
        for choice in chunk.get("choices") or ():
            self.finish = choice.get("finish_reason") or self.finish
            if text := (choice.get("delta") or {}).get("content"):
                return (TextDelta(text),)
        return ()

    def close(self) -> tuple[StreamEvent, ...]:
        if not self.done:
            raise BadResponseError("the answer was cut off", remedy="the text so far is kept; try again")
        return UsageEvent(usage(self.usage)), StreamEnd(self.finish, self.target.model)


@hookimpl
def complete(target: Target, request: Request) -> Response:  # AsyncClient gets it by joining astream
    document = kit.request_json(chat(target, request, stream=False))
    choice = (document.get("choices") or [{}])[0]
    return Response(choice.get("message", {}).get("content") or "", choice.get("finish_reason"),
                    usage(document.get("usage")), document.get("model") or target.model)


@hookimpl
def stream(target: Target, request: Request) -> Iterator[StreamEvent]:
    call = chat(target, request, stream=True)  # a refused setting raises here, before anything is sent
    return kit.stream(call, kit.SSEDecoder(call.endpoint.server), Chunks(target))


@hookimpl
def astream(target: Target, request: Request) -> AsyncIterator[StreamEvent]:
    call = chat(target, request, stream=True)
    return kit.astream(call, kit.SSEDecoder(call.endpoint.server), Chunks(target))


@hookimpl
def health(target: Target, timeout: float, offline: bool) -> HealthReport:
    try:
        listing = {} if offline else kit.request_json(kit.Call(endpoint(target), "GET", "models", timeout=timeout))
    except LLMSwitchError as error:
        return HealthReport.from_checks([Check("server", CheckStatus.FAIL, error.message, error.remedy)])
    served = target.model in [model.get("id") for model in listing.get("data") or []]
    status = CheckStatus.SKIP if offline else CheckStatus.PASS if served else CheckStatus.FAIL
    return HealthReport.from_checks([Check("model", status, "offline" if offline else f"served: {served}",
                                           None if served else "set model to one the server lists")])
