"""Build every distribution, check it, install the BUILT wheels into a fresh virtualenv and smoke-test them.

    python scripts/check_dists.py [--keep DIR]

What a user gets from `pip install`, not the checkout: package data a wheel leaves out (price tables, TUI
styles, plugin templates, the extras table) fails here, as does a README or metadata PyPI would reject
(`twine check --strict`). Needs `build`, `twine` and `setuptools>=77` where it runs (nox -s dist installs
them); the fresh virtualenv takes llmswitch's own dependencies from the package index (or pip's cache).
llama-cpp-python and torch are not installed there (the llamacpp and transformers wheels go in with
--no-deps): their plugins must still load and be listed, which is what discovery promises.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DISTRIBUTIONS = [ROOT, *sorted((ROOT / "plugins").iterdir())]
HEAVY = ("llmswitch_llamacpp", "llmswitch_transformers")  # their runtimes are too large for a smoke test
PLUGINS = {"echo", "openai", "anthropic", "ollama", "llamacpp", "transformers"}


def run(*command: str | Path, env: dict[str, str] | None = None, cwd: Path | None = None) -> str:
    printable = " ".join(str(part) for part in command)
    print(f"check_dists: {printable}", file=sys.stderr, flush=True)
    result = subprocess.run([str(part) for part in command], capture_output=True, text=True, env=env, cwd=cwd)
    if result.returncode != 0:
        sys.exit(f"check_dists: FAILED ({result.returncode}): {printable}\n{result.stdout[-4000:]}\n{result.stderr[-4000:]}")
    return result.stdout


def build(out: Path) -> list[Path]:
    for source in DISTRIBUTIONS:
        # The sdist first, then the wheel built from it (build's default): a file the sdist leaves out is
        # missing from the wheel too, and nothing stale in the checkout's build/ can slip in.
        run(sys.executable, "-m", "build", "--no-isolation", "--outdir", out, source)
    built = sorted(out.iterdir())
    assert len(built) == 2 * len(DISTRIBUTIONS), f"expected an sdist and a wheel each, got {[p.name for p in built]}"
    run(sys.executable, "-m", "twine", "check", "--strict", *built)
    return built


def install(built: list[Path], venv: Path) -> Path:
    run(sys.executable, "-m", "venv", venv)
    python = venv / "bin" / "python"
    wheels = [path for path in built if path.suffix == ".whl"]
    light = [path for path in wheels if not path.name.startswith(HEAVY)]
    heavy = [path for path in wheels if path.name.startswith(HEAVY)]
    pip = (python, "-m", "pip", "--disable-pip-version-check", "install", "--quiet")
    run(*pip, *light)
    run(*pip, "--no-deps", *heavy)
    return python


def smoke(python: Path, home: Path) -> None:
    env = {**os.environ, "LLMSWITCH_CONFIG": str(home / "config.toml"), "LLMSWITCH_DATA_DIR": str(home / "data"),
           "LLMSWITCH_CACHE_DIR": str(home / "cache"), "PYTHONPATH": ""}
    for name in ("LLMSWITCH_PLUGINS", "LLMSWITCH_PROFILE", "OPENAI_API_KEY", "ANTHROPIC_API_KEY"):
        env.pop(name, None)
    cli = (python, "-m", "llmswitch")
    where = run(python, "-c", "import llmswitch; print(llmswitch.__file__)", env=env, cwd=home).strip()
    assert str(python.parents[1]) in where, f"llmswitch was imported from {where}, not the installed wheel"

    listed = json.loads(run(*cli, "plugins", "--json", env=env, cwd=home))
    loaded = {record["name"] for record in listed if record["loaded"]}
    assert loaded == PLUGINS, f"plugins loaded from the wheels: {sorted(loaded)}; all of {sorted(PLUGINS)} expected"
    answer = run(*cli, "chat", "-p", "echo", "hello from a wheel", env=env, cwd=home)
    assert "hello from a wheel" in answer, answer
    run(*cli, "doctor", "--offline", "echo", env=env, cwd=home)
    report = subprocess.run([*map(str, cli), "doctor", "--offline", "--json"], capture_output=True, text=True,
                            env=env, cwd=home)
    assert "Traceback" not in report.stderr and json.loads(report.stdout)["profiles"], report.stderr
    prices = run(*cli, "prices", env=env, cwd=home)  # every plugin's price table, read from its wheel
    assert "gpt" in prices and "claude" in prices, prices
    run(*cli, "plugins", "new", "smoke", "--http", "--dir", home, env=env, cwd=home)  # the templates
    assert (home / "llmswitch-smoke" / "llmswitch_smoke" / "__init__.py").is_file()
    run(python, "-c", "from llmswitch.tui.app import LLMSwitchApp as App; "
        "missing = [p for p in App.CSS_PATH if not p.is_file()]; assert not missing, missing", env=env, cwd=home)
    core_only = subprocess.run([*map(str, cli), "chat", "-p", "local", "hi"], capture_output=True, text=True,
                               env={**env, "LLMSWITCH_PLUGINS": ""}, cwd=home)
    assert core_only.returncode == 2 and "llmswitch[local]" in core_only.stderr, core_only.stderr
    print("check_dists: the built wheels install, load every plugin, answer and run doctor --offline",
          file=sys.stderr)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keep", type=Path, help="build and install under this folder and keep it")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="llmswitch-dists-") as scratch:
        work = args.keep or Path(scratch)
        (work / "dist").mkdir(parents=True, exist_ok=True)
        (work / "home").mkdir(exist_ok=True)
        built = build(work / "dist")
        python = install(built, work / "venv")
        smoke(python, work / "home")


if __name__ == "__main__":
    main()
