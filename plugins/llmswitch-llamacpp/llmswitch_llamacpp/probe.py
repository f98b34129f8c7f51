"""The one-token check, run in a child process: ``python -m llmswitch_llamacpp.probe MODEL [options]``.

It loads the model and generates a few tokens. If llama.cpp dies natively (SIGILL from a CPU-specific build,
the OOM killer, an abort on a failed allocation) only this child dies, and the parent
(:mod:`llmswitch_llamacpp.preflight`) explains what happened. On success it prints one JSON line on stdout:
``{"ok": true, "load_s": ..., "tokens_per_s": ..., "tokens": ...}``; on a Python-level failure it prints
``{"ok": false, "kind": ..., "error": ..., "log": ...}`` and exits with status 3.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any

PROMPT = "Q: What is the capital of France?\nA:"
EXIT_FAILED = 3


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m llmswitch_llamacpp.probe")
    parser.add_argument("model_path")
    parser.add_argument("--n-ctx", type=int, default=512)
    parser.add_argument("--n-threads", type=int, default=1)
    parser.add_argument("--n-gpu-layers", type=int, default=0)
    parser.add_argument("--n-batch", type=int, default=512)
    parser.add_argument("--tokens", type=int, default=1, help="tokens to generate (more gives a steadier tokens/s)")
    args = parser.parse_args(argv)
    try:
        result = run(args)
    except ImportError as exc:
        return _report({"ok": False, "kind": "not_installed", "error": f"{type(exc).__name__}: {exc}"})
    except Exception as exc:  # any Python-level failure is reported, not raised: the parent explains it
        import llama_cpp

        from llmswitch_llamacpp.native_log import recent_native_log

        return _report({"ok": False, "kind": "load_failed", "error": f"{exc}", "log": recent_native_log(12),
                        "build": native_build(llama_cpp)})
    print(json.dumps(result), flush=True)
    return 0


def run(args: argparse.Namespace) -> dict[str, object]:
    import llama_cpp

    from llmswitch_llamacpp.native_log import capture_native_logs

    capture_native_logs(llama_cpp)
    started = time.perf_counter()
    llama = llama_cpp.Llama(
        args.model_path,
        n_ctx=args.n_ctx,
        n_threads=args.n_threads,
        n_threads_batch=args.n_threads,
        n_gpu_layers=args.n_gpu_layers,
        n_batch=args.n_batch,
        verbose=False,
    )
    load_s = time.perf_counter() - started
    tokens = llama.tokenize(PROMPT.encode("utf-8"), add_bos=True, special=True)
    generated = 0
    first_token_s = 0.0
    started = time.perf_counter()
    for token in llama.generate(tokens, temp=0.0):
        generated += 1
        if generated == 1:
            first_token_s = time.perf_counter() - started
        if generated >= args.tokens or llama_cpp.llama_vocab_is_eog(llama._model.vocab, token):
            break
    total_s = time.perf_counter() - started
    # With one token, tokens/s includes reading the prompt; with more, it is the decoding speed alone.
    decode_s = total_s - first_token_s
    tokens_per_s = (generated - 1) / decode_s if generated > 1 and decode_s > 0 else generated / total_s
    return {
        "ok": True,
        "load_s": round(load_s, 4),
        "first_token_s": round(first_token_s, 4),
        "tokens_per_s": round(tokens_per_s, 2),
        "tokens": generated,
        "llama_cpp": getattr(llama_cpp, "__version__", "unknown"),
        "build": native_build(llama_cpp),
    }


def native_build(llama_cpp: Any) -> str | None:
    """llama.cpp's own version and commit ("0.5.0-dev, commit 0c1e570"), as far as this build tells them.

    Releases of llama-cpp-python before about 0.3.20 export neither: then None.
    """
    import ctypes

    parts = []
    try:
        library = llama_cpp.llama_cpp._lib
        for symbol, label in (("llama_version", ""), ("ggml_commit", "commit ")):
            function = getattr(library, symbol)
            function.restype = ctypes.c_char_p
            function.argtypes = []
            value = function()
            if value:
                parts.append(label + value.decode("utf-8", errors="replace").removesuffix("-dirty"))
    except (AttributeError, OSError):
        pass
    return ", ".join(parts) or None


def _report(payload: dict[str, object]) -> int:
    print(json.dumps(payload), flush=True)
    return EXIT_FAILED


if __name__ == "__main__":
    sys.exit(main())
