"""``llmswitch doctor`` on the command line: table, JSON, exit codes, in-process and as a real process."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import llmswitch_subprocess, run_cli, write_config


def test_table_for_a_healthy_profile_exits_0() -> None:
    result = run_cli("doctor", "echo")
    assert result.exit_code == 0, result
    row = next(line for line in result.stdout.splitlines() if line.strip().startswith("echo"))
    assert "✓ ok" in row and "llmswitch-echo 0.1.0" in row and "not needed" in row and "$0" in row
    assert "1 profile checked" in result.stdout and "none down" in result.stdout


def test_a_down_profile_prints_its_remedy_and_exits_1(config_file: Path) -> None:
    write_config(config_file, '[profiles.far]\nbackend = "nosuch"\nmodel = "x"\n')
    result = run_cli("doctor", "far", "echo")
    assert result.exit_code == 1, result
    assert "✗ far · plugin: no installed plugin provides the backend 'nosuch'" in result.stdout
    assert "→ installed backends:" in result.stdout and "pip install llmswitch-nosuch" in result.stdout
    assert "1 down" in result.stdout


def test_unknown_profile_is_a_usage_error() -> None:
    result = run_cli("doctor", "ehco")
    assert result.exit_code == 2
    assert "no profile named 'ehco'" in result.stderr and "did you mean 'echo'?" in result.stderr


def test_json_is_one_document_on_stdout(config_file: Path) -> None:
    write_config(config_file, '[profiles.far]\nbackend = "nosuch"\n')
    result = run_cli("doctor", "--json", "--timeout", "2", "--offline", "echo", "far")
    assert result.exit_code == 1
    document = json.loads(result.stdout)
    assert document["ok"] is False and document["offline"] is True and document["timeout_s"] == 2.0
    assert [(p["profile"], p["status"]) for p in document["profiles"]] == [("echo", "ok"), ("far", "down")]


def test_timeout_must_be_positive() -> None:
    assert run_cli("doctor", "--timeout", "0", "echo").exit_code == 2


def test_secret_never_printed(config_file: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("llmswitch_openai")
    in_file, in_env = "sk-live-doctor-file-0000-9876", "sk-live-doctor-env-0000-5432"
    monkeypatch.setenv("OPENAI_API_KEY", in_env)
    write_config(config_file, f'[profiles.literal]\nbackend = "openai"\napi_key = "{in_file}"\n'
                              '[profiles.from_env]\nbackend = "openai"\n')
    table = run_cli("doctor", "--offline", "literal", "from_env")
    assert "sk-…9876 (profile)" in table.stdout and "sk-…5432 (env:OPENAI_API_KEY)" in table.stdout
    document = run_cli("doctor", "--offline", "--json", "literal", "from_env")
    keys = {p["profile"]: p["key"]["masked"] for p in json.loads(document.stdout)["profiles"]}
    assert keys == {"literal": "sk-…9876", "from_env": "sk-…5432"}
    for result in (table, document):
        assert in_file not in result.output and in_env not in result.output


def test_real_process_json(config_file: Path) -> None:
    write_config(config_file, '[profiles.cheap]\nbackend = "echo"\nbudget_usd_per_day = 2.5\n')
    result = llmswitch_subprocess("doctor", "--json", "echo", "cheap")
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    cheap = {p["profile"]: p for p in document["profiles"]}["cheap"]
    assert cheap["budgets"] == [{"period": "day", "budget_usd": 2.5, "spent_usd": 0.0}]
    assert cheap["standard_request_usd"] == 0.0


def test_help_does_not_import_rich_or_the_doctor() -> None:
    code = ("import sys\nfrom llmswitch.cli import cli\n"
            "try:\n    cli.main(['--help'], prog_name='llmswitch')\nexcept SystemExit:\n    pass\n"
            "print(sorted(m for m in sys.modules if m.split('.')[0] == 'rich' or m.startswith('llmswitch.doctor')"
            " or m == 'sqlite3'), file=sys.stderr)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert "doctor" in result.stdout  # listed in the help...
    assert result.stderr.strip() == "[]"  # ...without importing it, rich, or sqlite3


def test_an_installed_broken_plugin_in_a_real_process(config_file: Path, tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """A distribution whose SDK is missing: doctor names it and the pip command; echo still checks ok."""
    site = tmp_path / "site"
    site.mkdir()
    (site / "llmswitch_acme.py").write_text("import acme_cloud_sdk\n")
    info = site / "llmswitch_acme-0.3.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: llmswitch-acme\nVersion: 0.3.0\n")
    (info / "entry_points.txt").write_text("[llmswitch]\nacme = llmswitch_acme\n")
    monkeypatch.setenv("PYTHONPATH", str(site))
    write_config(config_file, '[profiles.acme]\nbackend = "acme"\nmodel = "a1"\n')
    result = llmswitch_subprocess("doctor", "acme", "echo")
    assert result.returncode == 1, result.stderr
    assert ("✗ acme · plugin: plugin acme (llmswitch-acme 0.3.0) failed to load: failed to import llmswitch_acme: "
            "ModuleNotFoundError: No module named 'acme_cloud_sdk'") in result.stdout
    assert "→ pip install acme-cloud-sdk" in result.stdout
    echo_row = next(line for line in result.stdout.splitlines() if line.strip().startswith("echo"))
    assert "✓ ok" in echo_row
    document = json.loads(llmswitch_subprocess("doctor", "--json", "echo").stdout)
    assert document["ok"] is True  # the broken plugin is listed, but echo alone is not down
    assert document["broken_plugins"][0]["name"] == "acme"
    assert document["broken_plugins"][0]["remedy"] == "pip install acme-cloud-sdk"
