"""``llmswitch chat --profile local`` end to end, as a real process: the first command of the README."""

# ruff: noqa: F811  (pytest fixtures imported from test_llamacpp_support are parameters here)

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.helpers import interruptible_popen, llmswitch_subprocess
from tests.plugins.test_llamacpp_support import CAPITAL_PROMPT, LONG_PROMPT, demo_model, embedded_model  # noqa: F401

pytestmark = pytest.mark.slow

NATIVE_LOG_MARKERS = ("llama_", "ggml_", "gguf_", "n_ctx_per_seq", "load_tensors")


def test_chat_local_answers_on_stdout_and_nothing_else(demo_model: Path) -> None:
    proc = llmswitch_subprocess("chat", "--profile", "local", "-o", "temperature", "0", CAPITAL_PROMPT)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "The capital of France is Paris."
    assert proc.stdout.count("\n") <= 1  # the answer, then at most the final newline
    for marker in NATIVE_LOG_MARKERS:
        assert marker not in proc.stderr, proc.stderr


def test_chat_local_with_default_sampling_answers(demo_model: Path) -> None:
    proc = llmswitch_subprocess("chat", "--profile", "local", "Say hello")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip()
    assert not any(marker in proc.stdout + proc.stderr for marker in NATIVE_LOG_MARKERS)


def test_json_carries_text_and_exact_usage(demo_model: Path) -> None:
    proc = llmswitch_subprocess("chat", "--profile", "local", "--json", "-o", "temperature", "0",
                                "-o", "max_tokens", "16", CAPITAL_PROMPT)
    assert proc.returncode == 0, proc.stderr
    payload = json.loads(proc.stdout)
    assert payload["text"] == "The capital of France is Paris."
    assert payload["usage"]["input_tokens"] == 16
    assert 0 < payload["usage"]["output_tokens"] <= 16


def test_no_stream_and_repeat_penalty_option(demo_model: Path) -> None:
    proc = llmswitch_subprocess("chat", "-p", "local", "--no-stream", "-o", "temperature", "0",
                                "-o", "repeat_penalty", "1.3", "-o", "max_tokens", "8", LONG_PROMPT)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip()


def test_ctrl_c_mid_answer_keeps_the_partial_answer_and_exits_130(embedded_model: Path) -> None:
    # In Gemma's turn format this base model goes on for all 400 tokens (about 8 s here).
    proc = interruptible_popen(
        [sys.executable, "-m", "llmswitch", "chat", "-p", "local", "-m", "gemma-3-270m", "-o", "temperature", "0",
         "-o", "chat_format", "gemma", "-o", "max_tokens", "400", LONG_PROMPT],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=dict(os.environ),
    )
    assert proc.stdout is not None
    first = proc.stdout.read(8)  # the answer is flowing
    proc.send_signal(signal.SIGINT)
    sent = time.perf_counter()
    out, err = proc.communicate(timeout=60)
    assert time.perf_counter() - sent < 2  # promptly, not after 400 tokens
    assert proc.returncode == 130, err
    text = first + out
    assert len(text) > 8
    assert len(text.split()) < 100  # far from the whole answer
    assert "interrupted" in err
    assert "Traceback" not in err
    assert not any(marker in err for marker in NATIVE_LOG_MARKERS)


def test_missing_model_file_is_a_sentence_not_a_traceback(tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text(f'[profiles.mine]\nbackend = "llamacpp"\nmodel = "mine"\nmodel_path = "{tmp_path}/x.gguf"\n')
    proc = llmswitch_subprocess("--config", str(config), "chat", "-p", "mine", "hello")
    assert proc.returncode == 1
    assert proc.stdout == ""
    assert "x.gguf" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_build_that_dies_with_sigill_gets_the_rebuild_remedy_not_a_core_dump(embedded_model: Path,
                                                                              tmp_path: Path) -> None:
    # Stand-in for a natively built llama-cpp-python on a CPU that advertises AMX: importing it kills the
    # process with SIGILL, as the real one does at its first matrix product.
    fake = tmp_path / "fake" / "llama_cpp"
    fake.mkdir(parents=True)
    (fake / "__init__.py").write_text("import os, signal\nos.kill(os.getpid(), signal.SIGILL)\n")
    config = tmp_path / "config.toml"
    config.write_text(f'[profiles.native]\nbackend = "llamacpp"\nmodel = "demo"\nmodel_path = "{embedded_model}"\n')
    env = {"PYTHONPATH": str(tmp_path / "fake"), "LLMSWITCH_CACHE_DIR": str(tmp_path / "cache")}

    chat = llmswitch_subprocess("--config", str(config), "chat", "-p", "native", "hello", env=env)
    assert chat.returncode == 1, chat.stderr
    assert chat.stdout == ""
    assert "illegal instruction (SIGILL)" in chat.stderr
    assert "-DGGML_NATIVE=OFF" in chat.stderr
    assert "Traceback" not in chat.stderr and "core dumped" not in chat.stderr

    doctor = llmswitch_subprocess("--config", str(config), "doctor", "native", "--json", env=env)
    assert doctor.returncode != 0
    report = json.loads(doctor.stdout)["profiles"][0]
    assert report["status"] == "down"
    generation = next(check for check in report["checks"] if check["name"] == "generation")
    assert generation["status"] == "fail" and "-DGGML_NATIVE=OFF" in generation["remedy"]
