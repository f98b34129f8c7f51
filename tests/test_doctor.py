"""doctor, the library: plugin, config, key and health checks per profile, concurrently, with remedies.

Backends here are the installed echo plugin and small plugins registered from Python whose health hook does
what each test needs (fails, hangs, sleeps, speaks HTTP to a local server).
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from llmswitch import hookimpl
from llmswitch.client import Client
from llmswitch.doctor import Diagnosis, diagnose, hook_bound, iter_diagnoses, run_doctor
from llmswitch.errors import (
    AuthError,
    BackendTimeoutError,
    ModelNotFoundError,
    ProfileNotFoundError,
    UnreachableError,
)
from llmswitch.ledger import Ledger, LedgerEntry
from llmswitch.plugins import register_plugin, unregister_plugin
from llmswitch.types import BackendInfo, Check, CheckStatus, Crash, HealthReport, OptionSpec, Status, Target
from tests.helpers import write_config
from tests.servers.http import refused_port
from tests.servers.openai_server import openai_server

HealthBehaviour = Callable[[Target, float, bool], HealthReport]


class ScriptedPlugin:
    """A backend whose health hook runs ``behaviour``; records every call."""

    def __init__(self, backend: str, behaviour: HealthBehaviour, *, key_env: str | None = None,
                 **declared: Any) -> None:
        self.backend = backend
        self.behaviour = behaviour
        self.key_env = key_env
        self.declared = declared  # more BackendInfo fields: start_servers, crash_remedies, ...
        self.calls: list[tuple[float, bool]] = []

    @hookimpl
    def llmswitch_backends(self) -> list[BackendInfo]:
        return [BackendInfo(
            name=self.backend, summary="scripted for doctor tests", default_model="m1", key_env=self.key_env,
            options=(OptionSpec("base_url", "str"), OptionSpec("api_key_env", "str"),
                     OptionSpec("model_path", "path")),
            **self.declared,
        )]

    @hookimpl
    def health(self, target: Target, timeout: float, offline: bool) -> HealthReport:
        self.calls.append((timeout, offline))
        return self.behaviour(target, timeout, offline)


class BrokenAtDiscovery:
    """A plugin whose SDK is missing: it fails while describing itself."""

    @hookimpl
    def llmswitch_backends(self) -> list[BackendInfo]:
        raise ModuleNotFoundError("No module named 'acme_sdk'")


@pytest.fixture
def plugins() -> Iterator[Callable[[object, str], object]]:
    """Register plugins for one test; every one is removed afterwards."""
    names: list[str] = []

    def add(plugin: object, name: str) -> object:
        register_plugin(plugin, name)
        names.append(name)
        return plugin

    yield add
    for name in names:
        unregister_plugin(name)


def passing(target: Target, timeout: float, offline: bool) -> HealthReport:
    return HealthReport.from_checks([Check("server", CheckStatus.PASS, "answered")], latency_s=0.012)


def sleeper(seconds: float) -> HealthBehaviour:
    def behaviour(target: Target, timeout: float, offline: bool) -> HealthReport:
        time.sleep(seconds)
        return passing(target, timeout, offline)

    return behaviour


def check(diagnosis: Diagnosis, name: str) -> Check:
    found = [c for c in diagnosis.checks if c.name == name]
    assert found, f"no check {name!r} in {diagnosis.checks}"
    return found[0]


# ---- the echo plugin, end to end ------------------------------------------------------------------------


def test_echo_profile_is_ok_with_plugin_config_and_health_checks() -> None:
    diagnosis = diagnose(Client(), "echo", timeout=2)
    assert diagnosis.status is Status.OK
    assert [c.name for c in diagnosis.checks] == ["plugin", "config", "echo"]
    assert all(c.status is CheckStatus.PASS for c in diagnosis.checks)
    assert check(diagnosis, "plugin").detail == "echo from llmswitch-echo 0.1.0"
    assert diagnosis.plugin is not None and diagnosis.plugin.distribution == "llmswitch-echo"
    assert diagnosis.key is None  # echo needs no key
    assert diagnosis.standard_request_usd == 0.0  # the echo plugin's price table says 0: known, free


def test_unknown_profile_name_raises_before_anything_runs() -> None:
    with pytest.raises(ProfileNotFoundError) as caught:
        run_doctor(Client(), ["ehco"])
    assert "echo" in (caught.value.remedy or "")


def test_backend_not_installed_says_what_to_pip_install(config_file: Path) -> None:
    write_config(config_file, '[profiles.far]\nbackend = "nosuch"\nmodel = "x"\n')
    diagnosis = diagnose(Client(), "far")
    assert diagnosis.status is Status.DOWN
    plugin = check(diagnosis, "plugin")
    assert plugin.status is CheckStatus.FAIL
    assert plugin.detail == "no installed plugin provides the backend 'nosuch'"
    assert "pip install llmswitch-nosuch" in (plugin.remedy or "")
    assert [c.name for c in diagnosis.checks] == ["plugin"]  # nothing else can be checked


def test_broken_plugin_is_reported_with_its_error_and_others_keep_working(
    config_file: Path, plugins: Callable[[object, str], object]
) -> None:
    plugins(BrokenAtDiscovery(), "acme")
    write_config(config_file, '[profiles.acme]\nbackend = "acme"\nmodel = "a"\n')
    report = run_doctor(Client(), ["acme", "echo"], timeout=2)
    by_name = {d.profile: d for d in report.diagnoses}
    assert by_name["echo"].status is Status.OK
    acme = check(by_name["acme"], "plugin")
    assert by_name["acme"].status is Status.DOWN
    assert "failed to load: ModuleNotFoundError: No module named 'acme_sdk'" in acme.detail
    assert acme.remedy == "pip install acme-sdk"
    broken = report.as_dict()["broken_plugins"]
    assert broken == [{"name": "acme", "distribution": "(registered in Python)", "version": None,
                       "error": "ModuleNotFoundError: No module named 'acme_sdk'", "remedy": "pip install acme-sdk"}]


def test_invalid_configuration_is_a_failed_config_check(config_file: Path) -> None:
    write_config(config_file, '[profiles.echo]\nchunk_sise = 3\n')
    diagnosis = diagnose(Client(), "echo")
    config = check(diagnosis, "config")
    assert diagnosis.status is Status.DOWN
    assert config.status is CheckStatus.FAIL
    assert "unknown option 'chunk_sise'" in config.detail
    assert (config.remedy or "").startswith("did you mean 'chunk_size'?")


# ---- keys -----------------------------------------------------------------------------------------------


def test_missing_key_names_the_variable_and_skips_the_health_hook(
    config_file: Path, plugins: Callable[[object, str], object]
) -> None:
    plugin = plugins(ScriptedPlugin("keyed", passing, key_env="DOC_API_KEY"), "keyed")
    write_config(config_file, '[profiles.k]\nbackend = "keyed"\n')
    diagnosis = diagnose(Client(), "k")
    key = check(diagnosis, "key")
    assert diagnosis.status is Status.DOWN
    assert key.status is CheckStatus.FAIL
    assert key.detail == "not set: DOC_API_KEY is empty in the environment and in .env"
    assert key.remedy == ("export DOC_API_KEY=... (or put DOC_API_KEY=... in a .env file in this directory, "
                          "pass --api-key, or name another variable with api_key_env in the profile)")
    assert check(diagnosis, "health").status is CheckStatus.SKIP
    assert plugin.calls == []  # type: ignore[attr-defined]
    assert diagnosis.key is not None and not diagnosis.key.present and diagnosis.key.variable == "DOC_API_KEY"


@pytest.mark.parametrize("where", ["env", ".env"])
def test_key_is_shown_masked_with_where_it_came_from(
    where: str, config_file: Path, plugins: Callable[[object, str], object], monkeypatch: pytest.MonkeyPatch
) -> None:
    secret = "sk-doctor-0123456789-wxyz"
    plugins(ScriptedPlugin("keyed", passing, key_env="DOC_API_KEY"), "keyed")
    write_config(config_file, '[profiles.k]\nbackend = "keyed"\n')
    if where == "env":
        monkeypatch.setenv("DOC_API_KEY", secret)
    else:
        Path(".env").write_text(f"DOC_API_KEY={secret}\n")
    report = run_doctor(Client(), ["k"])
    diagnosis = report.diagnoses[0]
    assert diagnosis.status is Status.OK
    assert check(diagnosis, "key").detail == f"sk-…wxyz from {where}:DOC_API_KEY"
    assert report.as_dict()["profiles"][0]["key"] == {
        "required": True, "present": True, "masked": "sk-…wxyz", "source": f"{where}:DOC_API_KEY",
        "variable": "DOC_API_KEY", "withheld": None}
    assert secret not in json.dumps(report.as_dict())


# ---- the health hook: failures get remedies, hangs are bounded ---------------------------------------------


def raising(error: Exception) -> HealthBehaviour:
    def behaviour(target: Target, timeout: float, offline: bool) -> HealthReport:
        raise error

    return behaviour


def test_plugin_remedy_wins_over_the_core_one(config_file: Path, plugins: Callable[[object, str], object]) -> None:
    plugins(ScriptedPlugin("scripted", raising(UnreachableError("down", remedy="plugin's own advice"))), "s")
    write_config(config_file, '[profiles.s]\nbackend = "scripted"\n')
    health = check(diagnose(Client(), "s"), "health")
    assert (health.status, health.detail, health.remedy) == (CheckStatus.FAIL, "down", "plugin's own advice")


def test_a_crashing_hook_with_a_missing_module_says_which_distribution(
    config_file: Path, plugins: Callable[[object, str], object]
) -> None:
    plugins(ScriptedPlugin("scripted", raising(ModuleNotFoundError("No module named 'llama_cpp'"))), "s")
    write_config(config_file, '[profiles.s]\nbackend = "scripted"\n')
    diagnosis = diagnose(Client(), "s")
    health = check(diagnosis, "health")
    assert diagnosis.status is Status.DOWN
    assert "ModuleNotFoundError: No module named 'llama_cpp'" in health.detail
    assert health.remedy == ('pip install llama-cpp-python (a GPU build: CMAKE_ARGS="-DGGML_CUDA=on" '
                             "pip install llama-cpp-python)")


@pytest.mark.parametrize(
    ("detail", "expected"),
    [
        # llamacpp's own rebuild instructions (see below), which name the flags.
        ("the generation subprocess died: Illegal instruction (core dumped)", Crash.ILLEGAL_INSTRUCTION),
        # A backend with no server URL runs its model in this process: the in-process remedy.
        ("CUDA out of memory while loading 33 layers",
         "lower n_gpu_layers (e.g. 20 instead of 30) or n_ctx (e.g. 2048), or use a smaller quantization "
         "(Q4_K_M instead of Q8_0)"),
        ("model file /models/q.gguf: no such file",
         "check that the model file /models/q.gguf exists (`ls -l /models/q.gguf`), or point model_path at a "
         ".gguf file you have"),
    ],
)
def test_failed_checks_without_a_remedy_get_the_core_one(
    detail: str, expected: str | Crash, config_file: Path, plugins: Callable[[object, str], object]
) -> None:
    def behaviour(target: Target, timeout: float, offline: bool) -> HealthReport:
        return HealthReport.from_checks([Check("load", CheckStatus.PASS, "fine"), Check("generate", CheckStatus.FAIL,
                                                                                       detail)])

    # An in-process backend that declares what llamacpp declares: the words are the declaration's.
    from llmswitch.plugins import get_registry

    llamacpp = get_registry().backend("llamacpp").info
    plugins(ScriptedPlugin("scripted", behaviour, crash_remedies=llamacpp.crash_remedies,
                           model_option=llamacpp.model_option), "s")
    write_config(config_file, '[profiles.s]\nbackend = "scripted"\nmodel_path = "/models/q.gguf"\n')
    diagnosis = diagnose(Client(), "s")
    generate = check(diagnosis, "generate")
    assert diagnosis.status is Status.DOWN
    if expected is Crash.ILLEGAL_INSTRUCTION:
        assert generate.remedy == llamacpp.crash_remedies[expected]
        assert generate.remedy is not None and 'CMAKE_ARGS="-DGGML_NATIVE=OFF' in generate.remedy
    else:
        assert generate.remedy == expected


def test_a_warning_makes_the_profile_degraded_not_down(
    config_file: Path, plugins: Callable[[object, str], object]
) -> None:
    def behaviour(target: Target, timeout: float, offline: bool) -> HealthReport:
        return HealthReport.from_checks([Check("model", CheckStatus.WARN, "list not in the usual format")])

    plugins(ScriptedPlugin("scripted", behaviour), "s")
    write_config(config_file, '[profiles.s]\nbackend = "scripted"\n')
    report = run_doctor(Client(), ["s"])
    assert report.diagnoses[0].status is Status.DEGRADED
    assert report.ok  # degraded is not down: exit 0


def test_a_hung_health_hook_is_reported_as_timed_out_and_does_not_hang_doctor(
    config_file: Path, plugins: Callable[[object, str], object]
) -> None:
    plugins(ScriptedPlugin("hung", sleeper(60)), "hung")
    write_config(config_file, '[profiles.h]\nbackend = "hung"\nbase_url = "http://127.0.0.1:9/v1"\n')
    started = time.perf_counter()
    report = run_doctor(Client(), ["h", "echo"], timeout=0.2)
    elapsed = time.perf_counter() - started
    assert elapsed < hook_bound(0.2) + 2.0
    by_name = {d.profile: d for d in report.diagnoses}
    assert by_name["echo"].status is Status.OK
    health = check(by_name["h"], "health")
    assert by_name["h"].status is Status.DOWN
    assert health.detail == "the hung plugin's health check gave no answer within 0.6s"
    assert health.remedy == ("no answer within 0.2s: the server at http://127.0.0.1:9/v1 may be overloaded, "
                             "stuck or still loading the model; check it, or allow longer with --timeout")
    assert not report.ok


def test_ten_profiles_taking_a_second_each_finish_in_about_a_second(
    config_file: Path, plugins: Callable[[object, str], object]
) -> None:
    plugins(ScriptedPlugin("slow", sleeper(1.0)), "slow")
    write_config(config_file, "".join(f'[profiles.slow{i}]\nbackend = "slow"\n' for i in range(10)))
    started = time.perf_counter()
    report = run_doctor(Client(), [f"slow{i}" for i in range(10)], timeout=5)
    elapsed = time.perf_counter() - started
    assert [d.status for d in report.diagnoses] == [Status.OK] * 10
    assert elapsed < 4.0, f"took {elapsed:.1f}s: not concurrent"  # sequential would take 10 s


def test_results_arrive_as_each_profile_completes(
    config_file: Path, plugins: Callable[[object, str], object]
) -> None:
    plugins(ScriptedPlugin("slow", sleeper(0.6)), "slow")
    write_config(config_file, '[profiles.slow]\nbackend = "slow"\n')
    order = [d.profile for d in iter_diagnoses(Client(), ["slow", "echo"], timeout=5)]
    assert order == ["echo", "slow"]
    seen: list[str] = []
    report = run_doctor(Client(), ["slow", "echo"], timeout=5, on_result=lambda d: seen.append(d.profile))
    assert seen == ["echo", "slow"]
    assert [d.profile for d in report.diagnoses] == ["echo", "slow"]  # the report is sorted by name


def test_offline_is_passed_to_the_hook(config_file: Path, plugins: Callable[[object, str], object]) -> None:
    plugin = plugins(ScriptedPlugin("scripted", passing), "s")
    write_config(config_file, '[profiles.s]\nbackend = "scripted"\n')
    report = run_doctor(Client(), ["s"], timeout=3, offline=True)
    assert plugin.calls == [(3, True)]  # type: ignore[attr-defined]
    assert report.as_dict()["offline"] is True


# ---- a plugin that speaks HTTP to a local OpenAI-protocol server and leaves remedies to the core ------------


def http_health(target: Target, timeout: float, offline: bool) -> HealthReport:
    """GET /models; raise the llmswitch error for each failure, with no remedy of its own."""
    started = time.perf_counter()
    try:
        with urllib.request.urlopen(f"{target.base_url}/models", timeout=timeout) as answer:
            served = [m["id"] for m in json.load(answer)["data"]]
    except urllib.error.HTTPError as error:
        if error.code == 401:
            raise AuthError("the server answered 401 Unauthorized", status_code=401) from None
        raise
    except urllib.error.URLError as error:
        if isinstance(error.reason, TimeoutError):
            raise BackendTimeoutError(f"no answer within {timeout:g}s") from None
        raise UnreachableError(f"cannot connect: {error.reason}") from None
    except TimeoutError:
        raise BackendTimeoutError(f"no answer within {timeout:g}s") from None
    if target.model not in served:
        raise ModelNotFoundError(f"model {target.model!r} is not served (served: {', '.join(served)})")
    return HealthReport.from_checks([Check("server", CheckStatus.PASS, "answered"),
                                     Check("model", CheckStatus.PASS, f"{target.model} is served")],
                                    latency_s=time.perf_counter() - started)


@pytest.fixture
def http_plugin(plugins: Callable[[object, str], object]) -> object:
    from llmswitch.plugins import get_registry

    # How the servers it talks to start is data the backend declares; this one speaks OpenAI's protocol.
    openai = get_registry().backend("openai").info
    return plugins(ScriptedPlugin("httpcheck", http_health, key_env="HTTPCHECK_KEY", start_servers=openai.start_servers,
                                  served_model_help=openai.served_model_help), "httpcheck")


def http_profile(config_file: Path, url: str, model: str = "test-model") -> Client:
    write_config(config_file, f'[profiles.h]\nbackend = "httpcheck"\nbase_url = "{url}/v1"\nmodel = "{model}"\n'
                              'api_key_env = "HTTPCHECK_KEY"\n')
    return Client()


@pytest.fixture
def key(monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("HTTPCHECK_KEY", "sk-httpcheck-000000-abcd")
    return "sk-httpcheck-000000-abcd"


def test_http_healthy(config_file: Path, http_plugin: object, key: str) -> None:
    with openai_server() as server:
        diagnosis = diagnose(http_profile(config_file, server.url), "h", timeout=2)
    assert diagnosis.status is Status.OK
    assert [c.name for c in diagnosis.checks] == ["plugin", "config", "key", "server", "model"]
    assert diagnosis.latency_s is not None and diagnosis.latency_s < 2


def test_http_down_names_how_to_start_each_server(config_file: Path, http_plugin: object, key: str) -> None:
    port = refused_port()
    diagnosis = diagnose(http_profile(config_file, f"http://127.0.0.1:{port}"), "h", timeout=2)
    health = check(diagnosis, "health")
    assert diagnosis.status is Status.DOWN
    assert "Connection refused" in health.detail
    assert health.remedy == (
        f"nothing listens at http://127.0.0.1:{port}/v1: start the server, e.g. vLLM: `vllm serve MODEL --port "
        "8000` (older versions: `python -m vllm.entrypoints.openai.api_server --model MODEL --port 8000`); the "
        "llama.cpp server: `llama-server -m /path/to/model.gguf --port 8080`; Ollama: `ollama serve` (or open "
        "the Ollama app), with base_url http://127.0.0.1:11434/v1; then check the profile's base_url matches its address and port")


def test_http_401_says_the_key_was_rejected(config_file: Path, http_plugin: object, key: str) -> None:
    with openai_server() as server:
        server.state.scenario = "auth"
        diagnosis = diagnose(http_profile(config_file, server.url), "h", timeout=2)
    health = check(diagnosis, "health")
    assert diagnosis.status is Status.DOWN
    assert health.detail == "the server answered 401 Unauthorized"
    assert health.remedy == ("the server rejected the key sk-…abcd (from env:HTTPCHECK_KEY): check it is copied "
                             "whole, not revoked and meant for this server, with whoever runs the server")
    assert key not in repr(diagnosis.as_dict())


def test_http_model_missing(config_file: Path, http_plugin: object, key: str) -> None:
    with openai_server() as server:
        diagnosis = diagnose(http_profile(config_file, server.url, model="llama-70b"), "h", timeout=2)
    health = check(diagnosis, "health")
    assert diagnosis.status is Status.DOWN
    assert health.detail == "model 'llama-70b' is not served (served: gpt-4o-mini, test-model)"
    assert health.remedy == (f"ask for a model the server serves (`curl {server.url}/v1/models` lists them), or "
                             "start it with this one (vLLM: `vllm serve llama-70b`; llama.cpp: "
                             "`llama-server -m FILE --alias llama-70b`)")


def test_http_slower_than_the_timeout(config_file: Path, http_plugin: object, key: str) -> None:
    with openai_server() as server:
        server.state.scenario = "slow_first_byte"
        server.state.options["delay"] = 3
        started = time.perf_counter()
        diagnosis = diagnose(http_profile(config_file, server.url), "h", timeout=0.3)
        elapsed = time.perf_counter() - started
    health = check(diagnosis, "health")
    assert diagnosis.status is Status.DOWN
    assert health.detail == "no answer within 0.3s"
    assert health.remedy == (f"no answer within 0.3s: the server at {server.url}/v1 may be overloaded, stuck or "
                             "still loading the model; check it, or allow longer with --timeout")
    assert elapsed < 2.5


# ---- budgets and cost in the report --------------------------------------------------------------------------


def test_spend_against_budget_is_shown(config_file: Path) -> None:
    write_config(config_file, '[profiles.metered]\nbackend = "echo"\nprice_input_per_mtok = 1.0\n'
                              'price_output_per_mtok = 3.0\nbudget_usd_per_day = 1.0\nbudget_usd_per_month = 20\n')
    with Ledger() as ledger:
        ledger.append(LedgerEntry("metered", "echo", "echo", 10, 10, 0.25, 0.1))
        ledger.append(LedgerEntry("metered", "echo", "echo", 10, 10, 0.25, 0.1, ts=time.time() - 40 * 86400))
        ledger.append(LedgerEntry("other", "echo", "echo", 10, 10, 5.0, 0.1))
    diagnosis = diagnose(Client(), "metered")
    assert diagnosis.status is Status.OK
    assert [b.as_dict() for b in diagnosis.budgets] == [
        {"period": "day", "budget_usd": 1.0, "spent_usd": 0.25},
        {"period": "month", "budget_usd": 20.0, "spent_usd": 0.25},
    ]
    assert check(diagnosis, "budget").detail == "$0.2500 of $1.00 today; $0.2500 of $20.00 this month"
    assert diagnosis.standard_request_usd == pytest.approx((500 * 1.0 + 500 * 3.0) / 1e6)


def test_a_spent_budget_is_a_warning(config_file: Path) -> None:
    write_config(config_file, '[profiles.metered]\nbackend = "echo"\nbudget_usd_per_day = 0.5\n'
                              'price_input_per_mtok = 1.0\nprice_output_per_mtok = 1.0\n')
    with Ledger() as ledger:
        ledger.append(LedgerEntry("metered", "echo", "echo", 10, 10, 0.5, 0.1))
    diagnosis = diagnose(Client(), "metered")
    budget = check(diagnosis, "budget")
    assert diagnosis.status is Status.DEGRADED
    assert budget.status is CheckStatus.WARN
    assert budget.remedy == "wait for the next day, or raise budget_usd_per_day in [profiles.metered]"


def test_a_budget_without_a_price_cannot_be_kept(config_file: Path, plugins: Callable[[object, str], object]) -> None:
    plugins(ScriptedPlugin("scripted", passing), "s")
    write_config(config_file, '[profiles.s]\nbackend = "scripted"\nbudget_usd_per_day = 1.0\n')
    diagnosis = diagnose(Client(), "s")
    assert diagnosis.standard_request_usd is None  # no price table: unknown, never 0
    budget = check(diagnosis, "budget")
    assert budget.status is CheckStatus.FAIL
    assert "price is unknown" in budget.detail


# ---- JSON schema --------------------------------------------------------------------------------------------

TOP_KEYS = {"schema_version", "ok", "offline", "timeout_s", "duration_s", "standard_request", "profiles",
            "broken_plugins"}
PROFILE_KEYS = {"profile", "status", "backend", "model", "base_url", "base_url_source", "plugin", "key", "checks",
                "latency_s", "metrics", "price", "standard_request_usd", "standard_request_usd_range", "budgets",
                "duration_s", "members"}
PRICE_KEYS = {"input_per_mtok", "output_per_mtok", "cached_input_per_mtok", "context_window", "max_output",
              "batch_input_per_mtok", "batch_output_per_mtok", "source", "date", "age_days"}


def test_json_schema_is_stable(config_file: Path, plugins: Callable[[object, str], object]) -> None:
    plugins(ScriptedPlugin("keyed", passing, key_env="DOC_API_KEY"), "keyed")
    write_config(config_file, '[profiles.k]\nbackend = "keyed"\n[profiles.gone]\nbackend = "nosuch"\n')
    document: dict[str, Any] = json.loads(json.dumps(run_doctor(Client(), ["echo", "k", "gone"]).as_dict()))
    assert set(document) == TOP_KEYS
    assert document["schema_version"] == 1
    assert document["standard_request"] == {"input_tokens": 500, "output_tokens": 500}
    assert [p["profile"] for p in document["profiles"]] == ["echo", "gone", "k"]
    for profile in document["profiles"]:
        assert set(profile) == PROFILE_KEYS
        assert set(profile["price"]) == PRICE_KEYS
        assert profile["status"] in ("ok", "degraded", "down")
        for item in profile["checks"]:
            assert set(item) == {"name", "status", "detail", "remedy"}
            assert item["status"] in ("pass", "warn", "fail", "skip")
    echo, gone, keyed = document["profiles"]
    assert echo["plugin"] == {"name": "echo", "distribution": "llmswitch-echo", "version": "0.1.0"}
    assert echo["standard_request_usd"] == 0.0 and echo["standard_request_usd_range"] == [0.0, 0.0]
    assert echo["members"] == []  # a route's members only
    assert gone["plugin"] is None and gone["status"] == "down"
    assert keyed["key"] == {"required": True, "present": False, "masked": None, "source": None,
                            "variable": "DOC_API_KEY", "withheld": None}
    assert keyed["standard_request_usd"] is None and keyed["standard_request_usd_range"] is None
    assert document["ok"] is False


class NoHealthHook:
    """A complete backend that simply does not implement ``health`` (the hook is optional)."""

    @hookimpl
    def llmswitch_backends(self) -> list[BackendInfo]:
        return [BackendInfo(name="plain", summary="no health hook", key_env=None, default_model="p")]

    @hookimpl
    def complete(self, target: Target, request: Any) -> Any:
        from llmswitch.types import Response

        return Response("fine")


def test_a_plugin_without_a_health_hook_says_so_without_degrading_the_profile(
    config_file: Path, plugins: Callable[[object, str], object]
) -> None:
    from tests.helpers import run_cli

    plugins(NoHealthHook(), "plain")
    write_config(config_file, '[profiles.pl]\nbackend = "plain"\n')
    report = Client().resolve("pl").health()
    assert report.status is Status.OK  # the TUI's picker shows it usable
    [note] = report.checks
    assert note.status is CheckStatus.SKIP and "no health check" in note.detail

    diagnosis = diagnose(Client(), "pl")
    assert diagnosis.status is Status.NOT_CHECKED and not diagnosis.problems()
    outcome = run_cli("doctor", "pl")
    assert outcome.exit_code == 0, outcome
    assert "not checked" in outcome.stdout and "degraded" not in outcome.stdout
    assert "no health check" in outcome.stdout
    document = json.loads(run_cli("doctor", "--json", "pl").stdout)
    assert document["ok"] is True and document["profiles"][0]["status"] == "not_checked"
