"""Streaming speed of the anthropic plugin against a plain httpx2 + json.loads loop, on the same local stream.

A local server (its own process, so it never competes with the measured code for the GIL) streams an
N-token answer in Anthropic's Messages API SSE format (``event:`` + ``data:`` lines, a ping, usage). The
in-process time to receive the whole stream through the plugin (``Client().resolve(P).stream(...)``: the
entry point, the SDK's request, the plugin's SSE reader, the core's StreamResult) is compared with a plain
``httpx2.Client.stream`` + ``iter_lines`` + ``json.loads`` loop that keeps the text deltas, measured in the
same run, interleaved, median of several runs. Goal: <= 1.25x. Both sides reuse their HTTP client across
runs, so neither pays for connection setup or client construction in the timed part.

    python bench/bench_anthropic_stream.py                     # 20,000 tokens, 7 runs
    python bench/bench_anthropic_stream.py --tokens 2000 --runs 3
    python bench/bench_anthropic_stream.py --sdk               # also time the SDK's own typed stream
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path

from streambench import (
    PROMPT,
    expected_text,
    plugin_in_process,
    report_in_process,
    start_server,
)

MODEL = "claude-haiku-4-5"
KEY = "sk-ant-bench-0000000000000000"
BODY = {"model": MODEL, "max_tokens": 64000, "messages": [{"role": "user", "content": PROMPT}], "stream": True}
HEADERS = {"x-api-key": KEY, "anthropic-version": "2023-06-01"}






def plain_in_process(base_url: str) -> Callable[[], str]:
    import httpx2

    client = httpx2.Client(timeout=60)

    def run() -> str:
        parts: list[str] = []
        with client.stream("POST", base_url + "/v1/messages", json=BODY, headers=HEADERS) as response:
            for line in response.iter_lines():
                if not line.startswith("data: "):
                    continue
                event = json.loads(line[6:])
                if event["type"] == "content_block_delta" and event["delta"]["type"] == "text_delta":
                    parts.append(event["delta"]["text"])
                elif event["type"] == "message_stop":
                    break
        return "".join(parts)

    return run




def sdk_in_process(base_url: str) -> Callable[[], str]:
    import anthropic

    client = anthropic.Anthropic(api_key=KEY, base_url=base_url, max_retries=0)

    def run() -> str:
        parts = []
        for event in client.messages.create(model=MODEL, max_tokens=64000, stream=True,
                                            messages=[{"role": "user", "content": PROMPT}]):
            if event.type == "content_block_delta" and event.delta.type == "text_delta":
                parts.append(event.delta.text)
        return "".join(parts)

    return run








def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--tokens", type=int, default=20_000)
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--sdk", action="store_true", help="also time the anthropic SDK's typed event stream")
    args = parser.parse_args()

    expected = expected_text(args.tokens)
    server, base_url = start_server("anthropic_server", args.tokens)
    try:
        with tempfile.TemporaryDirectory() as home:
            config = Path(home) / "config.toml"
            config.write_text(f'[profiles.bench]\nbackend = "anthropic"\nbase_url = "{base_url}"\nmodel = "{MODEL}"\n'
                              f'api_key = "{KEY}"\nmax_tokens = 64000\n')
            os.environ.update({"LLMSWITCH_CONFIG": str(config), "LLMSWITCH_DATA_DIR": str(Path(home) / "data"),
                               "NO_PROXY": "127.0.0.1,localhost"})
            print(f"{args.tokens} tokens from {base_url}, median of {args.runs} runs\n")
            runners: dict[str, Callable[[], str]] = {
                "plain httpx2 + json.loads": plain_in_process(base_url),
                "llmswitch anthropic plugin": plugin_in_process("bench"),
            }
            if args.sdk:
                runners["anthropic SDK typed events"] = sdk_in_process(base_url)
            report_in_process(runners, expected, args.runs, "plain httpx2 + json.loads", 1.25)
    finally:
        server.terminate()
        server.wait(timeout=10)


if __name__ == "__main__":
    main()
