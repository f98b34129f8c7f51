"""``llmswitch.config``, function by function: where each file lives (flag > variable > the platform's
folder), how a TOML mistake is reported (file, line, column, what is wrong), and that writing the config is
atomic and private. A mistake here points users at the wrong line, loses their file or shows it to others."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from llmswitch import config
from llmswitch.config import (
    cache_dir,
    config_path,
    data_dir,
    exports_dir,
    parse_toml,
    price_catalog_path,
    read_config,
    read_config_text,
    write_config_text,
)
from llmswitch.errors import ConfigError, ConfigSyntaxError


@pytest.fixture
def xdg(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """No LLMSWITCH_* overrides: the platform's folders, pointed at a temp home."""
    for name in ("LLMSWITCH_CONFIG", "LLMSWITCH_DATA_DIR", "LLMSWITCH_CACHE_DIR"):
        monkeypatch.delenv(name, raising=False)
    home = tmp_path / "xdg"
    for name, sub in (("XDG_CONFIG_HOME", "config"), ("XDG_DATA_HOME", "data"), ("XDG_CACHE_HOME", "cache"),
                      ("HOME", "home")):
        (home / sub).mkdir(parents=True)
        monkeypatch.setenv(name, str(home / sub))
    monkeypatch.delenv("XDG_DOCUMENTS_DIR", raising=False)
    return home


# ---- where the files are -------------------------------------------------------------------------------------


def test_the_config_path_is_the_flag_then_the_variable_then_the_platform_folder(
    xdg: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert config_path() == xdg / "config" / "llmswitch" / "config.toml"
    monkeypatch.setenv("LLMSWITCH_CONFIG", "~/from-env.toml")
    assert config_path() == xdg / "home" / "from-env.toml"  # ~ expanded
    assert config_path("~/flag.toml") == xdg / "home" / "flag.toml"
    assert config_path(Path("/etc/x.toml")) == Path("/etc/x.toml")
    monkeypatch.setenv("LLMSWITCH_CONFIG", "")
    assert config_path() == xdg / "config" / "llmswitch" / "config.toml"  # set but empty: not a path


def test_the_data_and_cache_dirs_are_the_variable_then_the_platform_folder(
    xdg: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert data_dir() == xdg / "data" / "llmswitch"
    assert cache_dir() == xdg / "cache" / "llmswitch"
    assert price_catalog_path() == xdg / "data" / "llmswitch" / "prices.json"
    assert price_catalog_path(Path("/srv/d")) == Path("/srv/d/prices.json")
    monkeypatch.setenv("LLMSWITCH_DATA_DIR", "~/d")
    monkeypatch.setenv("LLMSWITCH_CACHE_DIR", "~/c")
    assert data_dir() == xdg / "home" / "d"
    assert cache_dir() == xdg / "home" / "c"
    assert price_catalog_path() == xdg / "home" / "d" / "prices.json"
    monkeypatch.setenv("LLMSWITCH_DATA_DIR", "")
    monkeypatch.setenv("LLMSWITCH_CACHE_DIR", "")
    assert (data_dir(), cache_dir()) == (xdg / "data" / "llmswitch", xdg / "cache" / "llmswitch")


def test_exports_go_to_the_documents_folder_when_there_is_one(xdg: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import platformdirs

    documents = Path(platformdirs.user_documents_dir())
    if documents.is_dir():  # a desktop with a documents folder
        assert exports_dir() == documents
    monkeypatch.setattr(platformdirs, "user_documents_dir", lambda: str(xdg / "no-such-folder"))
    assert exports_dir() == xdg / "data" / "llmswitch" / "exports"  # a server: inside the data dir
    (xdg / "Documents").mkdir()
    monkeypatch.setattr(platformdirs, "user_documents_dir", lambda: str(xdg / "Documents"))
    assert exports_dir() == xdg / "Documents"


# ---- reading -------------------------------------------------------------------------------------------------


def test_a_valid_document_parses_to_its_tables() -> None:
    assert parse_toml('[profiles.a]\nbackend = "echo"\n', "f.toml") == {"profiles": {"a": {"backend": "echo"}}}
    assert parse_toml("", "f.toml") == {}


def test_a_syntax_error_names_file_line_column_and_only_what_is_wrong() -> None:
    with pytest.raises(ConfigSyntaxError) as caught:
        parse_toml("a = 1\na = 2\n", "/home/u/config.toml")
    error = caught.value
    assert (error.path, error.line, error.column) == ("/home/u/config.toml", 2, 6)
    assert error.message == "cannot read /home/u/config.toml, line 2, column 6: Cannot overwrite a value"
    assert "(at line" not in error.message and "ends too early" not in error.message


def test_an_error_at_the_end_of_the_document_points_after_the_last_character() -> None:
    with pytest.raises(ConfigSyntaxError) as caught:
        parse_toml("a = [\n  1,\n  2", "f.toml")
    assert (caught.value.line, caught.value.column) == (3, 4)
    assert caught.value.message.endswith(
        "Unclosed array (the file ends too early: an unclosed bracket or quote?)"), caught.value.message
    with pytest.raises(ConfigSyntaxError) as empty_last_line:
        parse_toml('a = "x\n', "f.toml")
    assert empty_last_line.value.line == 1


def test_a_parser_that_gives_the_location_as_attributes_is_understood(monkeypatch: pytest.MonkeyPatch) -> None:
    """tomli (Python 3.10) and newer tomllib versions carry ``lineno``/``colno``; the message may not."""

    class LocatedError(ValueError):
        lineno, colno = 7, 3

    def loads(text: str) -> dict[str, object]:
        raise LocatedError("Invalid statement")

    monkeypatch.setattr(config, "_toml_loads", loads)
    with pytest.raises(ConfigSyntaxError) as caught:
        parse_toml("whatever", "f.toml")
    assert (caught.value.line, caught.value.column) == (7, 3)
    assert caught.value.message == "cannot read f.toml, line 7, column 3: Invalid statement"

    def unlocated(text: str) -> dict[str, object]:
        raise ValueError("(at line 4, column 2)")

    monkeypatch.setattr(config, "_toml_loads", unlocated)
    with pytest.raises(ConfigSyntaxError) as bare:
        parse_toml("whatever", "f.toml")
    assert (bare.value.line, bare.value.column) == (4, 2)
    assert bare.value.message == "cannot read f.toml, line 4, column 2: invalid TOML"


def test_read_config_of_a_missing_file_is_an_empty_document(tmp_path: Path) -> None:
    assert read_config(tmp_path / "none.toml") == {}
    assert read_config_text(tmp_path / "none.toml") == ""


def test_read_config_parses_the_file_and_names_it_in_errors(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_text('x = "caf\u00e9"\n', encoding="utf-8")
    assert read_config(path) == {"x": "caf\u00e9"}
    assert read_config_text(path) == 'x = "caf\u00e9"\n'
    path.write_text("x = \n", encoding="utf-8")
    with pytest.raises(ConfigSyntaxError) as caught:
        read_config(path)
    assert caught.value.path == str(path) and caught.value.line == 1


def test_a_file_that_is_not_utf8_names_the_line_of_the_first_bad_byte(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_bytes(b'a = 1\nb = 2\nc = "caf\xe9"\n')
    with pytest.raises(ConfigSyntaxError) as caught:
        read_config(path)
    assert (caught.value.line, caught.value.column) == (3, None)
    assert caught.value.message == f"cannot read {path}, line 3, column None: the file is not UTF-8 text"


def test_a_directory_or_an_unreadable_path_is_a_config_error_with_a_remedy(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as directory:
        read_config(tmp_path)
    assert directory.value.message == f"{tmp_path} is a directory, not a config file"
    assert not isinstance(directory.value, ConfigSyntaxError)
    blocked = tmp_path / "a-file"
    blocked.write_text("")
    with pytest.raises(ConfigError) as unreadable:
        read_config(blocked / "config.toml")  # a file where a folder should be: no permission bits help
    assert unreadable.value.message == f"cannot read {blocked / 'config.toml'}: Not a directory"
    assert unreadable.value.remedy == "check the file's permissions"


# ---- writing -------------------------------------------------------------------------------------------------


def test_a_new_config_is_written_private_with_its_folders(tmp_path: Path) -> None:
    path = tmp_path / "new" / "folder" / "config.toml"
    write_config_text(path, "a = 1\n")
    assert path.read_text(encoding="utf-8") == "a = 1\n"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600  # it may come to hold a key
    assert os.listdir(path.parent) == ["config.toml"]  # no temporary file left behind


def test_rewriting_keeps_the_file_mode_and_replaces_the_whole_text(tmp_path: Path) -> None:
    path = tmp_path / "folder" / "config.toml"
    path.parent.mkdir()
    path.write_text("old = 1\n" * 100, encoding="utf-8")
    path.chmod(0o640)
    write_config_text(path, "new = \"\u00e9\"\n")
    assert path.read_bytes() == 'new = "\u00e9"\n'.encode()
    assert stat.S_IMODE(path.stat().st_mode) == 0o640
    assert os.listdir(path.parent) == ["config.toml"]


def test_a_failed_write_leaves_the_old_file_whole(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "config.toml"
    path.write_text("kept = 1\n", encoding="utf-8")

    def crash(source: object, destination: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(config.os, "replace", crash)
    with pytest.raises(OSError):
        write_config_text(path, "lost = 1\n")
    assert path.read_text(encoding="utf-8") == "kept = 1\n"


def test_an_error_without_a_location_names_the_file_only(monkeypatch: pytest.MonkeyPatch) -> None:
    def loads(text: str) -> dict[str, object]:
        raise ValueError("Invalid statement")

    monkeypatch.setattr(config, "_toml_loads", loads)
    with pytest.raises(ConfigSyntaxError) as caught:
        parse_toml("a = 1\nb = 2\n", "f.toml")
    assert (caught.value.line, caught.value.column) == (None, None)
    assert caught.value.message == "cannot read f.toml: Invalid statement"


def test_the_config_is_utf8_whatever_the_locale_says(tmp_path: Path) -> None:
    """Under an ASCII locale (no coercion to UTF-8, no UTF-8 mode) the file is still read and written as UTF-8."""
    import subprocess
    import sys

    path = tmp_path / "config.toml"
    write_config_text(path, "")  # here too, so a mutation run knows this test covers these functions
    assert read_config_text(path) == ""
    code = ("import sys\nfrom pathlib import Path\nfrom llmswitch.config import read_config, read_config_text, "
            "write_config_text\npath = Path(sys.argv[1])\nwrite_config_text(path, 'name = \"caf\\u00e9 \\u2603\"\\n')\n"
            "assert read_config_text(path) == 'name = \"caf\\u00e9 \\u2603\"\\n'\n"
            "assert read_config(path) == {'name': 'caf\\u00e9 \\u2603'}\nprint(sys.getfilesystemencoding(), "
            "__import__('locale').getpreferredencoding(False))\n")
    here = str(Path(config.__file__).resolve().parents[1])  # this llmswitch (a mutation run's copy, too)
    env = {**os.environ, "LC_ALL": "C", "LANG": "C", "PYTHONCOERCECLOCALE": "0", "PYTHONUTF8": "0",
           "PYTHONPATH": os.pathsep.join([here, os.environ.get("PYTHONPATH", "")])}
    done = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, text=True, env=env,
                          cwd=here)  # a mutation run's copy finds its settings there
    assert done.returncode == 0, done.stderr
    assert "utf" not in done.stdout.split()[1].lower(), done.stdout  # the locale really was not UTF-8
    assert path.read_bytes() == 'name = "caf\u00e9 \u2603"\n'.encode()
