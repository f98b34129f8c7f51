"""Which extra of the llmswitch distribution to install for a missing backend or built-in profile.

Data, not code: ``llmswitch/data/extras.toml`` lists each extra's backends and built-in profiles. Read only on
the error path (a profile or backend nobody installed), so start-up never pays for it.
"""

from __future__ import annotations

import functools
from importlib import resources

from llmswitch.record import record


@record(slots=False)
class Extra:
    name: str
    backends: tuple[str, ...]
    profiles: tuple[str, ...]

    @property
    def command(self) -> str:
        return f"pip install 'llmswitch[{self.name}]'"


@functools.cache
def known_extras() -> tuple[Extra, ...]:
    from llmswitch.config import parse_toml

    text = (resources.files("llmswitch") / "data" / "extras.toml").read_text(encoding="utf-8")
    table = parse_toml(text, "llmswitch/data/extras.toml").get("extras", {})
    return tuple(Extra(name, tuple(entry.get("backends", ())), tuple(entry.get("profiles", ())))
                 for name, entry in table.items())


def extra_for_backend(backend: str) -> Extra | None:
    return next((extra for extra in known_extras() if backend in extra.backends), None)


def extra_for_profile(profile: str) -> Extra | None:
    return next((extra for extra in known_extras() if profile in extra.profiles), None)
