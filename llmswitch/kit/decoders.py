"""Stream decoders for HTTP backends: server-sent events and newline-delimited JSON, fed bytes as they arrive.

Both are push decoders (``feed(chunk) -> items``, then ``close() -> items``): the same object is driven by a
synchronous ``for chunk in response.iter_bytes()`` loop and by an ``async for`` loop, so the parsing rules
exist once whatever the I/O. Chunk boundaries may fall anywhere: inside a line, a ``\\r\\n`` pair or a
multi-byte character.

One policy for what a server sends wrong, for every backend: bytes that are not UTF-8 (a server in another
character set, a proxy's page, a file), a line longer than ``max_line`` characters (a broken proxy, a server
streaming a file) and an SSE event whose data lines add up to more than ``max_event`` characters (a server
that never sends the blank line ending an event) raise :class:`~llmswitch.errors.BadResponseError` naming the
server, instead of text the model never wrote or a buffer growing without bound. Every item completed before
the first bad byte is delivered first (the error comes with the next ``feed`` or ``close``), so the outcome is
the same however the bytes were split, and the caller keeps the text that arrived before.

The SSE decoder follows the WHATWG event-stream rules: lines end with CR, LF or CRLF; ``data`` lines
accumulate, joined with LF; one space after the colon is dropped; a line starting with ``:`` is a comment;
``id`` and ``retry`` are ignored (a chat answer is never resumed); an event is dispatched only at a blank line
and only if it has data; an event left open when the stream ends is discarded (the backend notices the
answer never said it was done). A leading byte-order mark is skipped.
"""

from __future__ import annotations

import codecs
import itertools
import json
import operator
import re
from collections.abc import Iterator, Sequence
from json.decoder import scanstring  # type: ignore[attr-defined]  # the json module's C string scanner
from typing import Any, NamedTuple

from llmswitch.errors import BadResponseError

MAX_LINE_CHARS = 1 << 20  # 1 MiB of text on one line: far beyond any chat chunk, small enough to stop a runaway
MAX_EVENT_CHARS = 8 << 20  # 8 MiB of data in one SSE event (its data lines together): the same, for many lines


class SSEEvent(NamedTuple):
    """One dispatched event: its type (``message`` unless the server named one) and its data."""

    event: str
    data: str


def not_utf8(source: str, bad: bytes, backend: str | None = None) -> BadResponseError:
    """An answer whose bytes are not UTF-8 (``bad``: the first bytes that are not)."""
    return BadResponseError(
        f"{source} sent text that is not UTF-8 (the bytes {bad!r}); a chat answer must be UTF-8",
        remedy="check base_url (a proxy or another kind of server may answer there) and the server's character "
               "set; the text before those bytes is kept",
        backend=backend,
    )


def _too_long(source: str, limit: int) -> BadResponseError:
    return BadResponseError(
        f"{source} sent a line longer than {limit} characters; that is not a chat stream",
        remedy="check base_url (a proxy or another kind of server may answer there); the text so far is kept",
    )


def _event_too_long(source: str, limit: int) -> BadResponseError:
    return BadResponseError(
        f"{source} sent one event longer than {limit} characters (data lines that never reached the blank line "
        "ending an event); that is not a chat stream",
        remedy="check base_url (a proxy or another kind of server may answer there); the text so far is kept",
    )


class _Lines:
    """Text lines from UTF-8 bytes; a line may end in CR, LF or CRLF (``crlf=False``: LF only, faster)."""

    __slots__ = ("_decoder", "_decode", "_pending", "_pending_size", "_cr", "_any_cr", "max_line", "source",
                 "_start", "_broken")

    def __init__(self, source: str, max_line: int, any_cr: bool) -> None:
        self._decoder = codecs.getincrementaldecoder("utf-8")("strict")  # holds a character split by a read
        self._decode = self._decoder.decode
        self._broken: BadResponseError | None = None  # bytes that are not UTF-8 came: raised at the next call
        self._pending: list[str] = []
        self._pending_size = 0
        self._cr = False  # the last chunk ended with CR: an LF opening the next one belongs to it
        self._any_cr = any_cr
        self._start = True
        self.max_line = max_line
        self.source = source

    def feed(self, chunk: bytes, final: bool = False) -> list[str]:
        if self._broken is not None:
            raise self._broken
        try:
            text = self._decode(chunk, final)
        except UnicodeDecodeError as error:  # the lines before the bad bytes first, then the error
            self._broken = not_utf8(self.source, error.object[error.start : error.end])
            lines = self._split(bytes(error.object[: error.start]).decode("utf-8"))
            if not lines:
                raise self._broken from None
            return lines
        return self._split(text)

    def _split(self, text: str) -> list[str]:
        if not text:
            return []
        if self._start:
            self._start = False
            if text[0] == "\ufeff":
                text = text[1:]
        if self._cr:
            self._cr = False
            if text.startswith("\n"):
                text = text[1:]
        if self._any_cr and "\r" in text:
            self._cr = text.endswith("\r")
            text = text.replace("\r\n", "\n").replace("\r", "\n")
        if "\n" not in text:
            if text:
                self._pending.append(text)
                self._pending_size += len(text)
                if self._pending_size > self.max_line:
                    raise _too_long(self.source, self.max_line)
            return []
        lines = text.split("\n")
        longest_possible = len(text) + self._pending_size
        if self._pending:
            self._pending.append(lines[0])
            lines[0] = "".join(self._pending)
            self._pending = []
        tail = lines.pop()
        self._pending_size = len(tail)
        if tail:
            self._pending.append(tail)
        if longest_possible > self.max_line and (
            self._pending_size > self.max_line or any(len(line) > self.max_line for line in lines)
        ):
            raise _too_long(self.source, self.max_line)
        return lines

    def held(self) -> tuple[str, bytes] | None:
        """What a line split by a read left held: the text of the line so far and the bytes of a character
        split by the read; None when something else is held that only :meth:`feed` reads right (a CR whose LF
        may follow, a byte-order mark yet to come, a failure to raise)."""
        if self._cr or self._start or self._broken is not None:
            return None
        return "".join(self._pending), self._decoder.getstate()[0]

    def drop_held(self) -> None:
        """Forget the held part of a line (read with the rest of it by the caller)."""
        self._pending = []
        self._pending_size = 0
        self._decoder.reset()

    def close(self) -> str:
        """What is left after the last line end (the stream ended mid-line)."""
        self.feed(b"", True)
        rest = "".join(self._pending)
        self._pending = []
        return rest


_DATA_LINE = operator.methodcaller("startswith", "data: ")


class SSEDecoder:
    """Server-sent events from bytes, by the WHATWG rules (see the module docstring)."""

    __slots__ = ("_lines", "_event", "_data", "_size", "_max_size", "_broken")

    def __init__(self, source: str = "the server", *, max_line: int = MAX_LINE_CHARS,
                 max_event: int = MAX_EVENT_CHARS) -> None:
        if max_event < max_line:
            raise ValueError(f"max_event ({max_event}) must be at least max_line ({max_line}): a line is part "
                             "of an event")
        self._lines = _Lines(source, max_line, any_cr=True)
        self._event = ""
        self._data: list[str] = []
        # The open event's data so far, each line counted with the LF that joins it: lines are capped one by
        # one, and a server that never sends the blank line must not make the client keep everything it sends.
        self._size = 0
        self._max_size = max_event + 1  # the last line's LF is not part of the data
        self._broken: BadResponseError | None = None  # an event grew too long: raised at the next call

    def feed(self, chunk: bytes) -> list[SSEEvent]:
        """The events completed by this chunk, in order."""
        if self._broken is not None:
            raise self._broken
        lines = self._lines.feed(chunk)
        if len(lines) > 1 and not self._data and not self._event:
            # What servers send: "data: JSON", a blank line, again and again. Read so, a pair of lines at a time
            # (the rules below give the same events); anything else takes the line-by-line path.
            paired = len(lines) & ~1
            datas = lines[0:paired:2]
            if not any(lines[1:paired:2]) and all(map(_DATA_LINE, datas)):
                events = [SSEEvent("message", line[6:]) for line in datas]
                if paired < len(lines):
                    events += self._read(lines[paired:])
                return events
        return self._read(lines)

    def slot_texts(self, chunk: bytes, slot: TextSlot) -> tuple[list[str], list[SSEEvent]] | None:
        """The texts of the events of ``slot`` that ``chunk`` begins with, and the events :meth:`feed` makes of
        the rest of it; None when it begins with no whole event of the slot, and nothing was read: :meth:`feed`
        it. The texts are those :meth:`feed` and :meth:`TextSlot.text_of` would give (empty ones left out, as a
        translator leaves them), for a few passes of C code over the run of text events instead of Python code
        per event; a fast server's reads are such runs, once its first event taught the slot, and the read that
        ends its answer is one followed by the answer's last events (its finish, its usage), which are fed.

        A read may begin inside an event (the part of it the last read held is read with it) and end inside
        one: the part after the last event it completes is held as :meth:`feed` would hold it. A server's
        writes often reach the reader in two reads, so this keeps both on the fast path."""
        lines = self._lines
        held = lines.held() if self._broken is None else None
        if held is None:
            return None  # a CR whose LF may follow, the stream's start, or a failure to raise: feed's to read
        line, split_character = held
        opened = ""  # the event the last read left open, as it would have been sent
        if line or self._data or self._event:
            data = "".join(f"data: {value}\n" for value in self._data)
            opened = (f"event: {self._event}\n" if self._event else "") + data + line
        end = chunk.rfind(b"\n\n") + 2
        if end < 2:
            if not (opened.endswith("\n") and chunk.startswith(b"\n")):
                return None  # no event ends in this read
            end = 1  # the blank line ending the event the last read held
        rest = chunk[end:]
        if len(chunk) + lines._pending_size > lines.max_line or self._size + len(chunk) > self._max_size:
            return None  # more than a line or an event may hold: feed's to refuse
        try:
            text = opened + (split_character + chunk[:end]).decode()
            codecs.utf_8_decode(rest, "strict", False)  # the held part must be UTF-8 too (but for a split character)
        except UnicodeDecodeError:
            return None  # feed says what is wrong, after the text before it
        leading = slot.leading_texts(text)
        if leading is None:
            return None
        texts, length = leading
        self._event, self._data, self._size = "", [], 0
        lines.drop_held()
        # The events after the run (an answer's end, a comment) and the part of an event the read ends in: fed.
        after = text[length:].encode() + rest
        return texts, self.feed(after) if after else []

    def _read(self, lines: list[str]) -> list[SSEEvent]:
        events: list[SSEEvent] = []
        data = self._data
        size = self._size
        for line in lines:
            if line.startswith("data:"):  # the common case first: almost every line is data
                value = line[6:] if line.startswith(" ", 5) else line[5:]
            elif not line:
                if data:
                    events.append(SSEEvent(self._event or "message", data[0] if len(data) == 1 else "\n".join(data)))
                    data = self._data = []
                    size = 0
                self._event = ""
                continue
            elif line[0] != ":":
                name, _, value = line.partition(":")
                if value.startswith(" "):
                    value = value[1:]
                if name == "event":
                    self._event = value
                if name != "data":
                    continue  # "id" and "retry" only matter for reconnecting, which a chat answer never does
            else:
                continue  # a comment
            data.append(value)
            size += len(value) + 1
            if size > self._max_size:
                return self._stop(events)
        self._size = size
        return events

    def _stop(self, events: list[SSEEvent]) -> list[SSEEvent]:
        """The events completed before the one that grew too long, then (now or at the next call) the error:
        the same outcome however the bytes were split."""
        self._broken = _event_too_long(self._lines.source, self._max_size - 1)
        self._data, self._size = [], 0
        if events:
            return events
        raise self._broken

    def close(self) -> list[SSEEvent]:
        """End of stream: an event without its blank line is discarded, as the standard says."""
        if self._broken is not None:
            raise self._broken
        self._lines.close()
        self._data = []
        self._size = 0
        return []


class NDJSONDecoder:
    """Lines of newline-delimited JSON from bytes: each non-blank line, without its ``\\n`` or ``\\r\\n``."""

    __slots__ = ("_lines",)

    def __init__(self, source: str = "the server", *, max_line: int = MAX_LINE_CHARS) -> None:
        self._lines = _Lines(source, max_line, any_cr=False)

    def feed(self, chunk: bytes) -> list[str]:
        return [line[:-1] if line.endswith("\r") else line
                for line in self._lines.feed(chunk) if line and not line.isspace()]

    def close(self) -> list[str]:
        """A last line without a line end still counts (NDJSON does not require the final newline)."""
        rest = self._lines.close()
        if rest.endswith("\r"):
            rest = rest[:-1]
        return [rest] if rest and not rest.isspace() else []


_raw_decode = json.JSONDecoder().raw_decode


def json_object(text: str) -> dict[str, Any]:
    """Parse one JSON object. ``raw_decode`` skips ``json.loads``' wrappers (half the cost per token); text
    with surrounding whitespace takes the lenient path. Raises ValueError for anything but one object."""
    try:
        value, end = _raw_decode(text)
    except ValueError:
        value = json.loads(text)
    else:
        if end != len(text) and text[end:].strip():
            raise ValueError("extra data after the JSON value")
    if type(value) is not dict:
        raise ValueError("not a JSON object")
    return value  # type: ignore[no-any-return]


class TextSlot:
    """The fast path for a stream whose events differ only in their text: learned from one event (its JSON text,
    the object it parses to, where the text is in it), it reads the next events' text without parsing them.

    A server sends each token as the same JSON with one string changed (``{"id":..,"choices":[{"delta":
    {"content":"TEXT"}}]}``), or with a few more strings changed that the backend never reads, named by
    ``varying`` (Ollama stamps every line with the time: ``"created_at"``). An event that is the learned one's
    text with one JSON string literal in the place of each of those strings parses to the learned object with
    only those strings changed: a string literal is self-delimiting, so the rest of the document reads the same.
    :meth:`learn` checks it on the real thing (the event re-parsed with other strings in the slots must be the
    learned object with those strings there, so a repeated key cannot take a slot's place); :meth:`text_of`
    returns None for anything else, and the caller parses that event as usual."""

    __slots__ = ("prefix", "suffix", "start", "suffix_length", "middles", "event", "_head", "_tail", "_cut")

    PROBE = "\u0000llmswitch probe \u00e9\\\""

    def __init__(self, template: str, spans: Sequence[tuple[int, int]], text_index: int,
                 event: str = "message") -> None:
        """``spans``: where each string of ``template`` that may change lies (from just after its opening
        quote to just after its closing quote), in order; ``text_index``: which of them is the text;
        ``event``: the type of the events it reads."""
        self.prefix, self.suffix = template[: spans[0][0]], template[spans[-1][1] :]
        self.start = spans[0][0]
        self.suffix_length = len(self.suffix)
        # Every string but the last: whether it is the text, and the fixed text from it to the next one.
        self.middles = tuple((index == text_index, template[spans[index][1] : spans[index + 1][0]])
                             for index in range(len(spans) - 1))
        self.event = event
        # How a server frames each such event, up to the text and after it (see leading_texts).
        self._head = ("" if event == "message" else f"event: {event}\n") + "data: " + self.prefix
        self._tail = '"' + self.suffix + "\n\n"  # the text's closing quote, the rest of the event
        self._cut = operator.itemgetter(slice(len(self._head), None))

    @classmethod
    def learn(cls, data: str, parsed: dict[str, Any], path: Sequence[str | int], text: str,
              varying: Sequence[Sequence[str | int]] = (), event: str = "message") -> TextSlot | None:
        """The slot of ``text`` (found in ``parsed`` at ``path``) in the data ``data`` of an event of type
        ``event``, or None when it cannot be told apart safely. ``varying``: paths of strings that may change
        from event to event without changing what the event means to the backend; one the event lacks (or
        holds no string at) is not a slot, so an event that has it is parsed."""
        paths = [path, *(other for other in varying if type(_find(parsed, other)) is str)]
        values = [text, *(_find(parsed, other) for other in paths[1:])]
        candidates = [list(_strings(data, each[-1], value)) for each, value in zip(paths, values, strict=True)]
        for spans in itertools.islice(itertools.product(*candidates), 16):  # almost always exactly one
            order = sorted(range(len(spans)), key=lambda index: spans[index][0])
            ordered = [spans[index] for index in order]
            if all(ordered[index][1] < ordered[index + 1][0] for index in range(len(ordered) - 1)) and _holds(
                data, ordered, [paths[index] for index in order], parsed
            ):
                return (cls if len(ordered) == 1 else _VaryingTextSlot)(data, ordered, order.index(0), event)
        return None

    def text_of(self, data: str) -> str | None:
        """The text of ``data`` if it is the learned event with only its text changed, else None."""
        if data.startswith(self.prefix) and data.endswith(self.suffix):
            end = len(data) - self.suffix_length
            if end > self.start:
                try:
                    value, stop = scanstring(data, self.start)
                except ValueError:
                    return None
                if stop == end:
                    return value  # type: ignore[no-any-return]
        return None

    def leading_texts(self, text: str) -> tuple[list[str], int] | None:
        """The texts of the whole events of this slot that ``text`` begins with, each framed the usual way
        (``event: TYPE`` unless it is ``message``, ``data: DATA``, a blank line; LF line ends), and how many
        characters of ``text`` they take; None when it begins with none. Empty texts are left out.

        One split of the whole text at each event's end, a check of which pieces are the learned event up to
        its text (the run of them from the start is read), one regular expression over their texts (each a run
        of JSON string characters and escapes: no quote, backslash or line end of its own, so none can reach
        into the next), and one JSON parse of them as an array, which checks the escapes and must give as many
        strings as there were events."""
        tail = self._tail
        pieces = text.split(tail)
        pieces.pop()  # what follows the last event's end: no whole event of the slot
        starts = list(map(str.startswith, pieces, itertools.repeat(self._head)))
        if False in starts:
            del pieces[starts.index(False) :]  # the run ends at the first other event
        if not pieces:
            return None
        joined = '","'.join(map(self._cut, pieces))
        if _STRING_BODIES.fullmatch(joined) is None:
            return None
        try:
            texts = json.loads('["' + joined + '"]')
        except ValueError:  # an escape JSON does not have, a control character
            return None
        if len(texts) != len(pieces):
            return None
        return [text for text in texts if text], sum(map(len, pieces)) + len(tail) * len(pieces)


# The inside of JSON strings (any character but a quote, a backslash or a line end, and backslash escapes),
# several of them joined by '","'.
_STRING_BODY = r'[^"\\\r\n]*(?:\\[^\r\n][^"\\\r\n]*)*'
_STRING_BODIES = re.compile(_STRING_BODY + '(?:","' + _STRING_BODY + ")*")


class _VaryingTextSlot(TextSlot):
    """A :class:`TextSlot` learned with varying strings: the text is one of several slots, read in order."""

    __slots__ = ()

    def leading_texts(self, text: str) -> tuple[list[str], int] | None:
        """Whole reads are read event by event here (:meth:`text_of`): None."""
        return None

    def text_of(self, data: str) -> str | None:
        """The text of ``data`` if it is the learned event with only its slots' strings changed, else None."""
        if data.startswith(self.prefix) and data.endswith(self.suffix):
            end = len(data) - self.suffix_length
            position, text = self.start, None
            try:
                for is_text, middle in self.middles:  # every slot but the last, and the fixed text after it
                    value, position = scanstring(data, position)
                    if not data.startswith(middle, position):
                        return None
                    position += len(middle)
                    if is_text:
                        text = value
                if end > position:
                    value, stop = scanstring(data, position)
                    if stop == end:
                        return value if text is None else text  # type: ignore[no-any-return]
            except ValueError:
                return None
        return None


def _strings(data: str, key: str | int, value: str) -> Iterator[tuple[int, int]]:
    """Where ``data`` holds ``"key": "value"``: the span of the value from just after its opening quote to just
    after its closing one (a key that is a list index is not looked for)."""
    if not isinstance(key, str):
        return
    name = json.dumps(key)
    at = data.find(name)
    while at != -1:
        position = at + len(name)
        while position < len(data) and data[position] in " \t\r\n":
            position += 1
        if data.startswith(":", position):
            position += 1
            while position < len(data) and data[position] in " \t\r\n":
                position += 1
            if data.startswith('"', position):
                try:
                    found, end = scanstring(data, position + 1)
                except ValueError:
                    return
                if found == value:
                    yield position + 1, end
        at = data.find(name, at + 1)


def _holds(data: str, spans: Sequence[tuple[int, int]], paths: Sequence[Sequence[str | int]],
           parsed: dict[str, Any]) -> bool:
    """Other strings in the slots parse to ``parsed`` with those strings at the slots' paths, and only there."""
    probes = [f"{TextSlot.PROBE}{index}" for index in range(len(spans))]
    pieces, position = [], 0
    for (start, end), probe in zip(spans, probes, strict=True):
        pieces += [data[position:start], json.dumps(probe)[1:]]
        position = end
    pieces.append(data[position:])
    try:
        probed = json_object("".join(pieces))
        for each, probe in zip(paths, probes, strict=True):
            holder: Any = _at(probed, each[:-1])
            if holder[each[-1]] != probe:
                return False
            holder[each[-1]] = _at(parsed, each)
    except (ValueError, LookupError, TypeError):
        return False
    return probed == parsed


def _find(document: Any, path: Sequence[str | int]) -> Any:
    """What is at ``path`` in ``document``, or None."""
    try:
        return _at(document, path)
    except (LookupError, TypeError):
        return None


def _at(document: Any, path: Sequence[str | int]) -> Any:
    for step in path:
        document = document[step]
    return document
