"""Loaded models, once per process: shared by every turn (REPL, TUI) and guarded by a lock each.

A llama.cpp context holds the conversation's KV cache and is not thread-safe, so each loaded model has a
lock that a generation holds from its first token to its last. Reusing the same ``Llama`` across turns also
reuses its KV cache: the next turn of a conversation only evaluates the tokens that are new.

``count_tokens`` needs only the vocabulary: when the model is not loaded yet it loads the vocabulary alone
(no weights), which for a large model is much cheaper.
"""

from __future__ import annotations

import atexit
import threading
import time
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

from llmswitch.kit import BackendError
from llmswitch_llamacpp import preflight
from llmswitch_llamacpp.native_log import capture_native_logs, clear_native_log, recent_native_log
from llmswitch_llamacpp.prompts import FormatChoice, choose_format
from llmswitch_llamacpp.settings import LoadSettings


@dataclass
class LoadedModel:
    """A ``Llama`` object with what we learnt loading it."""

    llama: Any
    settings: LoadSettings  # the settings it was loaded with (the load-relevant ones are equal for all users)
    load_s: float
    metadata: dict[str, Any]
    bos_token: str
    eos_token: str
    vocab_only: bool = False
    lock: threading.Lock = field(default_factory=threading.Lock)
    _formats: dict[str, FormatChoice] = field(default_factory=dict)

    def format_for(self, chat_format: str) -> FormatChoice:
        choice = self._formats.get(chat_format)
        if choice is None:
            choice = self._formats[chat_format] = choose_format(chat_format, self.metadata)
        return choice

    @property
    def n_ctx(self) -> int:
        return int(self.llama.n_ctx())

    def tokenize(self, text: str, add_bos: bool) -> list[int]:
        return list(self.llama.tokenize(text.encode("utf-8"), add_bos=add_bos, special=True))


_models: dict[tuple[object, ...], LoadedModel] = {}
_vocabularies: dict[tuple[object, ...], LoadedModel] = {}
_registry_lock = threading.Lock()
_module: ModuleType | None = None


def llama_cpp_module() -> ModuleType:
    """Import llama-cpp-python (once), with its C logging captured instead of printed."""
    global _module
    if _module is None:
        try:
            import llama_cpp
        except ImportError as exc:
            raise BackendError(f"llama-cpp-python cannot be imported: {exc}", remedy=preflight.INSTALL_REMEDY,
                               backend="llamacpp") from None
        capture_native_logs(llama_cpp)
        _module = llama_cpp
        # Free models before the interpreter tears llama_cpp down: left to Llama.__del__ at shutdown, they
        # print "Exception ignored ... 'NoneType' object is not callable".
        atexit.register(_close_at_exit)
    return _module


def _close_at_exit() -> None:
    for model in [*_models.values(), *_vocabularies.values()]:
        # A daemon thread may still be generating with it: never free a model in use.
        if model.lock.acquire(timeout=1.0):
            try:
                model.llama.close()
            except Exception:
                pass
            finally:
                model.lock.release()
    _models.clear()
    _vocabularies.clear()


def loaded_model(settings: LoadSettings) -> LoadedModel:
    """The model for these settings, loading it on first use (after the crash-safe probe)."""
    key = settings.load_key()
    model = _models.get(key)
    if model is not None:
        return model
    with _registry_lock:
        model = _models.get(key)
        if model is None:
            model = _models[key] = _load(settings, vocab_only=False)
    return model


def vocabulary(settings: LoadSettings) -> LoadedModel:
    """Something that can tokenize for this model: the loaded model if there is one, else its vocabulary."""
    model = _models.get(settings.load_key())
    if model is not None:
        return model
    vocab_key = settings.file_key()
    with _registry_lock:
        model = _vocabularies.get(vocab_key)
        if model is None:
            model = _vocabularies[vocab_key] = _load(settings, vocab_only=True)
    return model


def unload_all() -> None:
    """Free every loaded model (tests, and applications that want the memory back)."""
    with _registry_lock:
        for model in [*_models.values(), *_vocabularies.values()]:
            with model.lock:
                model.llama.close()
        _models.clear()
        _vocabularies.clear()


def _load(settings: LoadSettings, *, vocab_only: bool) -> LoadedModel:
    preflight.ensure_safe(settings)
    llama_cpp = llama_cpp_module()
    clear_native_log()
    started = time.perf_counter()
    try:
        llama = llama_cpp.Llama(
            str(settings.model_path),
            n_ctx=settings.n_ctx,
            n_threads=settings.n_threads,
            n_threads_batch=settings.n_threads,
            n_gpu_layers=settings.n_gpu_layers,
            n_batch=settings.n_batch,
            vocab_only=vocab_only,
            verbose=False,
        )
    except (ValueError, RuntimeError, OSError) as exc:
        result = preflight.explain_load_error(str(exc), recent_native_log(), settings)
        raise preflight.error_for(result) from None
    load_s = time.perf_counter() - started
    model = llama._model
    bos, eos = llama.token_bos(), llama.token_eos()
    return LoadedModel(
        llama=llama,
        settings=settings,
        load_s=load_s,
        metadata=dict(llama.metadata),
        bos_token=model.token_get_text(bos) if bos >= 0 else "",
        eos_token=model.token_get_text(eos) if eos >= 0 else "",
        vocab_only=vocab_only,
    )
