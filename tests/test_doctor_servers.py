"""doctor through the installed OpenAI and Ollama plugins, against local servers speaking their protocols.

Each state a user meets: healthy, down, 401, model missing, slower than the timeout, and offline (no request
at all). The remedies asserted are the plugins' own (they win over the core's); the tests check the parts a
user acts on: the command to start the server, the pull, the variable.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from llmswitch.client import Client
from llmswitch.doctor import Diagnosis, diagnose, run_doctor
from llmswitch.types import Check, CheckStatus, Status
from tests.helpers import write_config
from tests.servers.http import refused_port

pytest.importorskip("llmswitch_openai")
pytest.importorskip("llmswitch_ollama")

from tests.servers.ollama_server import ollama_server  # noqa: E402
from tests.servers.openai_server import openai_server  # noqa: E402

KEY = "sk-doctor-openai-000000-abcd"


def check(diagnosis: Diagnosis, name: str) -> Check:
    found = [c for c in diagnosis.checks if c.name == name]
    assert found, f"no check {name!r} in {diagnosis.checks}"
    return found[0]


def failed(diagnosis: Diagnosis) -> list[Check]:
    return [c for c in diagnosis.checks if c.status is CheckStatus.FAIL]


def openai_profile(config_file: Path, url: str, model: str = "test-model") -> Client:
    write_config(config_file, f'[profiles.oa]\nbackend = "openai"\nbase_url = "{url}/v1"\nmodel = "{model}"\n'
                              'api_key_env = "DOCTOR_OPENAI_KEY"\n')
    return Client()


def ollama_profile(config_file: Path, url: str, model: str = "llama3.2") -> Client:
    write_config(config_file, f'[profiles.ol]\nbackend = "ollama"\nbase_url = "{url}"\nmodel = "{model}"\n')
    return Client()


@pytest.fixture(autouse=True)
def openai_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DOCTOR_OPENAI_KEY", KEY)


# ---- OpenAI protocol --------------------------------------------------------------------------------------


def test_openai_healthy(config_file: Path) -> None:
    with openai_server() as server:
        diagnosis = diagnose(openai_profile(config_file, server.url), "oa", timeout=3)
        assert server.state.requests[0].headers["authorization"] == f"Bearer {KEY}"
    assert diagnosis.status is Status.OK, diagnosis.checks
    assert check(diagnosis, "key").detail == "sk-…abcd from env:DOCTOR_OPENAI_KEY"
    assert [c.name for c in diagnosis.checks].count("key") == 1  # the plugin's own key check is not repeated
    assert diagnosis.latency_s is not None


def test_openai_down(config_file: Path) -> None:
    port = refused_port()
    diagnosis = diagnose(openai_profile(config_file, f"http://127.0.0.1:{port}"), "oa", timeout=3)
    assert diagnosis.status is Status.DOWN
    [server_check] = failed(diagnosis)
    assert server_check.name == "server"
    assert "vllm serve" in (server_check.remedy or "") and "llama-server" in (server_check.remedy or "")


def test_openai_key_rejected(config_file: Path) -> None:
    with openai_server() as server:
        server.state.scenario = "auth"
        diagnosis = diagnose(openai_profile(config_file, server.url), "oa", timeout=3)
    assert diagnosis.status is Status.DOWN
    [rejected] = failed(diagnosis)
    assert rejected.name == "key accepted"
    assert "401" in rejected.detail or "rejected" in rejected.detail.lower()
    assert rejected.remedy
    assert KEY not in rejected.detail + rejected.remedy


def test_openai_model_missing_lists_what_is_served(config_file: Path) -> None:
    with openai_server() as server:
        diagnosis = diagnose(openai_profile(config_file, server.url, model="no-such-model"), "oa", timeout=3)
    assert diagnosis.status is Status.DOWN
    [model] = failed(diagnosis)
    assert model.name == "model"
    assert "test-model" in (model.remedy or "") + model.detail


def test_openai_slower_than_the_timeout(config_file: Path) -> None:
    with openai_server() as server:
        server.state.scenario = "slow_first_byte"
        server.state.options["delay"] = 4
        started = time.perf_counter()
        diagnosis = diagnose(openai_profile(config_file, server.url), "oa", timeout=0.5)
        elapsed = time.perf_counter() - started
    # The plugin reports a model list that timed out as a warning (chat may still work): degraded, not ok.
    assert diagnosis.status is Status.DEGRADED
    slow = check(diagnosis, "server")
    assert slow.status is CheckStatus.WARN
    assert "within 0.5 s" in slow.detail
    assert slow.remedy
    assert elapsed < 3.5


def test_openai_offline_sends_nothing_and_says_not_checked(config_file: Path) -> None:
    with openai_server() as server:
        report = run_doctor(openai_profile(config_file, server.url), ["oa"], timeout=3, offline=True)
        assert server.state.requests == []
    [diagnosis] = report.diagnoses
    assert diagnosis.status is Status.NOT_CHECKED  # not "ok": nobody asked the server
    assert {c.status for c in diagnosis.checks} <= {CheckStatus.PASS, CheckStatus.SKIP}
    assert report.ok and report.as_dict()["profiles"][0]["status"] == "not_checked"
    assert "offline" in diagnosis.not_checked_summary()


def test_offline_every_server_backend_is_not_checked_in_the_table(config_file: Path) -> None:
    from tests.helpers import run_cli

    with openai_server() as oa, ollama_server() as ol:
        write_config(config_file, f"""
[profiles.oa]
backend = "openai"
base_url = "{oa.url}/v1"
model = "test-model"
[profiles.ol]
backend = "ollama"
base_url = "{ol.url}"
model = "llama3.2"
[profiles.an]
backend = "anthropic"
base_url = "{oa.url}"
model = "claude-x"
""")
        outcome = run_cli("doctor", "--offline", "oa", "ol", "an", "echo")
        assert oa.state.requests == [] and ol.state.requests == []
    assert outcome.exit_code == 0, outcome
    rows = {line.split()[0]: line for line in outcome.stdout.splitlines() if line.strip()}
    for name in ("oa", "ol", "an"):
        assert "not checked" in rows[name] and "✓ ok" not in rows[name], rows[name]
        assert f"{name} · not checked:" in outcome.stdout and "offline" in outcome.stdout
    assert "✓ ok" in rows["echo"]  # nothing to contact: its check ran in full
    assert "3 not checked" in outcome.stdout


# ---- Ollama protocol ----------------------------------------------------------------------------------------


def test_ollama_healthy(config_file: Path) -> None:
    with ollama_server() as server:
        diagnosis = diagnose(ollama_profile(config_file, server.url), "ol", timeout=3)
    assert diagnosis.status is Status.OK, diagnosis.checks
    assert diagnosis.standard_request_usd == 0.0  # local: known and free


def test_ollama_down_says_ollama_serve(config_file: Path) -> None:
    diagnosis = diagnose(ollama_profile(config_file, f"http://127.0.0.1:{refused_port()}"), "ol", timeout=3)
    assert diagnosis.status is Status.DOWN
    [server_check] = failed(diagnosis)
    assert "ollama serve" in (server_check.remedy or "")


def test_ollama_model_missing_says_ollama_pull(config_file: Path) -> None:
    with ollama_server() as server:
        diagnosis = diagnose(ollama_profile(config_file, server.url, model="mistral"), "ol", timeout=3)
    assert diagnosis.status is Status.DOWN
    [model] = failed(diagnosis)
    assert model.name == "model"
    assert "ollama pull mistral" in (model.remedy or "")


def test_ollama_slower_than_the_timeout(config_file: Path) -> None:
    with ollama_server() as server:
        server.state.scenario = "slow_first_byte"
        server.state.options["delay"] = 4
        started = time.perf_counter()
        diagnosis = diagnose(ollama_profile(config_file, server.url), "ol", timeout=0.5)
        elapsed = time.perf_counter() - started
    assert diagnosis.status is Status.DOWN
    assert failed(diagnosis)[0].name in ("server", "health")
    assert elapsed < 3.5


def test_all_states_at_once_are_checked_concurrently(config_file: Path) -> None:
    with openai_server() as healthy, openai_server() as slow, ollama_server() as ollama:
        slow.state.scenario = "slow_first_byte"
        slow.state.options["delay"] = 2
        write_config(config_file, f"""
[profiles.healthy]
backend = "openai"
base_url = "{healthy.url}/v1"
model = "test-model"
api_key_env = "DOCTOR_OPENAI_KEY"
[profiles.slow]
backend = "openai"
base_url = "{slow.url}/v1"
model = "test-model"
api_key_env = "DOCTOR_OPENAI_KEY"
[profiles.down]
backend = "openai"
base_url = "http://127.0.0.1:{refused_port()}/v1"
model = "test-model"
[profiles.pulled]
backend = "ollama"
base_url = "{ollama.url}"
model = "llama3.2"
""")
        started = time.perf_counter()
        report = run_doctor(Client(), ["healthy", "slow", "down", "pulled"], timeout=1.5)
        elapsed = time.perf_counter() - started
    status = {d.profile: d.status for d in report.diagnoses}
    assert status["healthy"] is Status.OK and status["pulled"] is Status.OK
    assert status["down"] is Status.DOWN
    assert status["slow"] is not Status.OK
    assert not report.ok
    assert elapsed < 4.0  # the slow one (1.5 s) does not add to the others
