"""The transformers backend on a tiny model built here (random weights, a tokenizer trained on a few
sentences), loaded through the plugin's real code path: loading, streaming, cancelling, counting, refusing
settings, offline lookups in the Hugging Face cache, and doctor's checks with the probe in a child process."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import tomli_w

from llmswitch.client import Client, ResolvedProfile
from llmswitch.errors import InvalidOptionError, ModelNotFoundError, UnsupportedOptionError
from llmswitch.types import CheckStatus, Request, StreamEnd, StreamError, TextDelta, UsageEvent
from tests.helpers import llmswitch_subprocess

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from tests.plugins.tiny_transformers import build  # noqa: E402  (needs torch)

PROMPT = "What is the capital of France?"


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return build(tmp_path_factory.mktemp("tiny-models"))


@pytest.fixture(autouse=True)
def fresh_models() -> Iterator[None]:
    yield
    from llmswitch_transformers import runtime

    runtime.unload_all()


def profile(config_file: Path, model: str | Path, name: str = "tiny", **values: Any) -> ResolvedProfile:
    document = {"profiles": {name: {"backend": "transformers", "model": str(model), **values}}}
    config_file.write_text(tomli_w.dumps(document), encoding="utf-8")
    return Client().resolve(name)


def collect(resolved: ResolvedProfile, request: Request) -> tuple[str, list[Any]]:
    events = list(resolved.stream(request))
    errors = [event for event in events if isinstance(event, StreamError)]
    assert not errors, errors
    return "".join(event.text for event in events if isinstance(event, TextDelta)), events


# ---- generation --------------------------------------------------------------------------------------------


def test_streams_with_exact_counts_and_the_same_answer_at_temperature_0(config_file: Path, tiny: dict) -> None:
    resolved = profile(config_file, tiny["chat"], temperature=0.0, max_tokens=12)
    request = resolved.request(PROMPT)
    counted = resolved.count_tokens(request)
    text, events = collect(resolved, request)
    usage = next(event.usage for event in events if isinstance(event, UsageEvent))
    end = events[-1]
    assert isinstance(end, StreamEnd) and end.finish_reason == "length" and end.model == "chat"
    assert counted.exact and usage.input_tokens == counted.n
    assert usage.output_tokens == 12
    assert text and text == text.strip()
    assert collect(resolved, request)[0] == text  # greedy: the same answer again
    response = resolved.complete(request)
    assert response.text == text and response.usage == usage


def test_the_chat_template_is_used_and_counted_exactly(config_file: Path, tiny: dict) -> None:
    from transformers import AutoTokenizer

    resolved = profile(config_file, tiny["chat"])
    request = Request.from_prompt(PROMPT, system="Be brief.")
    tokenizer = AutoTokenizer.from_pretrained(tiny["chat"])
    expected = tokenizer.apply_chat_template(
        [{"role": "system", "content": "Be brief."}, {"role": "user", "content": PROMPT}],
        tokenize=False, add_generation_prompt=True)
    assert expected.startswith("<s><|system|>") and expected.endswith("<|assistant|>")
    count = resolved.count_tokens(request)
    assert count.n == len(tokenizer(expected, add_special_tokens=False)["input_ids"]) and count.exact


def test_a_base_model_gets_a_plain_transcript(config_file: Path, tiny: dict) -> None:
    from transformers import AutoTokenizer

    resolved = profile(config_file, tiny["base"])
    request = Request.from_prompt(PROMPT, system="Be brief.")
    tokenizer = AutoTokenizer.from_pretrained(tiny["base"])
    transcript = f"Be brief.\n\nQ: {PROMPT}\nA:"
    assert resolved.count_tokens(request).n == len(tokenizer(transcript)["input_ids"])
    forced = profile(config_file, tiny["base"], chat_format="template")
    with pytest.raises(InvalidOptionError, match="no chat template"):
        forced.count_tokens(request)


def test_a_stop_sequence_cuts_the_text_and_stops_generating(config_file: Path, tiny: dict) -> None:
    resolved = profile(config_file, tiny["chat"], temperature=0.0, max_tokens=60)
    full, _ = collect(resolved, resolved.request(PROMPT))
    stop = full[len(full) // 2: len(full) // 2 + 3]
    assert stop.strip() and full.find(stop) > 0
    cut, events = collect(resolved, resolved.request(PROMPT, stop=[stop]))
    usage = next(event.usage for event in events if isinstance(event, UsageEvent))
    assert cut == full[: full.find(stop)].rstrip()
    assert isinstance(events[-1], StreamEnd) and events[-1].finish_reason == "stop"
    assert usage.output_tokens is not None and usage.output_tokens < 60


def test_closing_the_stream_stops_generation_at_once_and_keeps_the_text(config_file: Path, tiny: dict) -> None:
    resolved = profile(config_file, tiny["chat"], temperature=0.0, max_tokens=3000)
    request = resolved.request(PROMPT)
    started = time.perf_counter()
    full = resolved.complete(resolved.request(PROMPT, max_tokens=400))
    per_token = (time.perf_counter() - started) / 400
    result = resolved.stream(request)
    events = iter(result)
    first = next(event for event in events if isinstance(event, TextDelta))
    closing = time.perf_counter()
    events.close()  # what Ctrl-C in the CLI and Esc in the TUI do
    closed_in = time.perf_counter() - closing
    assert result.interrupted and result.text.startswith(first.text) and full.text.startswith(result.text)
    # The worker was joined inside close(): generation ended within a few tokens, not 3000 tokens later.
    assert closed_in < max(0.5, 20 * per_token), (closed_in, per_token)
    assert not [t for t in threading.enumerate() if t.name == "llmswitch-transformers-generate"]


def test_generation_extras_are_applied_and_unknown_ones_refused(config_file: Path, tiny: dict) -> None:
    resolved = profile(config_file, tiny["chat"], temperature=0.0, max_tokens=40)
    plain = resolved.complete(resolved.request(PROMPT)).text
    penalised = resolved.complete(resolved.request(PROMPT, no_repeat_ngram_size=2, repetition_penalty=1.3)).text
    assert penalised != plain
    with pytest.raises(UnsupportedOptionError, match="mirostat"):
        resolved.complete(Request.from_prompt(PROMPT, extras={"mirostat": 2}))
    with pytest.raises(InvalidOptionError, match="repetition_penalty"):
        resolved.complete(resolved.request(PROMPT, repetition_penalty=-1))


def test_seeded_sampling_repeats(config_file: Path, tiny: dict) -> None:
    resolved = profile(config_file, tiny["chat"], temperature=1.0, max_tokens=20, seed=7, threads=1)
    first = resolved.complete(resolved.request(PROMPT)).text
    assert resolved.complete(resolved.request(PROMPT)).text == first
    assert resolved.complete(resolved.request(PROMPT, seed=8)).text != first


def test_max_memory_loads_through_accelerate(config_file: Path, tiny: dict) -> None:
    resolved = profile(config_file, tiny["chat"], temperature=0.0, max_tokens=5, max_memory={"cpu": "2GiB"})
    assert resolved.complete(resolved.request(PROMPT)).usage.output_tokens == 5


# ---- settings that cannot be honoured are refused, with the reason -----------------------------------------


@pytest.mark.parametrize(("values", "error", "words"), [
    ({"device": "cuda"}, UnsupportedOptionError, "without CUDA"),
    ({"device": "cuda:3"}, UnsupportedOptionError, "CUDA"),
    ({"device": "mps"}, UnsupportedOptionError, "MPS"),
    ({"device": "tpu"}, InvalidOptionError, "device must be one of"),
    ({"max_memory": {"0": "4GiB"}}, UnsupportedOptionError, "max_memory limits GPU 0"),
    ({"max_memory": {"cpu": "lots"}}, InvalidOptionError, "must be a size"),
    ({"max_memory": {"tpu": "4GiB"}}, InvalidOptionError, "devices are GPU numbers"),
    ({"threads": -2}, InvalidOptionError, "threads must be at least 1"),
])
def test_unusable_settings_are_refused(config_file: Path, tiny: dict, values: dict, error: type,
                                       words: str) -> None:
    if values.get("device", "").startswith(("cuda", "mps")) and (
            torch.cuda.is_available() or torch.backends.mps.is_available()):
        pytest.skip("this machine has the device")
    resolved = profile(config_file, tiny["chat"], **values)
    with pytest.raises(error, match=words) as raised:
        resolved.complete(resolved.request(PROMPT))
    if values.get("device") == "cuda":
        assert "download.pytorch.org/whl/cu" in (raised.value.remedy or "")


def test_dtype_choices_are_checked_by_the_profile(config_file: Path, tiny: dict) -> None:
    with pytest.raises(InvalidOptionError, match="float32, bfloat16, float16"):
        profile(config_file, tiny["chat"], dtype="float64")


def test_bfloat16_is_honoured_on_the_cpu(config_file: Path, tiny: dict) -> None:
    from llmswitch_transformers import runtime, settings

    resolved = profile(config_file, tiny["chat"], dtype="bfloat16", temperature=0.0, max_tokens=3)
    assert resolved.complete(resolved.request(PROMPT)).usage.output_tokens == 3
    loaded = runtime.loaded_model(settings.load_settings(resolved.target))
    assert loaded.model.dtype == torch.bfloat16 and loaded.dtype == "bfloat16"


def test_remote_code_is_refused_unless_trusted_and_says_why(config_file: Path, tmp_path: Path) -> None:
    folder = tmp_path / "custom"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps({
        "model_type": "llmswitch-custom", "architectures": ["CustomModel"],
        "auto_map": {"AutoConfig": "configuration_custom.CustomConfig",
                     "AutoModelForCausalLM": "modeling_custom.CustomModel"},
    }))
    (folder / "configuration_custom.py").write_text("raise SystemExit('remote code ran')\n")
    resolved = profile(config_file, folder)
    with pytest.raises(UnsupportedOptionError, match="does not trust remote code") as raised:
        resolved.complete(resolved.request(PROMPT))
    assert "runs it on this machine with your rights" in (raised.value.remedy or "")


def test_a_missing_path_is_a_model_not_found(config_file: Path, tmp_path: Path) -> None:
    resolved = profile(config_file, tmp_path / "nowhere" / "model.gguf")
    with pytest.raises(ModelNotFoundError, match="no such file or directory"):
        resolved.complete(resolved.request(PROMPT))


# ---- offline: the Hugging Face cache, and nothing downloaded unless allowed ----------------------------------


class CountingServer:
    """A socket on 127.0.0.1 that counts connections: where HF_ENDPOINT points, so a download attempt shows."""

    def __init__(self) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.listener.settimeout(0.2)
        self.connections = 0
        self.running = True
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.listener.getsockname()[1]}"

    def _serve(self) -> None:
        while self.running:
            try:
                connection, _ = self.listener.accept()
            except OSError:
                continue
            self.connections += 1
            connection.close()

    def stop(self) -> None:
        self.running = False
        self.thread.join()
        self.listener.close()


@pytest.fixture
def hub(tmp_path: Path) -> Iterator[tuple[dict[str, str], CountingServer]]:
    server = CountingServer()
    env = {**os.environ, "HF_HOME": str(tmp_path / "hf"), "HF_ENDPOINT": server.url}
    env.pop("HF_HUB_OFFLINE", None)
    yield env, server
    server.stop()


def put_in_hub_cache(home: Path, repo: str, folder: Path) -> None:
    """Lay ``folder`` out as the Hugging Face cache holds a downloaded snapshot of ``repo``."""
    commit = "0123456789abcdef0123456789abcdef01234567"
    root = home / "hub" / f"models--{repo.replace('/', '--')}"
    (root / "refs").mkdir(parents=True)
    (root / "refs" / "main").write_text(commit)
    shutil.copytree(folder, root / "snapshots" / commit)


def test_a_model_id_in_the_hub_cache_answers_without_the_network(
        config_file: Path, tiny: dict, tmp_path: Path, hub: tuple[dict[str, str], CountingServer]) -> None:
    env, server = hub
    put_in_hub_cache(Path(env["HF_HOME"]), "llmswitch-test/tiny-chat", tiny["chat"])
    profile(config_file, "llmswitch-test/tiny-chat", temperature=0.0, max_tokens=4)
    proc = llmswitch_subprocess("chat", "-p", "tiny", "--json", PROMPT, env=env)
    assert proc.returncode == 0, proc.stderr
    answer = json.loads(proc.stdout)
    assert answer["usage"]["output_tokens"] == 4 and answer["model"] == "llmswitch-test/tiny-chat"
    assert answer["cost"]["usd"] == 0
    assert server.connections == 0


def test_a_model_missing_from_the_cache_is_not_downloaded(
        config_file: Path, hub: tuple[dict[str, str], CountingServer]) -> None:
    env, server = hub
    profile(config_file, "llmswitch-test/not-there")
    proc = llmswitch_subprocess("chat", "-p", "tiny", PROMPT, env=env)
    assert proc.returncode == 1 and proc.stdout == ""
    assert "not in the Hugging Face cache" in proc.stderr and "does not allow downloads" in proc.stderr
    assert "allow_download = true" in proc.stderr and "Traceback" not in proc.stderr
    assert server.connections == 0
    # Allowed, it does try the Hub (here a socket that hangs up), and says the model could not be had.
    profile(config_file, "llmswitch-test/not-there", allow_download=True)
    proc = llmswitch_subprocess("chat", "-p", "tiny", PROMPT, env=env)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert server.connections > 0


def test_help_and_plugins_do_not_import_torch() -> None:
    from tests.helpers import console_script_probe

    probe = console_script_probe(
        "sys.stderr.write('HEAVY=' + ','.join(m for m in ('torch', 'transformers', 'huggingface_hub') "
        "if m in sys.modules))"
    )
    for args in (["--help"], ["plugins"], ["profiles", "list"]):
        proc = subprocess.run([sys.executable, "-c", probe, *args], capture_output=True, text=True)
        assert "transformers" in proc.stdout or args == ["--help"] or args == ["profiles", "list"], proc.stdout
        assert proc.stderr.rsplit("HEAVY=", 1)[1].strip() == "", args


# ---- doctor ------------------------------------------------------------------------------------------------


def test_doctor_checks_everything_and_generates_in_a_child_process(config_file: Path, tiny: dict) -> None:
    earlier = sys.modules.get("llmswitch_transformers.runtime")
    if earlier is not None:
        earlier.unload_all()  # a model another test file loaded in this process (tests run in random order)
    resolved = profile(config_file, tiny["chat"])
    report = resolved.health(timeout=5.0)
    checks = {check.name: check for check in report.checks}
    assert [check.name for check in report.checks] == ["libraries", "model files", "device", "memory",
                                                        "generation"]
    assert all(check.status is CheckStatus.PASS for check in report.checks), report.checks
    assert "torch 2." in checks["libraries"].detail and "cpu" in checks["device"].detail
    assert "parameters in float32" in checks["memory"].detail
    assert "in a separate process" in checks["generation"].detail
    assert report.metrics["tokens_per_s"] > 0 and report.metrics["parameters"] > 1000
    assert "llmswitch_transformers.runtime" in sys.modules  # the device check, in-process
    from llmswitch_transformers import runtime

    assert not runtime._models  # the model was loaded by the child only


def test_doctor_reports_a_missing_model_and_an_absent_device_with_remedies(
        config_file: Path, tiny: dict) -> None:
    missing = profile(config_file, "llmswitch-test/not-there").health(timeout=5.0)
    files = next(check for check in missing.checks if check.name == "model files")
    assert files.status is CheckStatus.FAIL and "allow_download = true" in (files.remedy or "")
    if torch.cuda.is_available():
        return
    cuda = profile(config_file, tiny["chat"], device="cuda").health(timeout=5.0)
    device = next(check for check in cuda.checks if check.name == "device")
    assert device.status is CheckStatus.FAIL and "without CUDA" in device.detail
    assert "pip install --force-reinstall torch --index-url" in (device.remedy or "")


def test_the_probe_explains_a_killed_load_as_memory(tiny: dict) -> None:
    import signal

    from llmswitch_transformers.probe import _explain_signal
    from llmswitch_transformers.settings import LoadSettings, ModelSource

    settings = LoadSettings(ModelSource(str(tiny["chat"]), tiny["chat"]), dtype="float32")
    result = _explain_signal(signal.SIGKILL, "", settings)
    assert not result.ok and "memory" in result.detail
    assert "max_memory" in (result.remedy or "") and "smaller dtype" in (result.remedy or "")


def test_a_failed_load_in_the_probe_is_a_report(tiny: dict, tmp_path: Path) -> None:
    from llmswitch_transformers.probe import run_probe
    from llmswitch_transformers.settings import LoadSettings, ModelSource

    broken = tmp_path / "broken"
    shutil.copytree(tiny["chat"], broken)
    (broken / "model.safetensors").write_bytes(b"not safetensors")
    result = run_probe(LoadSettings(ModelSource(str(broken), broken)), timeout=120)
    assert not result.ok and result.remedy and str(broken) in result.detail


def test_the_async_path_cancels_generation_too(config_file: Path, tiny: dict) -> None:
    import asyncio

    from llmswitch import AsyncClient

    profile(config_file, tiny["chat"], temperature=0.0, max_tokens=3000)
    resolved = AsyncClient().resolve("tiny")

    async def main() -> str:
        result = resolved.astream(resolved.request(PROMPT))
        started = asyncio.Event()

        async def consume() -> None:
            async for event in result:
                if isinstance(event, TextDelta):
                    started.set()

        task = asyncio.create_task(consume())
        await started.wait()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        return result.text

    text = asyncio.run(main())
    assert text
    deadline = time.monotonic() + 5
    while [t for t in threading.enumerate() if t.name == "llmswitch-transformers-generate"]:
        assert time.monotonic() < deadline, "generation went on after the task was cancelled"
        time.sleep(0.05)


def test_doctor_without_torch_gives_the_pip_command(config_file: Path, tiny: dict,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "torch", None)  # as if not installed: find_spec and import both fail
    report = profile(config_file, tiny["chat"]).health(timeout=5.0)
    libraries = report.checks[0]
    assert libraries.name == "libraries" and libraries.status is CheckStatus.FAIL
    assert "torch cannot be imported" in libraries.detail
    assert "pip install torch==2.13.0 transformers accelerate gguf" in (libraries.remedy or "")
    assert report.checks[-1].status is CheckStatus.SKIP
