"""The load-and-generate check, run in a child process: ``python -m llmswitch_transformers.probe SETTINGS``.

A model too big for memory gets the process killed by the kernel, and a broken CUDA or torch install can
abort natively: neither can be caught inside ``doctor``. So the child loads the model through the same code
as ``chat`` and generates a few tokens; if it dies, only it dies, and the parent explains how.

The child prints one JSON line: ``{"ok": true, "load_s": ..., "tokens_per_s": ..., "device": ..., "dtype": ...}``
or ``{"ok": false, "error": ..., "remedy": ...}`` (exit status 3).

``chat`` does not probe before its first load (the llamacpp backend does, for SIGILL from CPU-specific builds
of llama.cpp): torch's wheels are built for portable CPU targets, and a second full load would double the
start-up time of every first question.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from llmswitch.kit import last_json_object
from llmswitch_transformers.settings import LoadSettings, ModelSource

PROMPT = "Q: What is the capital of France?\nA:"
EXIT_FAILED = 3
PROBE_TIMEOUT_S = 300.0


@dataclass(frozen=True)
class ProbeResult:
    """What the child reported, or how it died, with a remedy when it did not pass."""

    ok: bool
    detail: str
    remedy: str | None = None
    load_s: float | None = None
    tokens_per_s: float | None = None
    device: str | None = None
    dtype: str | None = None


def encode(settings: LoadSettings) -> str:
    return json.dumps(asdict(settings), default=str)  # the one Path (the model's directory) as text


def decode(text: str) -> LoadSettings:
    raw = json.loads(text)
    source = raw["source"]
    raw["source"] = ModelSource(**{**source, "directory": Path(source["directory"]) if source["directory"] else None})
    raw["max_memory"] = tuple(tuple(pair) for pair in raw["max_memory"])
    return LoadSettings(**raw)


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    tokens = int(args[1]) if len(args) > 1 else 1
    try:
        result = run(decode(args[0]), tokens)
    except Exception as exc:  # reported, not raised: the parent explains it
        from llmswitch.kit import LLMSwitchError
        from llmswitch_transformers.runtime import explain_load_failure

        error = exc if isinstance(exc, LLMSwitchError) else explain_load_failure(exc, decode(args[0]))
        print(json.dumps({"ok": False, "error": error.message, "remedy": error.remedy}), flush=True)
        return EXIT_FAILED
    print(json.dumps(result), flush=True)
    return 0


def run(settings: LoadSettings, tokens: int) -> dict[str, Any]:
    from llmswitch_transformers.runtime import libraries, load

    torch, _ = libraries()
    torch.set_num_threads(settings.threads)
    loaded = load(settings)
    encoded = loaded.tokenizer(PROMPT, return_tensors="pt").to(loaded.model.device)
    with torch.inference_mode():
        started = time.perf_counter()
        loaded.model.generate(**encoded, max_new_tokens=1, min_new_tokens=1, do_sample=False)
        first_s = time.perf_counter() - started
        started = time.perf_counter()
        output = loaded.model.generate(**encoded, max_new_tokens=tokens, min_new_tokens=tokens, do_sample=False)
        total_s = time.perf_counter() - started
    generated = int(output.shape[1] - encoded["input_ids"].shape[1])
    # With one token, tokens/s includes reading the prompt; with more, mostly the decoding speed.
    decode_s = max(total_s - first_s, 1e-9) if generated > 1 else total_s
    return {"ok": True, "load_s": round(loaded.load_s, 3), "tokens": generated, "device": loaded.device,
            "dtype": loaded.dtype, "tokens_per_s": round(max(generated - 1, 1) / decode_s, 2)}


def run_probe(settings: LoadSettings, *, tokens: int = 1, timeout: float = PROBE_TIMEOUT_S) -> ProbeResult:
    """Run the child and read its report; never raises for a crash or a hang."""
    command = [sys.executable, "-m", "llmswitch_transformers.probe", encode(settings), str(tokens)]
    try:
        completed = subprocess.run(command, stdin=subprocess.DEVNULL, capture_output=True, timeout=timeout,
                                   check=False)
    except subprocess.TimeoutExpired:
        return ProbeResult(False, f"loading the model and generating {tokens} token(s) took longer than "
                           f"{timeout:.0f} s", remedy="a model this size may need longer here: try again, or use "
                           "a smaller model or dtype")
    stdout = completed.stdout.decode("utf-8", errors="replace")
    stderr = completed.stderr.decode("utf-8", errors="replace")
    report = last_json_object(stdout)
    if completed.returncode < 0:
        return _explain_signal(-completed.returncode, stderr, settings)
    if report is not None and report.get("ok"):
        return ProbeResult(True, "generated", load_s=_number(report.get("load_s")),
                           tokens_per_s=_number(report.get("tokens_per_s")), device=str(report.get("device")),
                           dtype=str(report.get("dtype")))
    if report is not None:
        remedy = report.get("remedy")
        return ProbeResult(False, str(report.get("error")), remedy=str(remedy) if remedy else None)
    tail = " / ".join(line.strip() for line in stderr.strip().splitlines()[-2:])[-400:] or "no output"
    return ProbeResult(False, f"the check exited with status {completed.returncode}: {tail}",
                       remedy="run the check again; if it persists, reinstall torch and transformers")


def _explain_signal(number: int, stderr: str, settings: LoadSettings) -> ProbeResult:
    from llmswitch_transformers.runtime import memory_remedy

    try:
        name = signal.Signals(number).name
    except ValueError:
        name = f"signal {number}"
    if number == signal.SIGKILL or "out of memory" in stderr.lower():
        return ProbeResult(False, f"the model load was killed by {name}, most likely for want of memory",
                           remedy=memory_remedy(settings))
    return ProbeResult(False, f"torch crashed with {name} while loading or running the model",
                       remedy="reinstall torch for this machine (pip install --force-reinstall torch), or try "
                       "device = \"cpu\"")


def _number(value: object) -> float | None:
    return float(value) if isinstance(value, (int, float)) else None


if __name__ == "__main__":
    sys.exit(main())
