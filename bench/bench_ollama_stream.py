"""Streaming speed of the ollama plugin against a plain httpx2 + json.loads loop, on the same local stream.

A local server (its own process, so it never competes with the measured code for the GIL) streams an
N-token answer in Ollama's NDJSON format (one ``{"message": {"content": ...}, "done": false}`` line per
token, then the ``done`` line with the counts). The in-process time to receive the whole stream through the
plugin (``Client().resolve(P).stream(...)``: the entry point, the toolkit, the plugin's NDJSON reader, the core's
StreamResult) is compared with a plain ``httpx2.Client.stream`` + ``iter_lines`` + ``json.loads`` loop that
keeps the text, measured in the same run, interleaved, median of several runs. Goal: <= 1.25x. Both sides
reuse their HTTP client across runs, so neither pays for connection setup or client construction.

    python bench/bench_ollama_stream.py                        # 20,000 tokens, 7 runs
    python bench/bench_ollama_stream.py --tokens 2000 --runs 3
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

MODEL = "llama3.2"
BODY = {"model": MODEL, "messages": [{"role": "user", "content": PROMPT}], "stream": True}






def plain_in_process(base_url: str) -> Callable[[], str]:
    import httpx2

    client = httpx2.Client(timeout=60)

    def run() -> str:
        parts: list[str] = []
        with client.stream("POST", base_url + "/api/chat", json=BODY) as response:
            for line in response.iter_lines():
                if not line:
                    continue
                chunk = json.loads(line)
                content = chunk["message"]["content"]
                if content:
                    parts.append(content)
                if chunk["done"]:
                    break
        return "".join(parts)

    return run










def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--tokens", type=int, default=20_000)
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()

    expected = expected_text(args.tokens)
    server, base_url = start_server("ollama_server", args.tokens)
    try:
        with tempfile.TemporaryDirectory() as home:
            config = Path(home) / "config.toml"
            config.write_text(f'[profiles.bench]\nbackend = "ollama"\nbase_url = "{base_url}"\nmodel = "{MODEL}"\n')
            os.environ.update({"LLMSWITCH_CONFIG": str(config), "LLMSWITCH_DATA_DIR": str(Path(home) / "data"),
                               "NO_PROXY": "127.0.0.1,localhost"})
            print(f"{args.tokens} tokens from {base_url}, median of {args.runs} runs\n")
            runners: dict[str, Callable[[], str]] = {
                "plain httpx2 + json.loads": plain_in_process(base_url),
                "llmswitch ollama plugin": plugin_in_process("bench"),
            }
            report_in_process(runners, expected, args.runs, "plain httpx2 + json.loads", 1.25)
    finally:
        server.terminate()
        server.wait(timeout=10)


if __name__ == "__main__":
    main()
