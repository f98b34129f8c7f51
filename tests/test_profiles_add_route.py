"""`llmswitch profiles add NAME --route ...`: a fallback, a pool or a split written from the command line, checked
as `chat` would read it (members exist, no cycle, a known strategy, positive weights), the user's file kept."""

from __future__ import annotations

from pathlib import Path

import pytest

from llmswitch.errors import ConfigError
from llmswitch.profiles import ProfileStore
from tests.helpers import run_cli, write_config

MEMBERS = '''\
# my fleet, hand-written
default_profile = "one"

# the first echo
[profiles.one]
backend = "echo"
prefix = "1:"   # answers start with 1:

[profiles.two]
backend = "echo"
prefix = "2:"
'''


@pytest.fixture
def members(config_file: Path) -> Path:
    write_config(config_file, MEMBERS)
    return config_file


def add(*arguments: str):  # type: ignore[no-untyped-def]
    return run_cli("profiles", "add", *arguments)


def refused(config_file: Path, *arguments: str) -> str:
    """The command's stderr, after checking that it exited 2 with a sentence, no traceback, the file untouched."""
    before = config_file.read_text() if config_file.exists() else None
    outcome = add(*arguments)
    assert outcome.exit_code == 2, (arguments, outcome.stdout, outcome.stderr)
    assert "Traceback" not in outcome.stderr and outcome.stdout == ""
    assert (config_file.read_text() if config_file.exists() else None) == before
    return outcome.stderr  # type: ignore[no-any-return]


def test_a_fallback_is_written_with_the_users_comments_kept_and_answers(members: Path) -> None:
    outcome = add("reliable", "--route", "fallback", "--member", "two", "--member", "one")
    assert outcome.exit_code == 0, outcome.stderr
    assert "added route 'reliable' (fallback: two, then one)" in outcome.stderr
    text = members.read_text()
    assert text.startswith(MEMBERS)  # every comment, the order and the spacing as written
    assert '[profiles.reliable]\nroute = "fallback"\nmembers = ["two", "one"]\n' in text
    assert ProfileStore.load().get("reliable").settings == {"route": "fallback", "members": ["two", "one"]}
    answered = run_cli("chat", "-p", "reliable", "hi")  # the first member answers
    assert answered.exit_code == 0, answered.stderr
    assert answered.stdout.strip() == "2:hi"


def test_a_pool_takes_its_strategy_and_members_given_together(members: Path) -> None:
    outcome = add("fleet", "--route", "pool", "--strategy", "least-busy", "--member", "one,two")
    assert outcome.exit_code == 0, outcome.stderr
    assert "added route 'fleet' (pool, least-busy: one, two)" in outcome.stderr
    assert ProfileStore.load().get("fleet").settings == {"route": "pool", "members": ["one", "two"],
                                                         "strategy": "least-busy"}
    shown = run_cli("profiles", "show", "fleet")
    assert shown.exit_code == 0 and "# a pool route (least-busy)" in shown.stdout


def test_a_split_is_written_as_a_table_of_weights_and_says_its_shares(members: Path) -> None:
    outcome = add("ab", "--route", "split", "--weight", "one=80", "--weight", "two=20")
    assert outcome.exit_code == 0, outcome.stderr
    assert "added route 'ab' (split: one 80%, two 20%)" in outcome.stderr
    assert "weights = {one = 80, two = 20}" in members.read_text()
    assert ProfileStore.load().get("ab").settings == {"route": "split", "weights": {"one": 80, "two": 20}}
    thirds = add("thirds", "--route", "split", "--weight", "one=0.5", "--weight", "two=1")
    assert thirds.exit_code == 0 and "(split: one 33.3%, two 66.7%)" in thirds.stderr
    assert ProfileStore.load().get("thirds").settings["weights"] == {"one": 0.5, "two": 1}


def test_a_routes_own_keys_are_set_typed_and_checked(members: Path) -> None:
    outcome = add("careful", "--route", "fallback", "--member", "one", "--member", "two",
                  "--set", "timeout_total=30", "--set", "max_retries=0", "--set", "cache=true", "--set", "cache_ttl=1h",
                  "--default")
    assert outcome.exit_code == 0, outcome.stderr
    store = ProfileStore.load()
    assert store.get("careful").settings == {"route": "fallback", "members": ["one", "two"], "timeout_total": 30.0,
                                             "max_retries": 0, "cache": True, "cache_ttl": "1h"}
    assert store.default_name == "careful"
    typo = refused(members, "x", "--route", "fallback", "--member", "one", "--set", "timout_total=3")
    assert "unknown key 'timout_total' for a route" in typo and "did you mean 'timeout_total'?" in typo
    backend_option = refused(members, "x", "--route", "fallback", "--member", "one", "--set", "prefix=p")
    assert "unknown key 'prefix' for a route" in backend_option
    wrong_type = refused(members, "x", "--route", "fallback", "--member", "one", "--set", "max_retries=many")
    assert "'max_retries' must be an integer, not 'many'" in wrong_type
    out_of_range = refused(members, "x", "--route", "fallback", "--member", "one", "--set", "max_retries=-1")
    assert "'max_retries' must be at least 0, not -1" in out_of_range


def test_an_unknown_member_is_refused_with_close_names(members: Path) -> None:
    stderr = refused(members, "r", "--route", "fallback", "--member", "one", "--member", "tow")
    assert "route 'r' names 'tow', which is not a profile" in stderr
    assert "did you mean 'two'?" in stderr
    split = refused(members, "r", "--route", "split", "--weight", "one=1", "--weight", "onee=1")
    assert "route 'r' names 'onee', which is not a profile" in split and "did you mean 'one'?" in split


def test_no_file_is_created_by_a_refused_route(config_file: Path) -> None:
    stderr = refused(config_file, "r", "--route", "fallback", "--member", "nowhere")
    assert "'nowhere', which is not a profile" in stderr
    assert not config_file.exists()


def test_a_cycle_is_refused_and_named(members: Path) -> None:
    assert add("outer", "--route", "fallback", "--member", "inner-to-be", "--member", "one").exit_code == 2
    write_config(members, MEMBERS + '\n[profiles.outer]\nroute = "fallback"\nmembers = ["two", "one"]\n')
    stderr = refused(members, "two", "--route", "pool", "--member", "outer", "--member", "one", "--replace")
    assert "route 'two' loops: two -> outer -> two" in stderr
    assert "remove 'two' from the members of 'outer'" in stderr
    itself = refused(members, "self", "--route", "fallback", "--member", "one", "--member", "self")
    assert "route 'self' loops: self -> self" in itself


def test_the_strategy_and_the_kind_are_checked_with_close_names(members: Path) -> None:
    strategy = refused(members, "r", "--route", "pool", "--strategy", "least-bussy", "--member", "one")
    assert "strategy must be one of round-robin, least-busy, latency, cost, not 'least-bussy'" in strategy
    assert "did you mean 'least-busy'?" in strategy
    kind = refused(members, "r", "--route", "fallbak", "--member", "one")
    assert "route must be one of fallback, pool, split, not 'fallbak'" in kind and "did you mean 'fallback'?" in kind
    not_a_pool = refused(members, "r", "--route", "fallback", "--strategy", "cost", "--member", "one")
    assert "--strategy applies to a pool" in not_a_pool


@pytest.mark.parametrize(("weight", "said"), [
    ("one=0", "the weight of 'one' must be a positive number, not 0"),
    ("one=-5", "the weight of 'one' must be a positive number, not -5"),
    ("one=lots", "the weight of 'one' must be a positive number, not 'lots'"),
    ("one=nan", "the weight of 'one' must be a positive number, not nan"),
    ("one=inf", "the weight of 'one' must be a positive number, not inf"),
    ("one", "--weight 'one': expected NAME=WEIGHT"),
    ("=3", "--weight '=3': expected NAME=WEIGHT"),
])
def test_a_splits_weights_must_be_positive_numbers(members: Path, weight: str, said: str) -> None:
    stderr = refused(members, "r", "--route", "split", "--weight", weight, "--weight", "two=1")
    assert said in stderr
    assert "weights are relative" in stderr or "e.g. --weight" in stderr


def test_an_infinite_weight_in_the_file_is_refused_too(members: Path) -> None:
    write_config(members, MEMBERS + '\n[profiles.r]\nroute = "split"\nweights = { one = inf, two = 1 }\n')
    chat = run_cli("chat", "-p", "r", "hi")
    assert chat.exit_code == 2 and "the weight of 'one' must be a positive number, not inf" in chat.stderr


def test_a_member_named_twice_is_refused_in_the_file_and_on_the_command_line(members: Path) -> None:
    stderr = refused(members, "r", "--route", "fallback", "--member", "one", "--member", "two,one")
    assert "members lists 'one' more than once" in stderr
    twice = refused(members, "r", "--route", "split", "--weight", "one=1", "--weight", "one=2")
    assert "--weight lists 'one' more than once" in twice
    write_config(members, MEMBERS + '\n[profiles.r]\nroute = "pool"\nmembers = ["one", "one"]\n')
    chat = run_cli("chat", "-p", "r", "hi")
    assert chat.exit_code == 2 and "route 'r'" in chat.stderr and "members lists 'one' more than once" in chat.stderr


@pytest.mark.parametrize(("arguments", "said"), [
    (("--member", "one"), "say what 'r' runs: --backend NAME"),
    (("--backend", "echo", "--route", "fallback", "--member", "one"), "either runs a backend or routes"),
    (("--route", "fallback", "--member", "one", "--model", "m"), "--model does not apply to a route"),
    (("--backend", "echo", "--member", "one"), "--member applies to a route"),
    (("--backend", "echo", "--strategy", "cost"), "--strategy applies to a route"),
    (("--backend", "echo", "--weight", "one=1"), "--weight applies to a route"),
    (("--route", "fallback", "--weight", "one=1"), "--weight gives a split's members"),
    (("--route", "split", "--member", "one"), "a split's members come with their weights"),
    (("--route", "fallback",), "a fallback route needs members: --member NAME"),
    (("--route", "split",), "a split route needs members: --weight NAME=WEIGHT"),
])
def test_options_that_do_not_fit_together_are_a_sentence(members: Path, arguments: tuple[str, ...],
                                                         said: str) -> None:
    assert said in refused(members, "r", *arguments)


def test_replacing_a_plain_profile_with_a_route_keeps_the_rest_of_the_file(members: Path) -> None:
    outcome = add("two", "--route", "fallback", "--member", "one", "--replace")
    assert outcome.exit_code == 0, outcome.stderr
    text = members.read_text()
    assert "# my fleet, hand-written" in text and "prefix = \"1:\"   # answers start with 1:" in text
    assert ProfileStore.load().get("two").settings == {"route": "fallback", "members": ["one"]}
    again = add("two", "--route", "fallback", "--member", "one")
    assert again.exit_code == 2 and "already exists" in again.stderr


def test_the_python_api_checks_a_route_before_writing_it(members: Path) -> None:
    store = ProfileStore.load()
    with pytest.raises(ConfigError, match="names 'tow', which is not a profile"):
        store.add("r", {"route": "fallback", "members": ["tow"]})
    with pytest.raises(ConfigError, match="loops: r -> r"):
        store.add("r", {"route": "fallback", "members": ["r"]})
    assert members.read_text() == MEMBERS
    store.add("r", {"route": "fallback", "members": ["one"]})
    assert ProfileStore.load().get("r").settings == {"route": "fallback", "members": ["one"]}


# ---- removing a member ------------------------------------------------------------------------------------


def test_removing_a_profile_a_route_names_is_refused_naming_the_routes_and_the_way_on(members: Path) -> None:
    """`profiles remove` of a fallback's and a split's member would leave both failing at the next call: refused
    (exit 2, the file untouched) naming both routes and what to do; --force removes it and warns per route."""
    assert add("backup", "--route", "fallback", "--member", "one", "--member", "two").exit_code == 0
    assert add("ab", "--route", "split", "--weight", "one=80", "--weight", "two=20").exit_code == 0
    assert add("solo", "--route", "pool", "--member", "one").exit_code == 0
    before = members.read_text()
    outcome = run_cli("profiles", "remove", "two")
    assert outcome.exit_code == 2, outcome
    assert "profile 'two' is a member of the routes 'ab' and 'backup'" in outcome.stderr
    assert "--force" in outcome.stderr and "take 'two' out of those routes" in outcome.stderr
    assert "solo" not in outcome.stderr and "Traceback" not in outcome.stderr
    assert members.read_text() == before
    forced = run_cli("profiles", "remove", "two", "--force")
    assert forced.exit_code == 0, forced
    assert "two" not in ProfileStore.load().names()
    assert "warning: route 'ab' still names 'two'" in forced.stderr
    assert "warning: route 'backup' still names 'two'" in forced.stderr
    assert run_cli("profiles", "remove", "solo").exit_code == 0  # a route itself is no member of anything


def test_removing_a_file_profile_that_still_resolves_elsewhere_is_not_refused(members: Path) -> None:
    """A file's [profiles.echo] over the built-in echo: after its removal the route's member is the built-in,
    so nothing breaks and nothing is said."""
    with members.open("a") as handle:
        handle.write('\n[profiles.echo]\nbackend = "echo"\nprefix = "mine:"\n')
    assert add("backup", "--route", "fallback", "--member", "echo", "--member", "one").exit_code == 0
    outcome = run_cli("profiles", "remove", "echo")
    assert outcome.exit_code == 0, outcome
    assert "warning" not in outcome.stderr
    assert run_cli("chat", "-p", "backup", "hi").exit_code == 0
