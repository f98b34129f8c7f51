"""Hermetic tests: the fixtures ship in the package (llmswitch.testing.fixtures) so plugins can use them too."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from tests.servers.http import LocalServer

pytest_plugins = ["llmswitch.testing.fixtures", "pytester"]


# ---- route tests: three OpenAI protocol servers, and route strategies forgotten between tests ----------------------


@pytest.fixture
def servers() -> Iterator[list[LocalServer]]:
    """Three OpenAI protocol servers on 127.0.0.1 answering "answer from a", "answer from b", "answer from c"."""
    from tests.servers.openai_server import openai_server

    with openai_server() as a, openai_server() as b, openai_server() as c:
        for name, server in zip("abc", (a, b, c), strict=True):
            server.state.options["answer"] = f"answer from {name}"
        yield [a, b, c]


@pytest.fixture
def fresh_strategies() -> Iterator[None]:
    """Route strategies' memory (round-robin turns, latencies) starts empty and is forgotten afterwards."""
    from llmswitch.router import strategies

    strategies.forget()
    yield
    strategies.forget()


# ---- in CI a skipped test is a failure, unless it is listed here with the reason it may skip --------------------

# node id (without parameters) -> why skipping there is the right outcome on some machines
ALLOWED_SKIPS: dict[str, str] = {
    "tests/test_mutation_survivors.py::test_spend_earlier_this_month_does_not_count_against_the_daily_budget":
        "on the first of a month there is no earlier day of the month to spend on",
    "tests/plugins/test_llamacpp_health.py::test_model_that_does_not_fit_in_memory_gets_the_memory_remedy":
        "with vm.overcommit_memory = 1 the huge allocation could succeed and then exhaust the machine's memory",
    "tests/test_setup.py::test_nox_script_works_with_an_externally_managed_python":
        "needs a PEP 668 (externally managed) python3 in /usr/bin, which only some distributions ship",
    "tests/test_store_diagnosis.py::test_a_read_only_data_dir_is_called_read_only_never_moved_away":
        "as root only an immutable directory (chattr +i) is read-only, and some filesystems and containers "
        "refuse chattr",
    "tests/plugins/test_transformers.py::test_unusable_settings_are_refused":
        "on a machine with CUDA or MPS the device settings are usable, so there is nothing to refuse",
}


def _in_ci() -> bool:
    return os.environ.get("CI", "").lower() in ("true", "1", "yes")


def _refuse_skip(report: pytest.CollectReport | pytest.TestReport, nodeid: str) -> None:
    reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
    report.outcome = "failed"
    report.longrepr = (f"{nodeid} was skipped in CI ({reason}). CI runs every test: install what it needs in "
                       "scripts/install.sh or .ci/run, or add it to ALLOWED_SKIPS in tests/conftest.py with the reason.")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    outcome = yield
    report = outcome.get_result()  # type: ignore[attr-defined]
    allowed = item.nodeid.split("[", 1)[0] in ALLOWED_SKIPS
    if report.skipped and _in_ci() and not hasattr(report, "wasxfail") and not allowed:
        _refuse_skip(report, item.nodeid)


@pytest.hookimpl(hookwrapper=True)
def pytest_make_collect_report(collector: pytest.Collector) -> Iterator[None]:
    """A module skipped whole at import (``pytest.importorskip`` at the top) fails in CI too."""
    outcome = yield
    report = outcome.get_result()  # type: ignore[attr-defined]
    if report.skipped and _in_ci() and report.nodeid not in ALLOWED_SKIPS:
        _refuse_skip(report, report.nodeid)
