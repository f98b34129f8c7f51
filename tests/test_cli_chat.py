"""The CLI end to end through the installed echo plugin: in-process (CliRunner) and as a real subprocess."""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.helpers import interruptible_popen, llmswitch_subprocess, run_cli, write_config


def test_one_shot_streams_answer_to_stdout_only() -> None:
    result = run_cli("chat", "--profile", "echo", "hello", "there")
    assert result.exit_code == 0, result
    assert result.stdout == "hello there\n"
    assert result.stderr == ""


def test_piped_stdin_is_the_prompt() -> None:
    result = run_cli("chat", "-p", "echo", input="from a pipe\n")
    assert result.exit_code == 0, result
    assert result.stdout == "from a pipe\n"


def test_prompt_and_piped_stdin_are_joined() -> None:
    result = run_cli("chat", "-p", "echo", "Summarise:", input="the text")
    assert result.stdout == "Summarise:\n\nthe text\n"


def test_json_carries_text_usage_model_latency() -> None:
    result = run_cli("chat", "-p", "echo", "--json", "one two three")
    assert result.exit_code == 0, result
    payload = json.loads(result.stdout)
    assert payload["text"] == "one two three"
    assert payload["usage"] == {"input_tokens": 3, "output_tokens": 3}
    assert payload["model"] == "echo"
    assert payload["profile"] == "echo"
    assert payload["latency_s"] >= 0


def test_no_stream_prints_whole_answer() -> None:
    result = run_cli("chat", "-p", "echo", "--no-stream", "all at once")
    assert result.stdout == "all at once\n"


def test_usage_goes_to_stderr() -> None:
    result = run_cli("chat", "-p", "echo", "--usage", "a b")
    assert result.stdout == "a b\n"
    assert "tokens in 2" in result.stderr and "out 2" in result.stderr


def test_options_are_typed_and_checked_against_the_backend() -> None:
    ok = run_cli("chat", "-p", "echo", "-o", "prefix", "> ", "-o", "max_tokens", "2", "x y z")
    assert ok.stdout == "> x y\n"
    unknown = run_cli("chat", "-p", "echo", "-o", "temprature", "1", "hi")
    assert unknown.exit_code == 2
    assert "did you mean 'temperature'" in unknown.stderr
    assert "Traceback" not in unknown.output
    wrong_type = run_cli("chat", "-p", "echo", "-o", "chunk_size", "big", "hi")
    assert wrong_type.exit_code == 2
    assert "must be an integer" in wrong_type.stderr


@pytest.mark.parametrize("value", [0, -5])
def test_max_tokens_below_one_is_refused_before_anything_is_sent(
        config_file: Path, servers: list, value: int) -> None:  # type: ignore[type-arg]
    import tomli_w

    upstream = servers[0]
    config_file.write_text(tomli_w.dumps({"profiles": {"up": {
        "backend": "openai", "model": "test-model", "base_url": f"{upstream.url}/v1", "api_key": "sk-test",
        "max_tokens": value}}}))
    in_profile = run_cli("chat", "-p", "up", "hi")
    assert in_profile.exit_code == 2, in_profile
    assert f"profile 'up' ({config_file}): 'max_tokens' must be at least 1, not {value}" in in_profile.stderr
    assert "remove it for its default" in in_profile.stderr
    on_the_line = run_cli("chat", "-p", "echo", "-o", "max_tokens", str(value), "hi")
    assert on_the_line.exit_code == 2, on_the_line
    assert f"'max_tokens' must be at least 1, not {value}" in on_the_line.stderr
    assert "without any text" not in on_the_line.stderr  # the model is not blamed for the user's setting
    assert upstream.state.requests == []


def test_system_prompt_and_model_override_reach_the_backend(config_file: Path) -> None:
    from llmswitch.plugins import register_plugin, unregister_plugin
    from tests.fake_plugins import RecordingPlugin

    recorder = RecordingPlugin()
    register_plugin(recorder, "recording")
    try:
        write_config(config_file, '[profiles.rec]\nbackend = "recording"\nsystem = "from the profile"\n')
        result = run_cli("chat", "-p", "rec", "-m", "other-model", "-s", "be brief", "--json", "hi")
        default = run_cli("chat", "-p", "rec", "hi")
    finally:
        unregister_plugin("recording")
    assert result.exit_code == 0 and default.exit_code == 0, (result, default)
    assert json.loads(result.stdout)["model"] == "other-model"
    [(target, request), (_, default_request)] = recorder.calls
    assert (target.model, request.system) == ("other-model", "be brief")
    assert [m.content for m in request.messages] == ["hi"]
    assert default_request.system == "from the profile"


def test_unknown_profile_suggests_close_names() -> None:
    result = run_cli("chat", "--profile", "ech", "hi")
    assert result.exit_code == 2
    assert "no profile named 'ech'" in result.stderr
    assert "did you mean 'echo'" in result.stderr
    assert result.stdout == ""


def test_default_profile_from_file(config_file: Path) -> None:
    write_config(config_file, 'default_profile = "mine"\n[profiles.mine]\nbackend = "echo"\nprefix = "mine: "\n')
    result = run_cli("chat", "hi")
    assert result.stdout == "mine: hi\n"


def test_missing_key_names_the_variable(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from llmswitch.plugins import register_plugin, unregister_plugin
    from tests.fake_plugins import KeyedPlugin

    register_plugin(KeyedPlugin(), "keyed")
    try:
        result = run_cli("--config", "/nonexistent/x.toml", "chat", "-p", "echo", "hi")
        assert result.exit_code == 0
        write = Path(os.environ["LLMSWITCH_CONFIG"])
        write_config(write, '[profiles.k]\nbackend = "keyed"\n')
        result = run_cli("chat", "-p", "k", "hi")
        assert result.exit_code == 2
        assert "KEYED_API_KEY is not set" in result.stderr
        assert "export KEYED_API_KEY=" in result.stderr
    finally:
        unregister_plugin("keyed")


def test_backend_failure_mid_stream_keeps_text_and_exits_1(config_file: Path) -> None:
    from llmswitch.plugins import register_plugin, unregister_plugin
    from tests.fake_plugins import FailingPlugin

    register_plugin(FailingPlugin(), "failing")
    try:
        write_config(config_file, '[profiles.f]\nbackend = "failing"\n')
        result = run_cli("chat", "-p", "f", "hi")
        assert result.exit_code == 1
        assert result.stdout == "partial answer\n"
        assert "connection dropped" in result.stderr
        assert "hint: start the server" in result.stderr
        as_json = run_cli("chat", "-p", "f", "--json", "hi")
        payload = json.loads(as_json.stdout)
        assert payload["text"] == "partial answer"
        assert payload["error"]["kind"] == "unreachable"
    finally:
        unregister_plugin("failing")


def test_plugin_bug_is_reported_not_a_traceback(config_file: Path) -> None:
    from llmswitch.plugins import register_plugin, unregister_plugin
    from tests.fake_plugins import BuggyPlugin

    register_plugin(BuggyPlugin(), "buggy")
    try:
        write_config(config_file, '[profiles.b]\nbackend = "buggy"\n')
        result = run_cli("chat", "-p", "b", "hi")
        assert result.exit_code == 1
        assert "plugin buggy raised an unexpected error in stream: ZeroDivisionError" in result.stderr
        assert "Traceback" not in result.output
    finally:
        unregister_plugin("buggy")


# ---- real subprocesses ----------------------------------------------------------------------------------


def test_subprocess_one_shot() -> None:
    proc = llmswitch_subprocess("chat", "--profile", "echo", "hello from a process")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "hello from a process\n"
    assert proc.stderr == ""


def test_subprocess_broken_config_names_line_and_column(config_file: Path) -> None:
    write_config(config_file, '[profiles.a]\nbackend = "echo"\nmodel = \n')
    proc = llmswitch_subprocess("chat", "-p", "a", "hi")
    assert proc.returncode == 2
    assert f"{config_file}, line 3, column" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_subprocess_version_and_help() -> None:
    proc = llmswitch_subprocess("--version")
    assert proc.returncode == 0 and "llmswitch, version" in proc.stdout
    proc = llmswitch_subprocess("--help")
    assert proc.returncode == 0 and "chat" in proc.stdout and "profiles" in proc.stdout


def test_subprocess_unknown_command_suggests() -> None:
    proc = llmswitch_subprocess("chta")
    assert proc.returncode == 2
    assert "Did you mean 'chat'" in proc.stderr


def test_subprocess_ctrl_c_keeps_partial_answer_and_exits_130(config_file: Path) -> None:
    write_config(config_file, '[profiles.slow]\nbackend = "echo"\nchunk_size = 1\ndelay = 0.05\n')
    proc = interruptible_popen(
        [sys.executable, "-m", "llmswitch", "chat", "-p", "slow", "abcdefghijklmnopqrstuvwxyz" * 4],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=dict(os.environ),
    )
    assert proc.stdout is not None
    first = proc.stdout.read(3)  # wait until the answer is flowing
    time.sleep(0.2)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 130, err
    text = first + out
    assert text.startswith("abc")
    assert 3 < len(text.strip()) < 104
    assert "interrupted" in err
    assert "Traceback" not in err


def test_subprocess_ctrl_c_before_any_text_says_so(config_file: Path) -> None:
    from tests.servers.openai_server import openai_server

    with openai_server() as server:
        server.state.scenario = "slow_first_byte"
        server.state.options["delay"] = 10.0
        write_config(config_file, f'[profiles.slow]\nbackend = "openai"\nmodel = "m"\napi_key = "sk-test"\n'
                                  f'base_url = "{server.url}/v1"\n')
        proc = interruptible_popen([sys.executable, "-m", "llmswitch", "chat", "-p", "slow", "hi"],
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=dict(os.environ))
        deadline = time.monotonic() + 60
        while not server.state.requests:  # the question is with the server; no text has come back
            assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
            time.sleep(0.02)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
    assert proc.returncode == 130, err
    assert out == ""
    assert "interrupted before any answer" in err
    assert "the answer so far is above" not in err  # nothing is above
    assert "Traceback" not in err


def test_subprocess_repl_switches_profile_and_keeps_history(config_file: Path) -> None:
    """Drive the REPL through a pseudo-terminal, as a person would."""
    import pty

    write_config(config_file, '[profiles.other]\nbackend = "echo"\nprefix = "other: "\n')
    pid, fd = pty.fork()
    if pid == 0:  # child
        os.execv(sys.executable, [sys.executable, "-m", "llmswitch", "chat", "-p", "echo"])
    output = b""

    def read_until(marker: bytes, timeout: float = 20) -> None:
        nonlocal output
        deadline = time.time() + timeout
        while marker not in output and time.time() < deadline:
            try:
                chunk = os.read(fd, 4096)
            except OSError:
                break
            output += chunk

    read_until(b"> ")
    os.write(fd, b"first question\n")
    read_until(b"first question\r\nfirst question")
    os.write(fd, b"/profile other\n")
    read_until(b"2 messages kept")
    os.write(fd, b"second\n")
    read_until(b"other: second")
    os.write(fd, b"/profile nope\n")
    read_until(b"no profile named 'nope'")
    os.write(fd, b"/exit\n")
    _, status = os.waitpid(pid, 0)
    os.close(fd)
    text = output.decode(errors="replace")
    assert "other: second" in text
    assert "2 messages kept" in text
    assert "no profile named 'nope'" in text
    assert os.waitstatus_to_exitcode(status) == 0


def test_subprocess_reader_leaving_early_is_not_an_error() -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "llmswitch", "chat", "-p", "echo"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=dict(os.environ),
    )
    assert proc.stdin is not None and proc.stdout is not None and proc.stderr is not None
    proc.stdin.write(b"word " * 200_000)
    proc.stdin.close()
    assert proc.stdout.read(10) == b"word word "
    proc.stdout.close()  # like `| head -c 10`
    assert proc.wait(timeout=60) == 0
    assert proc.stderr.read() == b""



class RecordingStream(io.StringIO):
    """A pipe's stand-in that counts the writes (each one a system call on an unbuffered stdout)."""

    def __init__(self) -> None:
        super().__init__()
        self.writes = 0

    def write(self, text: str) -> int:
        self.writes += 1
        return super().write(text)


class HeldTimer:
    """threading.Timer's stand-in: started, but it fires only when the test says so."""

    started: list[HeldTimer] = []

    def __init__(self, interval: float, function: Callable[[], None]) -> None:
        self.interval, self.function, self.cancelled, self.daemon = interval, function, False, False

    def start(self) -> None:
        HeldTimer.started.append(self)

    def cancel(self) -> None:
        self.cancelled = True


@pytest.fixture
def piped_text(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """PipedText on a clock and a timer the test drives; returns the clock (a one-item list)."""
    from llmswitch.cli import chat

    clock = [100.0]
    monkeypatch.setattr(chat.time, "perf_counter", lambda: clock[0])
    monkeypatch.setattr(chat.threading, "Timer", HeldTimer)
    HeldTimer.started = []
    return clock


def test_an_answer_into_a_pipe_is_written_in_batches_the_first_piece_at_once(piped_text: list[float]) -> None:
    from llmswitch.cli.chat import PIPE_FLUSH_S, PipedText

    out = RecordingStream()
    piped = PipedText(out)
    piped.add("first ")
    assert (out.getvalue(), out.writes) == ("first ", 1)  # the reader sees the answer start at once
    for number in range(1000):  # a fast stream: 1,000 tokens within one interval wait together
        piped.add(f"{number} ")
    assert out.writes == 1
    (timer,) = HeldTimer.started  # one timer for the whole wait, due when the interval ends
    assert timer.interval == pytest.approx(PIPE_FLUSH_S)
    timer.function()  # the model paused: what waits goes out without another token
    assert out.writes == 2
    piped_text[0] += PIPE_FLUSH_S + 0.001
    piped.add("later ")  # the interval is over: written at once
    assert out.writes == 3
    piped.add("last")
    piped.write()  # the end of the answer: the rest, and the timer stopped
    assert out.writes == 4 and HeldTimer.started[-1].cancelled
    assert out.getvalue() == "first " + "".join(f"{number} " for number in range(1000)) + "later last"


def test_a_reader_that_left_while_the_timer_wrote_stops_the_next_token(piped_text: list[float]) -> None:
    from llmswitch.cli.chat import PipedText

    class LeavingReader(io.StringIO):
        def write(self, text: str) -> int:
            if self.getvalue():
                raise BrokenPipeError("the reader left")
            return super().write(text)

    piped = PipedText(LeavingReader())
    piped.add("first ")
    piped.add("second ")
    HeldTimer.started[0].function()  # the timer's write fails: kept for the caller, not lost in the thread
    with pytest.raises(BrokenPipeError):
        piped.add("third")
    piped.write_if_possible()  # stopping after it is no error


def test_text_pending_when_an_answer_is_stopped_is_written_or_dropped_quietly(piped_text: list[float]) -> None:
    from llmswitch.cli.chat import PipedText

    class GoneReader(io.StringIO):
        def write(self, text: str) -> int:
            raise BrokenPipeError("the reader left")

    piped = PipedText(GoneReader())
    piped.pending.append("kept in the history, not shown")
    piped.write_if_possible()  # no error: the answer was stopped anyway
    assert piped.pending == []
    out = io.StringIO()
    piped = PipedText(out)
    piped.pending.append("so far")
    piped.write_if_possible()
    assert out.getvalue() == "so far"


@pytest.mark.parametrize("setting", ["temperature", "top_p", "top_k", "seed"])
def test_echo_refuses_sampling_settings_it_cannot_honour(config_file: Path, setting: str) -> None:
    refused = run_cli("chat", "-p", "echo", "-o", setting, "1", "hi")
    assert refused.exit_code == 2 and refused.stdout == ""
    assert f"the echo backend does not support {setting}" in refused.stderr
    assert "max_tokens and stop only" in refused.stderr
