"""The llamacpp plugin's pure-Python parts, fast and without the model: discovery, the GGUF header reader,
prompt formats, the answer shaper, and how a probe child's death is explained (with real child processes)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from llmswitch_llamacpp import preflight
from llmswitch_llamacpp.gguf import ArraySummary, GGUFError, read_gguf
from llmswitch_llamacpp.prompts import FormatChoice, choose_format, conversation, render
from llmswitch_llamacpp.settings import LoadSettings, default_threads, load_settings

from llmswitch.errors import InvalidOptionError, ModelNotFoundError
from llmswitch.kit.local import AnswerShaper
from llmswitch.plugins import get_registry
from llmswitch.types import Message
from tests.plugins.test_llamacpp_support import gguf_bytes, profile, write_gguf

TENSORS = [("token_embd.weight", (8, 4), 0), ("output_norm.weight", (8,), 1)]
METADATA = {
    "general.architecture": "llama",
    "general.name": "Tiny Test",
    "general.file_type": 15,
    "llama.context_length": 2048,
    "tokenizer.ggml.tokens": [f"t{i}" for i in range(100)],
}


# ---- discovery ---------------------------------------------------------------------------------------------


def test_plugin_is_found_through_its_entry_point_without_importing_llama_cpp() -> None:
    code = (
        "import sys; from llmswitch.plugins import get_registry; "
        "info = get_registry().backend('llamacpp').info; "
        "print(info.name, info.key_env, info.default_model, 'llama_cpp' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["llamacpp", "None", "smollm2-135m-instruct", "False"]


def test_declares_options_extras_and_a_zero_price_table() -> None:
    from llmswitch import pricing

    info = get_registry().backend("llamacpp").info
    assert {spec.name for spec in info.options} == {
        "model_path", "n_ctx", "n_threads", "n_gpu_layers", "n_batch", "chat_format", "seed",
    }
    assert [spec.name for spec in info.generation_extras] == ["repeat_penalty"]
    assert info.key_env is None and info.key_required is False
    table = pricing.load_table(info)
    assert table is not None and table.error is None and table.date and table.source
    for model in ("gemma-3-270m", "any-gguf-you-point-at"):
        price = pricing.price_for(info, model)
        assert price.known and price.free  # shown as 0, not as unknown
    assert pricing.price_for(info, "gemma-3-270m").context_window == 32768


def test_builtin_local_profile_resolves_to_llamacpp() -> None:
    from llmswitch.client import Client

    target = Client().resolve("local").target
    assert (target.backend, target.model, target.api_key) == ("llamacpp", "smollm2-135m-instruct", None)
    assert target.options["chat_format"] == "auto"


# ---- GGUF header ---------------------------------------------------------------------------------------------


def test_reads_metadata_sizes_and_summarises_long_arrays(tmp_path: Path) -> None:
    path = write_gguf(tmp_path / "tiny.gguf", METADATA, TENSORS)
    info = read_gguf(path)
    assert info.architecture == "llama"
    assert info.context_length == 2048
    assert info.quantisation == "Q4_K_M"
    assert info.metadata["tokenizer.ggml.tokens"] == ArraySummary(item_type=8, length=100)
    assert info.tensor_count == 2
    assert info.expected_size is not None and info.expected_size <= info.file_size
    assert info.describe().startswith("llama (Tiny Test), Q4_K_M, context 2048, ")
    assert info.chat_template is None


def test_short_arrays_and_chat_template_are_kept(tmp_path: Path) -> None:
    metadata = {**METADATA, "general.tags": ["a", "b"], "tokenizer.chat_template": "{{ messages }}"}
    info = read_gguf(write_gguf(tmp_path / "t.gguf", metadata, TENSORS))
    assert info.metadata["general.tags"] == ["a", "b"]
    assert info.chat_template == "{{ messages }}"


@pytest.mark.parametrize(
    ("cut", "expected"),
    [
        (40, "header runs past the end"),  # inside the metadata
        (-40, "its tensors need"),  # inside the tensor data
    ],
)
def test_truncated_file_is_reported_with_where_it_ends(tmp_path: Path, cut: int, expected: str) -> None:
    whole = gguf_bytes(METADATA, TENSORS)
    path = tmp_path / "cut.gguf"
    path.write_bytes(whole[:cut])
    with pytest.raises(GGUFError) as caught:
        read_gguf(path)
    assert caught.value.kind == "truncated"
    assert expected in caught.value.message
    assert "fetch the file again" in caught.value.remedy


@pytest.mark.parametrize(
    ("content", "kind", "words"),
    [
        (b"PK\x03\x04 a zip file, not a model", "not_gguf", "not a GGUF file"),
        (b"", "not_gguf", "is empty"),
        (b"GGUF" + (1).to_bytes(4, "little") + b"\0" * 16, "unsupported", "version 1"),
        (b"GGUF" + (3 << 24).to_bytes(4, "little") + b"\0" * 16, "unsupported", "big-endian"),
    ],
)
def test_files_that_are_not_usable_gguf(tmp_path: Path, content: bytes, kind: str, words: str) -> None:
    path = tmp_path / "model.gguf"
    path.write_bytes(content)
    with pytest.raises(GGUFError) as caught:
        read_gguf(path)
    assert caught.value.kind == kind
    assert words in caught.value.message
    assert caught.value.remedy


def test_missing_file_and_directory(tmp_path: Path) -> None:
    with pytest.raises(GGUFError) as missing:
        read_gguf(tmp_path / "nope.gguf")
    assert missing.value.kind == "missing"
    with pytest.raises(GGUFError) as directory:
        read_gguf(tmp_path)
    assert directory.value.kind == "unreadable"
    assert "the .gguf file itself" in directory.value.remedy


# ---- prompt formats ------------------------------------------------------------------------------------------

TURNS = [Message("user", "What is the capital of France?"), Message("assistant", "Paris."),
         Message("user", "And of Italy?")]


def test_base_model_without_template_gets_the_plain_transcript() -> None:
    choice = choose_format("auto", {"general.architecture": "gemma3", "general.name": "Gemma 3 270m"})
    assert choice.name == "transcript"
    prompt = render(choice, conversation(TURNS, "Answer briefly."))
    assert prompt.text == (
        "Answer briefly.\n\nQ: What is the capital of France?\nA: Paris.\nQ: And of Italy?\nA:"
    )
    assert prompt.stop == ("\nQ:", "\nA:")
    assert prompt.add_bos


def test_template_in_metadata_wins_and_is_rendered_with_bos_once() -> None:
    template = (
        "{{ bos_token }}{% for m in messages %}<|{{ m['role'] }}|>{{ m['content'] }}{{ eos_token }}{% endfor %}"
        "{% if add_generation_prompt %}<|assistant|>{% endif %}"
    )
    choice = choose_format("auto", {"tokenizer.chat_template": template, "general.architecture": "llama"})
    assert choice.name == "template"
    prompt = render(choice, conversation(TURNS[:1], None), bos_token="<s>", eos_token="</s>")
    assert prompt.text == "<s><|user|>What is the capital of France?</s><|assistant|>"
    assert prompt.add_bos is False  # the template wrote BOS itself
    assert prompt.stop == ("</s>",)


def test_template_that_refuses_the_conversation_says_how_to_bypass_it() -> None:
    template = "{% if messages[0]['role'] == 'system' %}{{ raise_exception('no system role') }}{% endif %}"
    choice = FormatChoice("template", "test", template)
    with pytest.raises(InvalidOptionError) as caught:
        render(choice, conversation(TURNS, "be brief"))
    assert "no system role" in caught.value.message
    assert "chat_format" in (caught.value.remedy or "")


@pytest.mark.parametrize(
    ("metadata", "expected"),
    [
        ({"general.architecture": "gemma3", "general.name": "gemma-3-1b-it"}, "gemma"),
        ({"general.architecture": "qwen2", "general.finetune": "Instruct"}, "chatml"),
        ({"general.architecture": "llama", "general.name": "Llama 3.2 1B Instruct"}, "llama-3"),
        ({"general.architecture": "llama", "general.name": "Llama 3.2 1B"}, "transcript"),
    ],
)
def test_family_decides_when_there_is_no_template(metadata: dict[str, str], expected: str) -> None:
    assert choose_format(None, metadata).name == expected


def test_chat_format_option_overrides_and_template_needs_one() -> None:
    assert choose_format("chatml", {"tokenizer.chat_template": "x"}).name == "chatml"
    with pytest.raises(InvalidOptionError) as caught:
        choose_format("template", {"general.architecture": "gemma3"})
    assert "no chat template" in caught.value.message


def test_gemma_format_folds_the_system_prompt_into_the_first_user_turn() -> None:
    prompt = render(FormatChoice("gemma", "test"), conversation(TURNS[:2], "Be brief."))
    assert prompt.text == (
        "<start_of_turn>user\nBe brief.\n\nWhat is the capital of France?<end_of_turn>\n"
        "<start_of_turn>model\nParis.<end_of_turn>\n<start_of_turn>model\n"
    )
    assert prompt.stop == ("<end_of_turn>",)


# ---- shaping the answer --------------------------------------------------------------------------------------


def feed_all(stop: tuple[str, ...], pieces: list[str]) -> tuple[list[str], bool, str]:
    answer = AnswerShaper(stop)
    shown: list[str] = []
    for piece in pieces:
        text, stopped = answer.feed(piece.encode("utf-8"))
        if text:
            shown.append(text)
        if stopped:
            return shown, True, ""
    return shown, False, answer.finish()


def test_answer_drops_leading_space_and_stops_before_the_next_question() -> None:
    shown, stopped, _ = feed_all(("\nQ:", "\nA:"), [" The", " capital", " is", " Paris", ".", "\n", "Q", ":", " x"])
    assert "".join(shown) == "The capital is Paris."
    assert stopped
    # The newline and "Q" were held back, never shown, because they could have been (and were) a stop.
    assert all("\n" not in piece and "Q" not in piece for piece in shown)


def test_stop_right_at_the_start_gives_an_empty_answer() -> None:
    shown, stopped, _ = feed_all(("\nQ:",), ["\n", "Q:", " next"])
    assert shown == [] and stopped


def test_held_text_that_was_not_a_stop_is_released_and_trailing_space_dropped() -> None:
    shown, stopped, rest = feed_all(("\nQ:",), ["Line one", "\n", "Quite so", ".", "\n\n"])
    assert not stopped
    assert "".join(shown) + rest == "Line one\nQuite so."


def test_multibyte_characters_split_across_tokens_are_joined() -> None:
    answer = AnswerShaper(())
    raw = "é€".encode()
    texts = [answer.feed(raw[i : i + 1])[0] for i in range(len(raw))]
    assert "".join(texts) + answer.finish() == "é€"


# ---- settings -----------------------------------------------------------------------------------------------


def test_default_threads_leave_room_on_a_two_core_machine() -> None:
    import os

    cpus = len(os.sched_getaffinity(0))
    assert default_threads() == max(1, cpus // 2)


def test_model_without_a_file_says_how_to_point_at_one(config_file: Path) -> None:
    resolved = profile(config_file, "mine")
    with pytest.raises(ModelNotFoundError) as caught:
        load_settings(resolved.target)
    assert "model_path" in (caught.value.remedy or "")
    assert "--set model_path=" in (caught.value.remedy or "")


def test_model_named_by_path_and_bad_numbers(config_file: Path, tmp_path: Path) -> None:
    resolved = profile(config_file, "bypath", model=str(tmp_path / "x.gguf"), n_threads=3)
    settings = load_settings(resolved.target)
    assert settings.model_path == tmp_path / "x.gguf" and settings.n_threads == 3 and settings.demo is None
    with pytest.raises(InvalidOptionError, match="n_ctx must be at least 16"):
        load_settings(profile(config_file, "tiny", model_path="/x.gguf", n_ctx=4).target)


# ---- explaining a probe child's death (real child processes) -------------------------------------------------


def _settings(tmp_path: Path, **values: int) -> LoadSettings:
    return LoadSettings(model_path=tmp_path / "m.gguf", **values)  # type: ignore[arg-type]


def _dies_with(signal_name: str) -> list[str]:
    return [sys.executable, "-c", f"import os, signal; os.kill(os.getpid(), signal.{signal_name})"]


def test_sigill_in_the_child_gives_the_rebuild_remedy(tmp_path: Path) -> None:
    result = preflight.run_probe(_settings(tmp_path), command=_dies_with("SIGILL"))
    assert not result.ok and result.kind == "illegal_instruction"
    assert "SIGILL" in result.detail
    assert "-DGGML_NATIVE=OFF" in (result.remedy or "") and "--no-binary llama-cpp-python" in (result.remedy or "")
    error = preflight.error_for(result)
    assert error.remedy == result.remedy


def test_oom_kill_in_the_child_suggests_less_memory(tmp_path: Path) -> None:
    result = preflight.run_probe(_settings(tmp_path, n_ctx=8192, n_gpu_layers=20), command=_dies_with("SIGKILL"))
    assert result.kind == "out_of_memory"
    assert "n_gpu_layers, now 20" in (result.remedy or "") and "n_ctx, now 8192" in (result.remedy or "")


def test_other_crash_and_timeout_are_explained(tmp_path: Path) -> None:
    crashed = preflight.run_probe(_settings(tmp_path), command=_dies_with("SIGSEGV"))
    assert crashed.kind == "crashed" and "SIGSEGV" in crashed.detail
    slow = preflight.run_probe(_settings(tmp_path), command=[sys.executable, "-c", "import time; time.sleep(30)"],
                               timeout=0.5)
    assert slow.kind == "timeout" and slow.remedy


def test_clean_load_failure_reports_llama_cpp_words(tmp_path: Path) -> None:
    payload = '{"ok": false, "kind": "load_failed", "error": "Failed to create llama_context", ' \
              '"log": "ggml_aligned_malloc: insufficient memory (attempted to allocate 49152.00 MB)"}'
    command = [sys.executable, "-c", f"import sys; print({payload!r}); sys.exit(3)"]
    result = preflight.run_probe(_settings(tmp_path, n_ctx=1 << 24), command=command)
    assert result.kind == "out_of_memory"
    assert "insufficient memory" in result.detail
    assert "n_ctx, now 16777216" in (result.remedy or "")


def test_builtin_local_pointed_at_another_file_is_named_after_the_file(config_file: Path, tmp_path: Path) -> None:
    from llmswitch.client import Client

    config_file.write_text(f'[profiles.local]\nmodel_path = "{tmp_path}/qwen2.5-7b-instruct-q4_k_m.gguf"\n')
    settings = load_settings(Client().resolve("local").target)
    assert settings.demo is None
    assert settings.model_name == "qwen2.5-7b-instruct-q4_k_m"  # not "smollm2-135m-instruct"


# ---- llama-cpp-python versions and models newer than the library -------------------------------------------


def test_tested_range_of_llama_cpp_python() -> None:
    assert preflight.TESTED_VERSIONS == ("0.3.16", "0.3.36")
    assert all(preflight.is_tested(v) for v in ("0.3.16", "0.3.20", "0.3.36"))
    assert not any(preflight.is_tested(v) for v in ("0.3.15", "0.3.37", "0.4.0", "0.2.90"))


def test_unknown_architecture_is_diagnosed_with_the_upgrade_command(tmp_path: Path) -> None:
    log = ("print_info: file size   = 92.10 MiB (5.74 BPW)\n"
           "llama_model_load: error loading model: unknown model architecture: 'qwen9'\n"
           "llama_model_load_from_file_impl: failed to load model\n")
    result = preflight.explain_load_error("Failed to load model from file: m.gguf", log, _settings(tmp_path),
                                          "0.5.0-dev, commit 0c1e570")
    assert result.kind == "unknown_architecture"
    assert "does not know the model architecture 'qwen9'" in result.detail
    assert "llama.cpp 0.5.0-dev, commit 0c1e570" in result.detail
    assert "pip install --upgrade" in (result.remedy or "") and "-DGGML_NATIVE=OFF" in (result.remedy or "")
