"""``health`` of llamacpp profiles: the good embedded model, and files that are truncated, not GGUF, or
missing; each with a clear status and remedy. The generation check runs in a real child process."""

# ruff: noqa: F811  (pytest fixtures imported from test_llamacpp_support are parameters here)

from __future__ import annotations

import re
import struct
from pathlib import Path

import pytest
from llmswitch_llamacpp import preflight
from llmswitch_llamacpp.settings import load_settings

from llmswitch.client import ResolvedProfile
from llmswitch.errors import BadResponseError
from llmswitch.types import Check, CheckStatus, HealthReport, Status
from tests.plugins.test_llamacpp_support import (  # noqa: F401 - fixtures
    METADATA_TINY,
    demo_model,
    embedded_model,
    local,
    profile,
    write_gguf,
)


def check(report: HealthReport, name: str) -> Check:
    for found in report.checks:
        if found.name == name:
            return found
    raise AssertionError(f"no check named {name!r} in {[c.name for c in report.checks]}")


@pytest.mark.slow
def test_good_model_passes_every_check_with_load_time_and_speed(local: ResolvedProfile, demo_model: Path) -> None:
    report = local.health(timeout=10, offline=True)
    assert report.status is Status.OK, report.checks
    assert [c.name for c in report.checks] == [
        "llama-cpp-python", "model file", "GGUF header", "prompt format", "threads", "generation",
    ]
    # The library's version, and llama.cpp's own (reported by the check's child process; releases before
    # about 0.3.20 do not export it).
    library = check(report, "llama-cpp-python").detail
    assert library.startswith(f"version {preflight.installed_version()}")
    if preflight.installed_version() == preflight.LLAMA_VERSION:
        assert re.fullmatch(rf"version {re.escape(preflight.LLAMA_VERSION)}, llama\.cpp [\w.-]+, commit [0-9a-f]{{7,}}",
                            library)
    assert "llama (Smollm2 135M 8k Lc100K Mix1 Ep2, 135M), Q4_1, context 8192" in check(report, "GGUF header").detail
    assert check(report, "prompt format").detail.startswith("chatml (the demo model's ChatML turns")
    assert check(report, "model file").detail == (
        f"{demo_model} (the demo model SmolLM2-135M-Instruct (Q4_1, 94 MiB), verified)")
    assert report.metrics["load_s"] > 0
    assert report.metrics["tokens_per_s"] > 0
    assert report.metrics["context_length"] == 8192


@pytest.mark.slow
def test_truncated_real_model_is_down_with_fetch_again(config_file: Path, embedded_model: Path,
                                                       tmp_path: Path) -> None:
    cut = tmp_path / "cut.gguf"
    with embedded_model.open("rb") as source:
        cut.write_bytes(source.read(10 * 1024 * 1024))  # the header is whole, the weights are not
    report = profile(config_file, "cut", model_path=str(cut)).health(timeout=10, offline=True)
    assert report.status is Status.DOWN
    failed = check(report, "GGUF header")
    assert failed.status is CheckStatus.FAIL
    assert "truncated" in failed.detail and "(4%)" in failed.detail
    assert failed.remedy == "the download or copy was cut short; fetch the file again"
    assert "generation" not in [c.name for c in report.checks]  # nothing native was tried on a broken file


def test_truncated_header_is_down(config_file: Path, tmp_path: Path) -> None:
    path = write_gguf(tmp_path / "t.gguf", METADATA_TINY, [("w", (64,), 0)])
    path.write_bytes(path.read_bytes()[:60])
    report = profile(config_file, "cut", model_path=str(path)).health(timeout=10, offline=True)
    assert report.status is Status.DOWN
    assert "header runs past the end" in check(report, "GGUF header").detail


def test_file_that_is_not_gguf_is_down_with_conversion_advice(config_file: Path, tmp_path: Path) -> None:
    path = tmp_path / "model.safetensors"
    path.write_bytes(b'{"__metadata__": {}}' + b"\0" * 100)
    report = profile(config_file, "st", model_path=str(path)).health(timeout=10, offline=True)
    assert report.status is Status.DOWN
    failed = check(report, "GGUF header")
    assert "is not a GGUF file" in failed.detail
    assert "convert_hf_to_gguf.py" in (failed.remedy or "")


def test_missing_path_is_down_and_says_to_set_model_path(config_file: Path, tmp_path: Path) -> None:
    report = profile(config_file, "gone", model_path=str(tmp_path / "nowhere.gguf")).health(timeout=10, offline=True)
    assert report.status is Status.DOWN
    failed = check(report, "model file")
    assert failed.status is CheckStatus.FAIL
    assert "does not exist" in failed.detail
    assert "model_path" in (failed.remedy or "")


def test_model_name_without_file_is_down(config_file: Path) -> None:
    report = profile(config_file, "named").health(timeout=10, offline=True)
    assert report.status is Status.DOWN
    assert "--set model_path=" in (check(report, "model file").remedy or "")


def test_too_many_threads_is_a_warning(config_file: Path, tmp_path: Path) -> None:
    import os

    path = write_gguf(tmp_path / "t.gguf", METADATA_TINY, [("w", (64,), 0)])
    threads = len(os.sched_getaffinity(0)) + 2
    report = profile(config_file, "busy", model_path=str(path), n_threads=threads).health(timeout=10, offline=True)
    warned = check(report, "threads")
    assert warned.status is CheckStatus.WARN
    assert "ten times slower" in (warned.remedy or "")
    # The header is fine but there are no real weights: llama.cpp refuses it cleanly, in the child process.
    failed = check(report, "generation")
    assert failed.status is CheckStatus.FAIL
    assert "llama.cpp could not load" in failed.detail
    assert "fetch it again" in (failed.remedy or "")


@pytest.mark.slow
def test_model_that_does_not_fit_in_memory_gets_the_memory_remedy(config_file: Path, embedded_model: Path) -> None:
    if Path("/proc/sys/vm/overcommit_memory").read_text().strip() == "1":
        pytest.skip("with unconditional overcommit the huge allocation could succeed and then exhaust memory")
    # A context of 64M tokens asks for a KV cache of hundreds of gigabytes: the allocation is refused.
    resolved = profile(config_file, "huge", model="gemma-3-270m", n_ctx=1 << 26)
    report = resolved.health(timeout=10, offline=True)
    failed = check(report, "generation")
    assert failed.status is CheckStatus.FAIL
    assert "could not allocate memory" in failed.detail
    assert "n_ctx, now 67108864" in (failed.remedy or "")
    # chat on the same profile gets the same explanation, from the probe, not a crash.
    with pytest.raises(BadResponseError) as caught:
        resolved.complete(resolved.request("hi", max_tokens=1))
    assert "n_ctx, now 67108864" in (caught.value.remedy or "")
    assert not preflight.remembered_pass(load_settings(resolved.target))  # a failure is never remembered


@pytest.mark.slow
def test_first_use_is_probed_once_and_remembered(config_file: Path, embedded_model: Path,
                                                 monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("LLMSWITCH_CACHE_DIR", str(tmp_path / "cache"))  # a machine that never probed
    settings = load_settings(profile(config_file, "fresh", model_path=str(embedded_model)).target)
    assert not preflight.remembered_pass(settings)
    preflight.ensure_safe(settings)
    assert preflight.remembered_pass(settings)
    probes = list((tmp_path / "cache" / "llamacpp" / "probes").glob("*.json"))
    assert len(probes) == 1


def _with_architecture(source: Path, target: Path, old: bytes, new: bytes) -> Path:
    """A copy of a real GGUF whose general.architecture says ``new`` (same length, so nothing else moves)."""
    assert len(old) == len(new)
    needle = b"general.architecture" + struct.pack("<IQ", 8, len(old)) + old
    data = bytearray(source.read_bytes())
    at = data.find(needle, 0, 1 << 16)
    assert at > 0
    data[at + len(needle) - len(old): at + len(needle)] = new
    target.write_bytes(bytes(data))
    return target


@pytest.mark.slow
def test_model_of_an_unknown_architecture_gets_the_upgrade_command(config_file: Path, demo_model: Path,
                                                                   tmp_path: Path) -> None:
    future = _with_architecture(demo_model, tmp_path / "future.gguf", b"llama", b"zorba")
    resolved = profile(config_file, "future", model_path=str(future))
    report = resolved.health(timeout=10, offline=True)
    assert report.status is Status.DOWN
    assert check(report, "model file").detail == f"{future} (readable)"  # the file the profile names
    assert check(report, "GGUF header").detail.startswith("zorba (")  # the header itself is fine
    failed = check(report, "generation")
    assert failed.status is CheckStatus.FAIL
    assert "does not know the model architecture 'zorba'" in failed.detail
    assert f"llama-cpp-python {preflight.installed_version()}" in failed.detail
    assert "pip install --upgrade" in (failed.remedy or "") and "llama-cpp-python<0.4" in (failed.remedy or "")
    # chat says the same, from the crash-safe probe, before anything loads in-process.
    with pytest.raises(BadResponseError) as caught:
        resolved.complete(resolved.request("hi", max_tokens=1))
    assert "does not know the model architecture 'zorba'" in caught.value.message
    assert "pip install --upgrade" in (caught.value.remedy or "")


def test_tiny_file_of_an_unknown_architecture_is_diagnosed(config_file: Path, tmp_path: Path) -> None:
    path = write_gguf(tmp_path / "t.gguf", {**METADATA_TINY, "general.architecture": "zorba"}, [("w", (64,), 0)])
    failed = check(profile(config_file, "t", model_path=str(path)).health(timeout=10, offline=True), "generation")
    assert "does not know the model architecture 'zorba'" in failed.detail
