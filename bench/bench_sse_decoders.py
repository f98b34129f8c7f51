"""The toolkit's SSE decoder against httpx-sse's and httpx2's own (derived from httpx-sse), on the same bytes.

Why llmswitch.kit has its own decoder rather than httpx-sse (the issue asked to use it where it fits):

- httpx-sse's ``_api.py`` imports httpx, not httpx2, and its package ``__init__`` imports ``_api``: with only
  httpx2 installed, ``import httpx_sse`` fails. Only its decoder classes could be used, fed lines of text: the
  bytes must first be decoded with replacement (``iter_text``), which turns invalid UTF-8 into U+FFFD silently,
  where llmswitch's decoders raise a clear ``BadResponseError`` after the events before the bad bytes;
- it departs from the WHATWG rules in two places a chat stream can meet: an event with ``event:``/``id:``/
  ``retry:`` but no ``data:`` is dispatched (the standard drops it), and once an ``id:`` was seen every blank
  line dispatches an empty event (the last event id is never cleared, by design, and counts as "pending");
- it builds a dataclass per event; and the measurement below.

    python bench/bench_sse_decoders.py [--events 20000] [--runs 7]
"""

from __future__ import annotations

import argparse
import codecs
import json
import os
import statistics
import time
from collections.abc import Callable

CHUNK = 4096


def wire(events: int) -> list[bytes]:
    """An OpenAI-style stream, cut into network-sized reads."""
    lines = []
    for i in range(events):
        chunk = {"id": "c", "object": "chat.completion.chunk", "model": "m",
                 "choices": [{"index": 0, "delta": {"content": f"w{i % 1000} "}, "finish_reason": None}]}
        lines.append(b"data: " + json.dumps(chunk, separators=(",", ":")).encode() + b"\n\n")
    data = b"".join(lines) + b"data: [DONE]\n\n"
    return [data[i : i + CHUNK] for i in range(0, len(data), CHUNK)]


def kit_decoder(chunks: list[bytes]) -> int:
    from llmswitch.kit import SSEDecoder

    decoder = SSEDecoder()
    count = 0
    for chunk in chunks:
        count += len(decoder.feed(chunk))
    return count + len(decoder.close())


def httpx_sse_decoders() -> tuple[type, type]:
    """httpx-sse's decoder classes. Its package ``__init__`` imports httpx (not httpx2), so without httpx the
    package cannot be imported at all: load the two httpx-free modules under an empty package instead."""
    import importlib.util
    import sys
    import types

    try:
        from httpx_sse._decoders import SSEDecoder, SSELineDecoder
    except ImportError:
        spec = importlib.util.find_spec("httpx_sse")
        if spec is None or spec.submodule_search_locations is None:
            raise
        package = types.ModuleType("httpx_sse")
        package.__path__ = list(spec.submodule_search_locations)
        sys.modules["httpx_sse"] = package
        from httpx_sse._decoders import SSEDecoder, SSELineDecoder
    return SSEDecoder, SSELineDecoder


def httpx_sse_decoder(chunks: list[bytes]) -> int:
    SSEDecoder, SSELineDecoder = httpx_sse_decoders()  # noqa: N806

    text = codecs.getincrementaldecoder("utf-8")("replace").decode  # what iter_text does
    lines, events = SSELineDecoder(), SSEDecoder()
    count = 0
    for chunk in chunks:
        for line in lines.decode(text(chunk)):
            if events.decode(line) is not None:
                count += 1
    for line in lines.flush():
        if events.decode(line) is not None:
            count += 1
    return count


def httpx2_decoder(chunks: list[bytes]) -> int:
    from httpx2._sse import _SSEParser

    text = codecs.getincrementaldecoder("utf-8")("replace").decode
    parser = _SSEParser()
    count = 0
    for chunk in chunks:
        count += sum(1 for _ in parser.decode(text(chunk)))
    return count + sum(1 for _ in parser.flush())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    chunks = wire(args.events)
    runners: dict[str, Callable[[list[bytes]], int]] = {"llmswitch.kit.SSEDecoder": kit_decoder}
    for name, runner in (("httpx-sse SSEDecoder", httpx_sse_decoder), ("httpx2 built-in (_SSEParser)", httpx2_decoder)):
        try:
            runner(chunks[:1])
        except ImportError as error:
            print(f"{name}: not installed ({error})")
            continue
        runners[name] = runner
    counts = {name: run(chunks) for name, run in runners.items()}
    assert len(set(counts.values())) == 1, counts
    samples: dict[str, list[float]] = {name: [] for name in runners}
    for _ in range(args.runs):
        for name, run in runners.items():
            started = time.perf_counter()
            run(chunks)
            samples[name].append(time.perf_counter() - started)
    print(f"{args.events + 1} events in {len(chunks)} reads of {CHUNK} bytes, median of {args.runs} "
          f"(load average {os.getloadavg()[0]:.1f}: read the ratios)")
    base = statistics.median(samples["llmswitch.kit.SSEDecoder"])
    for name, values in samples.items():
        median = statistics.median(values)
        print(f"  {name:<30} {median * 1000:7.1f} ms  {median / base:5.2f}x")


if __name__ == "__main__":
    main()
