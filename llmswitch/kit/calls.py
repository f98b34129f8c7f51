"""Requests and streams over HTTP, each in a sync and an async form that share every rule.

The design: what a call is (:class:`Call`), how its failures read (:mod:`llmswitch.kit.transport_errors`, the
plugin's ``status_error``), how its body is decoded (:mod:`llmswitch.kit.decoders`) and how decoded items
become stream events (the plugin's :class:`Translator`) are plain objects with no I/O. The functions here
are the only code that touches the network, one short loop per form: ``stream`` / ``astream``,
``request_json`` / ``arequest_json``. They differ only by ``await``; everything they decide is in the
shared helpers, so the two forms cannot drift apart.

Nothing here retries: a 503 is raised after exactly one request (the router owns retries). The one second
request is a plugin's declared ``fallback`` for a refused optional field (see :class:`Call`).
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator, Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from itertools import chain
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from llmswitch.errors import BackendError, BadResponseError, LLMSwitchError, without_secrets
from llmswitch.http_headers import parse_retry_after
from llmswitch.kit.clients import async_client, sync_client
from llmswitch.kit.decoders import SSEDecoder, TextSlot, json_object, not_utf8
from llmswitch.kit.endpoint import Endpoint, ErrorAnswer
from llmswitch.kit.silence import AnswerWatch
from llmswitch.kit.transport_errors import transport_error
from llmswitch.redirects import is_redirect, redirect_error
from llmswitch.secrets import excerpt
from llmswitch.types import StreamEvent, TextDelta, events_of

if TYPE_CHECKING:
    import httpx2

MAX_ERROR_BODY = 64 * 1024  # an error page is read up to this much: enough for any message
FINISH_BODY_S = 0.05  # the wait for the end of a body after its answer said it was done (see _finish_body)
# Bytes of a stream's first read decoded event by event while its first text is looked for (a fast server's first
# read holds dozens of events: the rest of them are read whole by the slot the first text teaches).
FIRST_TEXT_PART = 4096
STEPS_UP_TO = 64 * 1024  # then a read is decoded whole: what one network read brought goes out in one write


class Decoder(Protocol):
    """Bytes in, decoded items out (:class:`~llmswitch.kit.decoders.SSEDecoder`, ``NDJSONDecoder``)."""

    def feed(self, chunk: bytes) -> Sequence[Any]: ...

    def close(self) -> Sequence[Any]: ...


@runtime_checkable
class SlotTranslator(Protocol):
    """A translator with a :class:`~llmswitch.kit.TextSlot` (learned from its stream's first text events): once
    it has one, the run of such events a read begins with is read whole by :meth:`SSEDecoder.slot_texts`, and
    the translator is told their texts with ``read_by_slot`` instead of being fed each event (the events after
    the run are fed as usual)."""

    slot: TextSlot | None

    def read_by_slot(self, texts: list[str]) -> None:
        """Count ``texts`` (non-empty, in order) as fed: what ``feed`` would have noted for their events."""
        ...


SlotRead = tuple[list[str], Sequence[Any]]  # the texts of a read's run of text events, the items after it


def _slot_reader(decoder: Decoder, translator: Translator) -> Callable[[bytes], SlotRead | None] | None:
    """The whole-read fast path for this decoder and translator (see :class:`SlotTranslator`), or None: a read
    gives the texts of its run of text events and the decoded items after them (for the translator to feed), or
    None when it was not read (then ``decoder.feed`` it)."""
    if not isinstance(decoder, SSEDecoder) or not isinstance(translator, SlotTranslator):
        return None

    def read(chunk: bytes) -> SlotRead | None:
        slot = translator.slot
        if slot is None:
            return None
        read = decoder.slot_texts(chunk, slot)
        if read is not None:
            translator.read_by_slot(read[0])
        return read

    return read


class Translator(Protocol):
    """A backend's wire format: decoded items in, llmswitch stream events out.

    ``feed`` returns the events for one item (usually zero or one); it raises a ``BackendError`` for an
    error the server reported in the stream. ``done`` turns True when the answer says it is complete (the
    rest of the body is not read). ``close`` is called at the end of the body and returns the final events,
    or raises when the answer never said it was done (cut off).
    """

    done: bool

    def feed(self, item: Any) -> Iterable[StreamEvent]: ...

    def close(self) -> Iterable[StreamEvent]: ...


@dataclass
class Call:
    """One HTTP request of a backend, ready to send in either form.

    ``fallback``: a request to send instead when the server refuses this one with one of
    ``fallback_statuses`` (servers that reject an optional field); ``on_fallback`` runs when that worked.
    ``explain``: for a failure, an optional follow-up request and a function that rewrites the error with its
    answer (the OpenAI backend lists the served models when a model is not found).
    ``content``: what the body should be, for the message when a proxy answers with an HTML page instead.
    ``files`` (with ``form`` fields): a multipart upload instead of a JSON ``body`` (a batch input file).
    """

    endpoint: Endpoint
    method: str
    path: str
    body: Any = None
    timeout: float | None = None
    fallback: Call | None = None
    fallback_statuses: tuple[int, ...] = ()
    on_fallback: Callable[[], None] | None = None
    explain: Callable[[LLMSwitchError], tuple[Call, Callable[[Any], LLMSwitchError]] | None] | None = None
    content: str = "JSON"
    form: Mapping[str, str] | None = None
    files: Mapping[str, tuple[str, bytes, str]] | None = None  # field -> (file name, bytes, content type)


# ---- the shared steps (no I/O) -----------------------------------------------------------------------------


def _build(client: httpx2.Client | httpx2.AsyncClient, call: Call) -> httpx2.Request:
    import httpx2

    endpoint = call.endpoint
    timeout = None
    if call.timeout is not None:
        timeout = httpx2.Timeout(call.timeout, connect=min(call.timeout, endpoint.connect_timeout))
    extensions = {"timeout": timeout.as_dict()} if timeout is not None else None
    url = _parsed_url(endpoint.url(call.path))
    if call.files is not None:
        return client.build_request(call.method, url, data=call.form, files=call.files, extensions=extensions)
    return client.build_request(call.method, url, json=call.body, extensions=extensions)


_urls: dict[str, httpx2.URL] = {}


def _parsed_url(text: str) -> httpx2.URL:
    """``text`` as httpx2 parses it, parsed once: a profile calls the same few URLs (a third of the time httpx2
    takes to build a request went to parsing its URL again)."""
    url = _urls.get(text)
    if url is None:
        import httpx2

        if len(_urls) >= 256:
            _urls.clear()
        url = _urls[text] = httpx2.URL(text)
    return url


def _answer_watch(call: Call) -> AnswerWatch:
    endpoint = _endpoint_for(call)
    return AnswerWatch(endpoint.timeout, endpoint.server, profile=endpoint.profile, backend=endpoint.backend)


def _endpoint_for(call: Call) -> Endpoint:
    """The endpoint as failures should describe it (with the call's own timeout, if it has one)."""
    if call.timeout is None:
        return call.endpoint
    from dataclasses import replace

    return replace(call.endpoint, timeout=call.timeout)


def _refuse_redirect(call: Call, response: httpx2.Response) -> None:
    """Redirects are reported, never followed (:mod:`llmswitch.redirects`)."""
    if is_redirect(response.status_code):
        endpoint = call.endpoint
        raise redirect_error(status=response.status_code, location=response.headers.get("location"),
                             request_url=str(response.request.url), base_url=endpoint.base_url,
                             server=endpoint.server, profile=endpoint.profile, backend=endpoint.backend)


def _wants_fallback(call: Call, status: int) -> bool:
    return call.fallback is not None and status in call.fallback_statuses


def _error_answer(call: Call, response: httpx2.Response, body: bytes) -> LLMSwitchError:
    """The plugin's error for a non-2xx answer, carrying the wait the server asked for: read here once, for
    every status and every plugin (a 503 or a 529 may say ``Retry-After`` as a 429 does), unless the plugin
    set its own."""
    answer = ErrorAnswer(response.status_code, response.headers, body, call.path)
    error = without_secrets(call.endpoint.status_error(answer))  # whatever the plugin quoted of the body
    if isinstance(error, BackendError) and error.retry_after is None:
        error.retry_after = parse_retry_after(response.headers)
    return error


def _is_html(response: httpx2.Response) -> bool:
    content_type = response.headers.get("content-type", "").split(";")[0].strip().lower()
    return content_type in ("text/html", "application/xhtml+xml")


def _html_page(call: Call, sample: bytes) -> BadResponseError:
    """A 2xx HTML page where an answer should be (a captive portal, a proxy's login page)."""
    shown = excerpt(" ".join(sample.decode("utf-8", "replace").split()), 120)
    return BadResponseError(
        f"{call.endpoint.server} answered with an HTML page, not {call.content}: {shown!r}",
        remedy=f"check base_url in profile '{call.endpoint.profile}' (a proxy, a login page or another kind of "
        "server answers there)",
        backend=call.endpoint.backend,
    )


def not_json(call: Call, data: bytes) -> BadResponseError:
    shown = excerpt(" ".join(data.decode("utf-8", "replace").split()), 80)
    return BadResponseError(
        f"{call.endpoint.server} answered with something that is not {call.content}: {shown!r}",
        remedy=f"check base_url in profile '{call.endpoint.profile}': it must point at the backend's API",
        backend=call.endpoint.backend,
    )


def _parse(call: Call, data: bytes) -> dict[str, Any]:
    try:
        text = data.decode("utf-8")  # an answer must be UTF-8, streamed or whole (llmswitch.kit.decoders)
    except UnicodeDecodeError as error:
        raise not_utf8(call.endpoint.server, data[error.start : error.end], call.endpoint.backend) from None
    try:
        return json_object(text)
    except ValueError:
        raise not_json(call, data) from None


# ---- sync ------------------------------------------------------------------------------------------------------


def open_response(call: Call) -> httpx2.Response:
    """Send ``call`` and return the response once its headers are in (2xx only; the caller closes it)."""
    import httpx2

    client = sync_client(call.endpoint)
    try:
        response = client.send(_build(client, call), stream=True)
    except httpx2.HTTPError as exc:
        raise transport_error(_endpoint_for(call), exc, answering=False) from None
    if response.status_code < 300:
        return response
    try:
        _refuse_redirect(call, response)
        if _wants_fallback(call, response.status_code):
            assert call.fallback is not None
            fallback = open_response(call.fallback)
            if call.on_fallback is not None:
                call.on_fallback()
            return fallback
        try:
            body = b"".join(_limited(response.iter_bytes()))
        except httpx2.HTTPError:
            body = b""
    finally:
        response.close()
    error = _error_answer(call, response, body)
    follow_up = call.explain(error) if call.explain is not None else None
    if follow_up is not None:
        try:
            error = follow_up[1](request_json(follow_up[0]))
        except LLMSwitchError:
            pass  # the explanation is a bonus: the original error stands
    raise error


def _limited(chunks: Iterable[bytes]) -> Iterator[bytes]:
    size = 0
    for chunk in chunks:
        yield chunk
        size += len(chunk)
        if size >= MAX_ERROR_BODY:
            return


def request_bytes(call: Call) -> bytes:
    """Send ``call`` and return its whole body (a file's content); every failure is raised as an llmswitch
    error, an HTML page where the body should be included."""
    import httpx2

    response = open_response(call)
    try:
        data = response.read()
    except httpx2.HTTPError as exc:
        raise transport_error(_endpoint_for(call), exc, answering=True) from None
    finally:
        response.close()
    if _is_html(response):
        raise _html_page(call, data)
    return data


def request_json(call: Call) -> dict[str, Any]:
    """Send ``call`` and return its JSON object body; every failure is raised as an llmswitch error."""
    return _parse(call, request_bytes(call))


def request_jsonl(call: Call) -> Iterator[dict[str, Any]]:
    """Send ``call`` and yield each line of its JSONL body as an object (a batch's results); a line that is not
    a JSON object is a ``BadResponseError`` quoting it."""
    for line in request_bytes(call).splitlines():
        if line.strip():
            yield _parse(call, line)


def stream(call: Call, decoder: Decoder, translator: Translator) -> Iterator[StreamEvent]:
    """The answer to ``call`` as stream events; closing the iterator closes the connection."""
    import httpx2

    response = open_response(call)
    try:
        if _is_html(response):
            raise _html_page(call, response.read())
        feed, translate = decoder.feed, translator.feed
        read_by_slot = _slot_reader(decoder, translator)
        watch = _answer_watch(call)
        try:
            for chunk in response.iter_bytes():
                answered = False
                read = None if read_by_slot is None else read_by_slot(chunk)
                if read is not None:  # a run of text events: none of them decoded one by one
                    texts, items = read
                    yield from map(TextDelta, texts)
                    answered = bool(texts)
                else:
                    items = feed(chunk)
                for item in items:
                    for event in translate(item):
                        answered = True
                        yield event
                if translator.done:
                    break
                if answered:
                    watch.heard()
                else:
                    watch.check()  # keep-alives alone do not hold the answer open past the timeout
            else:
                for item in decoder.close():
                    yield from translate(item)
        except httpx2.HTTPError as exc:
            raise transport_error(_endpoint_for(call), exc, answering=True) from None
        yield from translator.close()
    finally:
        response.close()  # also when the caller stops early: the server sees the disconnect


# ---- async: the same steps, awaited ---------------------------------------------------------------------------


async def aopen_response(call: Call) -> httpx2.Response:
    """:func:`open_response`, awaited."""
    import httpx2

    client = async_client(call.endpoint)
    try:
        response = await client.send(_build(client, call), stream=True)
    except httpx2.HTTPError as exc:
        raise transport_error(_endpoint_for(call), exc, answering=False) from None
    if response.status_code < 300:
        return response
    try:
        _refuse_redirect(call, response)
        if _wants_fallback(call, response.status_code):
            assert call.fallback is not None
            fallback = await aopen_response(call.fallback)
            if call.on_fallback is not None:
                call.on_fallback()
            return fallback
        parts: list[bytes] = []
        try:
            async for chunk in response.aiter_bytes():
                parts.append(chunk)
                if sum(map(len, parts)) >= MAX_ERROR_BODY:
                    break
        except httpx2.HTTPError:
            pass
        body = b"".join(parts)
    finally:
        await response.aclose()
    error = _error_answer(call, response, body)
    follow_up = call.explain(error) if call.explain is not None else None
    if follow_up is not None:
        try:
            error = follow_up[1](await arequest_json(follow_up[0]))
        except LLMSwitchError:
            pass
    raise error


async def arequest_json(call: Call) -> dict[str, Any]:
    """:func:`request_json`, awaited."""
    import httpx2

    response = await aopen_response(call)
    try:
        data = await response.aread()
    except httpx2.HTTPError as exc:
        raise transport_error(_endpoint_for(call), exc, answering=True) from None
    finally:
        await response.aclose()
    if _is_html(response):
        raise _html_page(call, data)
    return _parse(call, data)


def astream(call: Call, decoder: Decoder, translator: Translator) -> AsyncIterator[StreamEvent]:
    """:func:`stream`, awaited; cancelling the task that iterates it closes the connection."""
    return events_of(astream_batches(call, decoder, translator))


async def astream_batches(call: Call, decoder: Decoder,
                          translator: Translator) -> AsyncGenerator[list[StreamEvent], None]:
    """:func:`astream`'s events in lists: the events of one network read together (a fast server's read
    carries dozens), so whoever relays them pays per read, not per token. The first text goes out alone, at
    once: the time to the first token never waits for the rest of its read. A failure raised by the
    translator comes after the events before it, as with :func:`astream`."""
    import httpx2

    from llmswitch.kit.readahead import WHOLE_READS, ReadAhead  # asyncio: never imported on the sync path

    response = await aopen_response(call)
    read_ahead: ReadAhead | None = None
    try:
        if _is_html(response):
            raise _html_page(call, await response.aread())
        feed, translate = decoder.feed, translator.feed
        read_by_slot = _slot_reader(decoder, translator)
        watch = _answer_watch(call)
        waiting_for_text = True
        batch: list[StreamEvent] = []
        chunks: AsyncIterator[bytes] = response.aiter_bytes()
        reads_whole = response.extensions.get(WHOLE_READS, False)  # kit.http11's bodies need no ReadAhead
        ended = False
        later = b""  # the part of a read after the part decoded in this step
        step = FIRST_TEXT_PART  # the most decoded in one step: doubled after the first text, up to STEPS_UP_TO
        try:
            while True:
                if later:
                    chunk, later = later, b""
                else:
                    try:
                        chunk = await chunks.__anext__()
                    except StopAsyncIteration:
                        ended = True
                        break
                if step and read_by_slot is not None:
                    if len(chunk) > step:
                        # The first text is looked for in the read's first part, decoded event by event; the rest
                        # is read whole with the slot that text teaches, in steps that double, so that a relay's
                        # client has the first of them to work on while the next is decoded.
                        chunk, later = chunk[:step], chunk[step:]
                    if not waiting_for_text:
                        step = step * 2 if step < STEPS_UP_TO else 0
                answered = False
                read = None if read_by_slot is None or waiting_for_text else read_by_slot(chunk)
                if read is not None:  # a run of text events: none of them decoded one by one
                    texts, items = read
                    batch.extend(map(TextDelta, texts))
                else:
                    items = feed(chunk)
                    if waiting_for_text:
                        for index, item in enumerate(items):
                            before = len(batch)
                            batch.extend(translate(item))
                            if any(type(event) is TextDelta for event in batch[before:]):
                                waiting_for_text, answered, items = False, True, items[index + 1 :]
                                yield batch
                                batch = []
                                break
                        else:
                            items = ()  # all translated above
                batch.extend(chain.from_iterable(map(translate, items)))  # per token: the translator alone
                if translator.done:
                    break
                if batch or answered:
                    watch.heard()
                    if batch:
                        yield batch
                        batch = []
                else:
                    watch.check()  # keep-alives alone do not hold the answer open past the timeout
                if read_ahead is None and not waiting_for_text and not reads_whole:
                    chunks = read_ahead = ReadAhead(chunks)  # the answer goes on: what a network read brings, at once
            if ended:
                for item in decoder.close():
                    batch.extend(translate(item))
            batch.extend(translator.close())
        except Exception as exc:
            if batch:
                yield batch  # what arrived before the failure, as astream delivers it
            if isinstance(exc, httpx2.HTTPError):
                raise transport_error(_endpoint_for(call), exc, answering=True) from None
            raise
        if batch:
            yield batch
        if translator.done:
            await _finish_body(chunks)
    finally:
        if read_ahead is not None:
            await read_ahead.aclose()
        await response.aclose()


async def _finish_body(chunks: AsyncIterator[bytes]) -> None:
    """Read the end of a body whose answer said it was done, so that its connection goes back to the pool: a
    body left unread closes the connection, and the next call pays a new one (a TCP handshake and its close,
    about a tenth of the gateway's CPU per stream, and time before its first token). The end normally came with
    the last event or right after; a server that holds the body open longer is not waited for (then the
    connection is closed, as before)."""
    import anyio  # httpx2's own async layer
    import httpx2

    left = MAX_ERROR_BODY
    try:
        with anyio.move_on_after(FINISH_BODY_S):
            async for chunk in chunks:
                left -= len(chunk)
                if left < 0:
                    return  # more than an answer's end: not worth reading for a connection
    except httpx2.HTTPError:
        pass

