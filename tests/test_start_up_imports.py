"""What a one-shot ``llmswitch chat`` imports: a guard on start-up cost that does not time anything.

``chat`` is run from scripts many times over, and every module it imports is paid on each run (see
docs/benchmarks.md, "Start-up cut"). Timing tests are noise on a shared machine; the modules a run imports are
not. Each module listed here was once imported by ``chat --profile echo hi`` and is not needed to answer it: an
import that brings one back fails here with the name, so the cost is a decision, not an accident.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.helpers import console_script_probe

# Module -> why a one-shot chat must not import it.
NOT_FOR_A_ONE_SHOT_CHAT = {
    "logging": "imported only when something is logged (llmswitch.lazy.logger)",
    "importlib.metadata": "plugins are found by reading entry_points.txt (llmswitch.entry_points)",
    "email": "comes with importlib.metadata",
    "zipfile": "comes with importlib.metadata",
    "asyncio": "the sync path starts no event loop",
    "difflib": "only for 'did you mean' after a mistake",
    "llmswitch.store.search": "the history's search, only when searching",
    "llmswitch.store.export": "only for `history export`",
    "llmswitch.response_cache": "only for a profile with cache = true",
    "llmswitch.router.routes": "only for a route profile",
    "llmswitch.price_catalog": "only for `prices update`",
    "llmswitch.bridge": "only for an async-only backend",
    "llmswitch.doctor": "only for doctor",
    "llmswitch_llamacpp.embedded": "the demo models, only for a llamacpp profile (INFO needs llmswitch_llamacpp.defaults)",
    "llmswitch_llamacpp.settings": "only when a llamacpp model is loaded",
    "llmswitch_llamacpp.prompts": "only when a llamacpp model is prompted",
}

PROBE = console_script_probe("sys.stderr.write('\\nMODULES=' + ' '.join(sorted(sys.modules)))")


@pytest.fixture(scope="module")
def imported(tmp_path_factory: pytest.TempPathFactory) -> set[str]:
    # One run for every case (module scope, so before the per-test hermetic fixture): its own home here.
    home = tmp_path_factory.mktemp("start-up")
    env = {**os.environ, "LLMSWITCH_CONFIG": str(home / "config.toml"), "LLMSWITCH_DATA_DIR": str(home / "data")}
    env.pop("LLMSWITCH_PROFILE", None)
    proc = subprocess.run([sys.executable, "-c", PROBE, "chat", "--profile", "echo", "hi"], capture_output=True,
                          text=True, timeout=120, env=env, cwd=home)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "hi\n"  # it did answer: the list below is that of a whole run
    return set(proc.stderr.rsplit("MODULES=", 1)[1].split())


@pytest.mark.parametrize("module", sorted(NOT_FOR_A_ONE_SHOT_CHAT))
def test_a_one_shot_chat_does_not_import(imported: set[str], module: str) -> None:
    loaded = sorted(name for name in imported if name == module or name.startswith(module + "."))
    assert not loaded, f"chat --profile echo imported {loaded[0]}: {NOT_FOR_A_ONE_SHOT_CHAT[module]}"


def test_the_guard_sees_what_a_chat_needs(imported: set[str]) -> None:
    """The probe really ran a chat: the modules answering it are there (else the test above proves nothing)."""
    assert {"llmswitch.cli.chat", "llmswitch.store.history", "llmswitch.ledger", "llmswitch_echo"} <= imported


GC_PROBE = (
    "import atexit, gc, sys\n"
    "import llmswitch.conversation as conversation\n"
    "seen = []\n"
    "original = conversation.Conversation.stream\n"
    "def stream(self, *args, **kwargs):\n"
    "    seen.append(gc.isenabled())\n"
    "    return original(self, *args, **kwargs)\n"
    "conversation.Conversation.stream = stream\n"
    "sys.argv = ['llmswitch'] + sys.argv[1:]\n"
    "atexit.register(lambda: sys.stderr.write(\n"
    "    f'\\nSEEN={seen} ENABLED={gc.isenabled()} FROZEN={gc.get_freeze_count() > 0}'))\n"
    "from llmswitch.__main__ import run\n"
    "run()\n"
)


@pytest.mark.parametrize(("args", "asked"), [(["chat", "--profile", "echo", "hi"], "[True]"), (["--help"], "[]")])
def test_the_console_script_collects_cycles_again_before_the_command_runs(
    hermetic: object, args: list[str], asked: str
) -> None:
    """The cycle collector is off only while start-up imports (llmswitch.cli.end_of_start_up): a command runs,
    and the process ends, with it on, past the frozen start-up objects."""
    proc = subprocess.run([sys.executable, "-c", GC_PROBE, *args], capture_output=True, text=True, timeout=120)
    assert proc.stderr.rsplit("\n", 1)[-1] == f"SEEN={asked} ENABLED=True FROZEN=True", proc.stderr
