"""The complete example backend of docs/writing-a-plugin.md, taken from the page itself (so the page is tested)."""

from __future__ import annotations

import re
import sys
from pathlib import Path
from types import ModuleType

GUIDE = Path(__file__).resolve().parents[1] / "docs" / "writing-a-plugin.md"


def guide_files() -> dict[str, str]:
    """``pyproject.toml`` and ``llmswitch_tiny.py`` exactly as the guide shows them."""
    text = GUIDE.read_text(encoding="utf-8")
    files = {}
    for name, language in (("pyproject.toml", "toml"), ("llmswitch_tiny.py", "python")):
        match = re.search(rf"`{re.escape(name)}`:\n\n```{language}\n(.*?)```", text, re.S)
        assert match, f"the guide no longer shows {name}"
        files[name] = match.group(1)
    return files


def load_tiny() -> ModuleType:
    """The example as a module, to register from Python (the guide's test installs it for real)."""
    module = ModuleType("llmswitch_tiny")
    exec(compile(guide_files()["llmswitch_tiny.py"], str(GUIDE), "exec"), module.__dict__)  # noqa: S102
    sys.modules.setdefault("llmswitch_tiny", module)
    return module
