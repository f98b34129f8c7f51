"""A model's answer cannot drive the terminal: escape sequences from a real server (OSC 52 clipboard, OSC 0
window title, CSI 2J clear screen, a C1 CSI) are shown as inert text when the CLI writes to a terminal, and
kept raw in ``--json``, in the history and in a pipe. The CLI runs as a real process on a pseudo-terminal."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import tomli_w
from hypothesis import given
from hypothesis import strategies as st

from llmswitch.store import HistoryStore
from llmswitch.terminal import for_display, json_for_display, neutralize
from tests.helpers import llmswitch_on_terminal, llmswitch_subprocess
from tests.servers.http import LocalServer
from tests.servers.openai_server import openai_server

CLIPBOARD = "\x1b]52;c;cHduZWQ=\x07"  # OSC 52: write "pwned" to the clipboard
TITLE = "\x1b]0;pwned\x1b\\"  # OSC 0: set the window title (ST-terminated)
CLEAR = "\x1b[2J"  # CSI 2J: clear the screen
C1_CLEAR = "\x9b2J"  # the same with the 8-bit CSI
HOSTILE = f"Hello {CLIPBOARD}there{TITLE} {CLEAR}world{C1_CLEAR}\nline\ttwo\r\n"
RAW_SEQUENCES = [seq.encode() for seq in ("\x1b]52", "\x1b]0;", CLEAR, C1_CLEAR)]


def assert_inert(output: bytes) -> None:
    for sequence in RAW_SEQUENCES:
        assert sequence not in output, (sequence, output)
    assert "␛]52;c;cHduZWQ=␇".encode() in output  # shown, not obeyed, and not silently dropped


# ---- the function --------------------------------------------------------------------------------------


def test_neutralize_makes_escape_sequences_visible_and_keeps_plain_text() -> None:
    assert neutralize(HOSTILE) == "Hello ␛]52;c;cHduZWQ=␇there␛]0;pwned␛\\ ␛[2Jworld<U+009B>2J\nline\ttwo\n"
    plain = "naïve café — 日本語 ✓ tab\tand\nnewline"
    assert neutralize(plain) is plain
    assert neutralize("a\x00b\x08c\x7fd") == "a␀b␈c␡d"


@given(st.text(), st.text())
def test_neutralize_is_the_same_however_a_stream_is_split(first: str, second: str) -> None:
    assert neutralize(first + second) == neutralize(first) + neutralize(second)
    shown = neutralize(first)
    assert not any(ord(c) < 0x20 and c not in "\t\n" or 0x7F <= ord(c) <= 0x9F for c in shown)


def test_raw_when_not_a_terminal_and_json_escapes_what_it_leaves_raw(tmp_path: Path) -> None:
    with (tmp_path / "out.txt").open("w") as file:
        assert for_display(HOSTILE, file) is HOSTILE
        assert json_for_display('"\x9b"', file) == '"\x9b"'

    class Terminal:
        def isatty(self) -> bool:
            return True

    document = json.dumps({"text": HOSTILE + "\x7f"}, ensure_ascii=False)
    shown = json_for_display(document, Terminal())  # type: ignore[arg-type]
    assert json.loads(shown) == {"text": HOSTILE + "\x7f"}
    assert not any(0x7F <= ord(c) <= 0x9F or ord(c) < 0x20 for c in shown)


# ---- the CLI on a terminal, against a real server -----------------------------------------------------


@pytest.fixture
def server() -> Iterator[LocalServer]:
    with openai_server() as running:
        running.state.options["answer"] = HOSTILE
        yield running


@pytest.fixture
def profile(server: LocalServer, config_file: Path) -> str:
    config_file.write_text(tomli_w.dumps({"profiles": {"hostile": {
        "backend": "openai", "base_url": f"{server.url}/v1", "model": "test-model", "timeout": 10.0}}}))
    return "hostile"


@pytest.mark.parametrize("flags", [(), ("--no-stream",)], ids=["stream", "no-stream"])
def test_one_shot_on_a_terminal_shows_sequences_inert(profile: str, flags: tuple[str, ...]) -> None:
    code, output = llmswitch_on_terminal("chat", "-p", profile, *flags, "hi")
    assert code == 0, output
    assert_inert(output)
    assert "Hello ␛]52".encode() in output and b"world<U+009B>2J" in output


def test_repl_on_a_terminal_shows_sequences_inert(profile: str) -> None:
    code, output = llmswitch_on_terminal("chat", "-p", profile, lines=(b"hi\n", b"\x04"), env={"TERM": "dumb"})
    assert code == 0, output
    assert_inert(output)


def test_error_body_on_a_terminal_is_inert(profile: str, server: LocalServer) -> None:
    server.state.scenario = "server_error"
    server.state.options["error_message"] = f"overloaded {CLIPBOARD}{TITLE}{CLEAR}"
    code, output = llmswitch_on_terminal("chat", "-p", profile, "hi")
    assert code == 1, output
    assert_inert(output)
    assert b"error: " in output and b"overloaded" in output


def test_json_and_pipes_and_history_keep_the_raw_text(profile: str) -> None:
    piped = subprocess.run([sys.executable, "-m", "llmswitch", "chat", "-p", profile, "hi"], capture_output=True,
                           timeout=60)
    assert piped.returncode == 0, piped.stderr
    assert piped.stdout == HOSTILE.encode()  # byte for byte (it ends with a newline, so none is added)
    as_json = llmswitch_subprocess("chat", "-p", profile, "--json", "hi")
    assert json.loads(as_json.stdout)["text"] == HOSTILE
    code, output = llmswitch_on_terminal("chat", "-p", profile, "--json", "hi")
    assert code == 0, output
    assert b"\x1b" not in output and b"\xc2\x9b" not in output  # JSON escapes every control character...
    assert json.loads(output.decode().replace("\r\n", "\n"))["text"] == HOSTILE  # ...and keeps the raw value
    with HistoryStore.open() as history:
        answers = [m.content for c in history.list_conversations() for m in history.messages(c.id)
                   if m.role == "assistant"]
    assert answers == [HOSTILE] * 3


def test_profiles_list_and_show_on_a_terminal_are_inert(config_file: Path) -> None:
    config_file.write_text(tomli_w.dumps({"profiles": {"odd": {
        "backend": "echo", "model": f"m{CLIPBOARD}", "description": f"d{TITLE}{CLEAR}"}}}))
    code, output = llmswitch_on_terminal("profiles", "list")
    assert code == 0, output
    assert_inert_config(output)
    assert "m␛]52;c;cHduZWQ=␇".encode() in output
    code, output = llmswitch_on_terminal("profiles", "show", "odd")
    assert code == 0, output
    assert_inert_config(output)
    piped = llmswitch_subprocess("profiles", "list")
    assert f"m{CLIPBOARD}" in piped.stdout  # raw when piped


def test_a_profile_name_with_a_control_character_is_refused_inert(config_file: Path) -> None:
    config_file.write_text(tomli_w.dumps({"profiles": {f"odd{C1_CLEAR}": {"backend": "echo"}}}))
    code, output = llmswitch_on_terminal("profiles", "list")
    assert code == 2 and b"contains a control character" in output, output
    assert_inert_config(output)


def assert_inert_config(output: bytes) -> None:
    for sequence in RAW_SEQUENCES:
        assert sequence not in output, (sequence, output)


def test_doctor_on_a_terminal_shows_a_server_error_body_inert(profile: str, server: LocalServer) -> None:
    server.state.scenario = "server_error"
    server.state.options["error_message"] = f"overloaded {CLIPBOARD}{TITLE}{CLEAR}"
    _, output = llmswitch_on_terminal("doctor", profile, "--timeout", "5")
    assert b"overloaded" in output
    assert_inert(output)
