"""Wrong diagnoses of our SQLite files: a read-only data dir is said to be read-only (never "move it away"),
and a corrupt ledger is said to be corrupt, with how to recover. Real files, the CLI as a real process (as an
unprivileged user when the tests run as root, since root writes anywhere)."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from llmswitch.errors import LLMSwitchError
from llmswitch.ledger import FILE_NAME, Ledger
from llmswitch.store import HistoryStore
from tests.helpers import llmswitch_subprocess


def test_a_corrupt_ledger_says_corrupt_and_how_to_recover(hermetic: Path) -> None:
    path = hermetic / "data" / FILE_NAME
    path.write_bytes(b"not sqlite, a damaged file " * 200)
    with pytest.raises(LLMSwitchError) as caught:
        Ledger().spend("p", 0.0)
    assert "is corrupt" in caught.value.message and str(path) in caught.value.message
    remedy = caught.value.remedy or ""
    assert ".recover" in remedy and "move" in remedy and "budgets" in remedy
    result = llmswitch_subprocess("usage")
    assert result.returncode != 0 and "is corrupt" in result.stderr and ".recover" in result.stderr
    assert "writable" not in result.stderr
    chat = llmswitch_subprocess("chat", "-p", "echo", "--no-history", "still answered")
    assert chat.returncode == 0 and chat.stdout == "still answered\n"
    assert "usage not recorded" in chat.stderr and "is corrupt" in chat.stderr


@pytest.fixture
def read_only_data_dir() -> Iterator[tuple[Path, dict[str, str]]]:
    """A data dir holding a good history and ledger, that the process running llmswitch cannot write."""
    root = Path(tempfile.mkdtemp(prefix="llmswitch-ro-"))
    os.chmod(root, 0o755)
    data = root / "data"
    data.mkdir()
    with HistoryStore.open(data / "history.db") as history:
        conversation = history.create_conversation("kept", profile="echo")
        history.add_message(conversation, "user", "kept")
    with Ledger(data / FILE_NAME):
        pass
    for path in data.iterdir():
        os.chmod(path, 0o644)
    os.chmod(data, 0o555)  # readable, not writable
    immutable = False
    if os.geteuid() == 0:  # root ignores permissions; an immutable directory stops even root
        immutable = subprocess.run(["chattr", "+i", str(data)], capture_output=True).returncode == 0
        if not immutable:
            shutil.rmtree(root, ignore_errors=True)
            pytest.skip("running as root without chattr: a read-only directory cannot be made")
    env = {"LLMSWITCH_DATA_DIR": str(data), "LLMSWITCH_CONFIG": str(root / "config.toml")}
    try:
        yield data, env
    finally:
        if immutable:
            subprocess.run(["chattr", "-i", str(data)], check=True)
        os.chmod(data, 0o755)
        shutil.rmtree(root, ignore_errors=True)


def test_a_read_only_data_dir_is_called_read_only_never_moved_away(
        read_only_data_dir: tuple[Path, dict[str, str]]) -> None:
    data, env = read_only_data_dir
    result = llmswitch_subprocess("chat", "-p", "echo", "still answered", env=env)
    assert result.returncode == 0, result.stderr
    assert result.stdout == "still answered\n"
    assert "read-only" in result.stderr and "chmod u+w" in result.stderr and "LLMSWITCH_DATA_DIR" in result.stderr
    assert "move" not in result.stderr.replace("do not move it away", "")
    assert stat.S_IMODE(data.stat().st_mode) == 0o555 and (data / "history.db").exists()
