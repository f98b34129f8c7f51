"""Generation speed of the llamacpp backend through llmswitch versus llama-cpp-python called directly, and
time to first token in a fresh process (model load included). Ratios against baselines measured in the same
run, because these machines are shared and noisy.

    python bench/bench_llamacpp.py [--tokens 128] [--runs 5] [--threads N] [--model-path FILE.gguf]

1. Tokens/s generating ``--tokens`` tokens: ``ResolvedProfile.stream`` (the plugin, reached through its entry
   point) versus the same prompt tokens, sampling settings, stop sequences and thread count given to
   ``Llama.create_completion(stream=True)`` and to a bare ``Llama.generate`` loop. Greedy sampling, so every
   side generates the same tokens. Runs alternate between sides; the median of each is reported.
   Goal: llmswitch / create_completion >= 0.95.
2. Time to first token of ``llmswitch chat --profile local`` in a fresh process (import, model load and the
   first token; the crash-safe probe has already run once on this machine) versus a fresh ``python -c`` that
   imports llama_cpp, loads the same model and streams its first token.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from typing import Any

PROMPT = "Write a long story about a dragon."


def timed(function: Callable[[], int]) -> tuple[float, int]:
    started = time.perf_counter()
    tokens = function()
    return time.perf_counter() - started, tokens


def generation(args: argparse.Namespace) -> None:
    from llmswitch_llamacpp import generate, runtime, settings

    from llmswitch.client import Client
    from llmswitch.types import UsageEvent

    local = Client().resolve("bench")
    request = local.request(PROMPT, temperature=0.0, max_tokens=args.tokens, seed=1)
    load = settings.load_settings(local.target)
    model = runtime.loaded_model(load)
    job = generate.plan(model, load, local.target, request)

    import llama_cpp

    direct = llama_cpp.Llama(str(load.model_path), n_ctx=load.n_ctx, n_threads=load.n_threads,
                             n_threads_batch=load.n_threads, n_batch=load.n_batch, verbose=False)

    def through_llmswitch() -> int:
        for event in local.stream(request):
            if isinstance(event, UsageEvent):
                return event.usage.output_tokens or 0
        return 0

    def create_completion() -> int:
        for _chunk in direct.create_completion(job.tokens, max_tokens=job.max_tokens, temperature=job.temperature,
                                               top_k=job.top_k, top_p=job.top_p, min_p=job.min_p,
                                               repeat_penalty=job.repeat_penalty, stop=list(job.stop),
                                               stream=True, seed=job.seed):
            pass
        # Answer tokens: those evaluated after the prompt, plus the last one sampled (never evaluated).
        return int(direct.n_tokens) - len(job.tokens) + 1

    def bare_generate() -> int:
        direct.set_seed(job.seed)
        count = 0
        for token in direct.generate(job.tokens, temp=job.temperature, top_k=job.top_k, top_p=job.top_p,
                                     min_p=job.min_p, repeat_penalty=job.repeat_penalty):
            if llama_cpp.llama_vocab_is_eog(direct._model.vocab, token):
                break
            count += 1
            if count >= job.max_tokens:
                break
        return count

    sides = {"llmswitch stream": through_llmswitch, "llama-cpp create_completion": create_completion,
             "llama-cpp bare generate": bare_generate}
    for side in sides.values():  # warm-up: page the weights in, fill caches
        side()
    samples: dict[str, list[float]] = {name: [] for name in sides}
    counts: dict[str, int] = {}
    for _ in range(args.runs):
        for name, side in sides.items():
            seconds, tokens = timed(side)
            samples[name].append(tokens / seconds)
            counts[name] = tokens
    baseline = statistics.median(samples["llama-cpp create_completion"])
    print(f"generation: {args.tokens} tokens asked, {load.n_threads} thread(s), n_ctx {load.n_ctx}, "
          f"median of {args.runs} runs")
    for name, values in samples.items():
        rate = statistics.median(values)
        print(f"  {name:30s} {rate:7.1f} tokens/s  ({counts[name]} tokens)  ratio {rate / baseline:5.3f}")
    ratio = statistics.median(samples["llmswitch stream"]) / baseline
    print(f"  goal llmswitch / create_completion >= 0.95: {'met' if ratio >= 0.95 else 'NOT met'} ({ratio:.3f})")


DIRECT_FIRST_TOKEN = """
import sys, ctypes
import llama_cpp
quiet = llama_cpp.llama_log_callback(lambda level, text, data: None)
llama_cpp.llama_log_set(quiet, ctypes.c_void_p(0))
llama = llama_cpp.Llama(sys.argv[1], n_ctx=int(sys.argv[2]), n_threads=int(sys.argv[3]),
                        n_threads_batch=int(sys.argv[3]), verbose=False)
tokens = llama.tokenize(sys.argv[4].encode(), add_bos=True, special=True)
for chunk in llama.create_completion(tokens, max_tokens=1, temperature=0.0, stream=True):
    print(chunk["choices"][0]["text"], flush=True)
    break
"""


def first_token(args: argparse.Namespace, env: dict[str, str]) -> None:
    from llmswitch_llamacpp import generate, runtime, settings

    from llmswitch.client import Client

    local = Client().resolve("bench")
    load = settings.load_settings(local.target)
    # The same prompt text the plugin renders, so both processes read the same tokens.
    prompt, _ = generate.prompt_for(runtime.vocabulary(load), load, local.request(PROMPT))
    llmswitch_samples, direct_samples = [], []
    for _ in range(args.runs):
        started = time.perf_counter()
        proc = subprocess.Popen(
            [sys.executable, "-m", "llmswitch", "chat", "-p", "bench", "--no-history", "-o", "max_tokens", "1",
             "-o", "temperature", "0", PROMPT],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env,
        )
        assert proc.stdout is not None
        proc.stdout.read(1)
        llmswitch_samples.append(time.perf_counter() - started)
        proc.wait()
        started = time.perf_counter()
        proc = subprocess.Popen(
            [sys.executable, "-c", DIRECT_FIRST_TOKEN, str(load.model_path), str(load.n_ctx),
             str(load.n_threads), prompt.text],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env,
        )
        assert proc.stdout is not None
        proc.stdout.read(1)
        direct_samples.append(time.perf_counter() - started)
        proc.wait()
    ours, theirs = statistics.median(llmswitch_samples), statistics.median(direct_samples)
    print(f"time to first token in a fresh process (model load included), median of {args.runs}")
    print(f"  llmswitch chat --profile ...   {ours * 1000:7.0f} ms  ratio {ours / theirs:5.2f}")
    print(f"  python + llama_cpp directly     {theirs * 1000:7.0f} ms  (baseline)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tokens", type=int, default=128)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--threads", type=int, default=0, help="default: the plugin's default thread count")
    parser.add_argument("--model-path", default=None, help="a GGUF file (default: the embedded demo model)")
    args = parser.parse_args()

    # Gemma's turn format: in the plain transcript this base model ends its answer (at "\nQ:") before 128
    # tokens, and a throughput figure needs the full count on every side.
    values: dict[str, Any] = {"backend": "llamacpp", "model": "gemma-3-270m", "chat_format": "gemma"}
    if args.threads:
        values["n_threads"] = args.threads
    if args.model_path:
        values["model_path"] = args.model_path
    with tempfile.TemporaryDirectory() as home:
        config = os.path.join(home, "config.toml")
        lines = ["[profiles.bench]"] + [f"{key} = {value!r}".replace("'", '"') for key, value in values.items()]
        with open(config, "w", encoding="utf-8") as handle:
            handle.write("\n".join(lines) + "\n")
        os.environ["LLMSWITCH_CONFIG"] = config
        os.environ["LLMSWITCH_DATA_DIR"] = os.path.join(home, "data")
        env = dict(os.environ)
        generation(args)
        print()
        first_token(args, env)


if __name__ == "__main__":
    main()
