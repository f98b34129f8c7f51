"""The router's in-process state keeps the RouterState contract (tests/router_state_contract.py)."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from llmswitch.errors import ConfigError
from llmswitch.router.state import LocalState, RouterState, open_state
from tests.router_state_contract import *  # noqa: F403
from tests.router_state_contract import FakeClock


@pytest.fixture
def make_state() -> Callable[[FakeClock], RouterState]:
    return lambda clock: LocalState(clock)


def test_local_is_the_default_state() -> None:
    assert isinstance(open_state(None), LocalState)
    assert isinstance(open_state("local"), LocalState)


def test_a_state_that_is_not_a_url_is_refused_with_the_choices() -> None:
    with pytest.raises(ConfigError) as caught:
        open_state("memcached://x")
    assert "redis://" in (caught.value.remedy or "")
