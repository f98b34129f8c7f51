"""Mutation testing of the modules whose mistakes cost users money, keys or data (`nox -s mutate`).

Each group mutates a few modules and runs only the tests that cover them, with mutmut, in a scratch copy of
the tree under ``.mutate/GROUP`` (so a run never touches the work tree). The kill rate counts the mutants the
tests caught among those that could be caught: a mutant listed in ``EQUIVALENT`` cannot change behaviour
(its reason is given there and in docs/testing.md) and is left out.

    python scripts/mutate.py                 every group; exit 1 when a group kills less than 90%
    python scripts/mutate.py secrets budget  some groups (CI runs these two on every change)
    python scripts/mutate.py --list          the groups and what they cover
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
GOAL = 0.90


@dataclass(frozen=True)
class Group:
    modules: tuple[str, ...]
    tests: tuple[str, ...]
    why: str
    # Tests that run the modules in child processes (a subprocess, a fork, a signal handler, an exit handler).
    # mutmut picks each mutant's tests by what it saw run in its own process, so a function that runs only in
    # a child has "no tests" there, and a child started by a test imports the unmutated tree: this script runs
    # these tests against each mutant mutmut left alive itself, with the mutated tree first on PYTHONPATH.
    child_tests: tuple[str, ...] = ()


GROUPS: dict[str, Group] = {
    "secrets": Group(("llmswitch/secrets.py",),
                     ("tests/test_secrets.py", "tests/test_credential_shapes.py", "tests/test_credentials.py",
                      "tests/test_key_policy.py",
                      "tests/test_mutation_survivors.py"),
                     "key masking, redaction and resolution: a mistake shows or sends a key"),
    "budget": Group(("llmswitch/accounting.py",),
                    ("tests/test_accounting.py", "tests/test_budget.py", "tests/test_cost.py",
                     "tests/test_call_charging.py", "tests/test_mutation_survivors.py"),
                    "estimates, budgets and the cost of each call: a mistake spends money the user capped"),
    "ledger": Group(("llmswitch/ledger.py",), ("tests/test_ledger.py", "tests/test_budget.py",
                                                "tests/test_accounting.py", "tests/test_database.py",
                                                "tests/test_ledger_writer.py", "tests/test_mutation_survivors.py"),
                    "the usage ledger: a mistake loses or miscounts spend",
                    child_tests=("tests/test_ledger_writer.py",)),
    "pricing": Group(("llmswitch/pricing.py", "llmswitch/price_catalog.py"),
                     ("tests/test_pricing.py", "tests/test_pricing_rules.py", "tests/test_price_catalog.py",
                      "tests/test_price_catalog_parts.py", "tests/test_cost.py"),
                     "prices and the price catalogue: a mistake misprices every call"),
    "retry_after": Group(("llmswitch/http_headers.py",),
                         ("tests/test_mutation_survivors.py", "tests/plugins/test_openai_parts.py"),
                         "Retry-After parsing: a mistake retries too soon or waits forever"),
    "config": Group(("llmswitch/config.py",), ("tests/test_config.py", "tests/test_profiles.py",
                                                "tests/test_mutation_survivors.py"),
                    "reading the config file: a mistake points at the wrong line or loses the file"),
    "store": Group(("llmswitch/store/schema.py", "llmswitch/store/database.py"),
                   ("tests/test_store.py", "tests/test_database.py", "tests/test_mutation_survivors.py"),
                   "the SQLite module and the history's migrations: a mistake loses users' conversations or spend"),
    "registry": Group(("llmswitch/plugins.py", "llmswitch/entry_points.py"),
                      ("tests/test_plugins.py", "tests/test_registry.py", "tests/test_entry_points.py"),
                      "the plugin registry: a mistake lets one broken plugin break every command"),
    "router": Group(("llmswitch/router/plan.py", "llmswitch/router/policy.py", "llmswitch/router/limits.py"),
                    ("tests/test_router_rules.py", "tests/test_router_plan.py", "tests/test_router_limits.py",
                     "tests/test_router_retries.py", "tests/test_router_routes.py"),
                    "the router's retry plan, retry policy and limits: a mistake retries a call that already cost "
                    "money, gives up too soon or lets a route past its rate limit"),
    "checkpoint": Group(("llmswitch/store/checkpoint.py",),
                        ("tests/test_checkpoint.py", "tests/test_batch.py", "tests/test_batch_crash.py",
                         "tests/test_batch_provider.py"),
                        "the batch checkpoint: a mistake loses finished lines or a provider job's id"),
    "response_store": Group(("llmswitch/store/responses.py",),
                            ("tests/test_response_store.py", "tests/test_response_cache.py"),
                            "the response cache's file: a mistake replays an expired or another request's answer"),
    "decoders": Group(("llmswitch/kit/decoders.py",), ("tests/test_kit_decoders.py",),
                      "the SSE and NDJSON decoders: a mistake loses or garbles answer text"),
}

# Mutants that cannot change behaviour, by mutmut's name, with the reason (kept in step with docs/testing.md).
# mutmut numbers mutants per function, so a name can move when its function changes: re-check this list then.
EQUIVALENT: dict[str, str] = {
    "llmswitch.accounting.x_compare_costs__mutmut_50":
        "the request's text when no prompt was given: its input tokens are then the given standard count, never "
        "counted from the text",
    "llmswitch.accounting.x_compare_costs__mutmut_80":
        "the sort rank of unresolvable profiles 2 -> 3: only its order after rank 1 matters",
    "llmswitch.accounting.x_budget_status__mutmut_5":
        "`now` left None instead of time.time(): start_of_day(None) and start_of_month(None) read the clock "
        "themselves",
    "llmswitch.accounting.x_budget_status__mutmut_15":
        "never closing a ledger it opened: the connection is closed when the object is collected; nothing a "
        "caller sees changes",
    "llmswitch.accounting.x_budget_status__mutmut_16":
        "closing the caller's ledger: a Ledger reopens its connection on the next query",
    "llmswitch.secrets.x_read_dotenv__mutmut_7":
        "read_text(encoding=None) reads the locale's encoding, UTF-8 wherever Python runs in UTF-8 mode or a "
        "UTF-8 locale (C.UTF-8 here); a Latin-1 locale is not available to test on these machines",
    "llmswitch.secrets.x_read_dotenv__mutmut_24":
        "after `export `, stripping the right instead of the left: the key is stripped on both sides later",
    "llmswitch.secrets.x_read_dotenv__mutmut_52":
        "split(' #') without a maximum: element 0 is the same",
    "llmswitch.secrets.x_read_dotenv__mutmut_55":
        "split(' #', 2) instead of 1: element 0 is the same",
    "llmswitch.config.x__toml_loads__mutmut_1":
        "`sys.version_info >= (3, 11)` -> `>`: version_info has five parts, so it is greater than (3, 11) on "
        "every 3.11 and later and less on 3.10: the same branch either way",
    "llmswitch.config.x_parse_toml__mutmut_39":
        "the fallback line list for an empty text: only text that is empty gives no lines, and an empty text is "
        "valid TOML, so this branch never sees it",
    "llmswitch.config.x_write_config_text__mutmut_10":
        "the temporary file's name beside the config (`.tmp` -> `XX.tmpXX`): any name in the same folder is "
        "replaced over the file the same way",
    "llmswitch.config.x_write_config_text__mutmut_11":
        "the temporary file's name beside the config (`.tmp` -> `.TMP`), as above",
    "llmswitch.entry_points.x__name_and_version__mutmut_6":
        "splitting a header at its last colon instead of its first: a Name or Version value never holds a colon",
    "llmswitch.entry_points.x__normalize__mutmut_1":
        "project names upper-cased instead of lower-cased: they are only compared with each other, all "
        "normalised the same way",
    "llmswitch.entry_points.x__section__mutmut_2":
        "`inside = None` instead of False before the first section: both are false",
    "llmswitch.entry_points.x__section__mutmut_26":
        "splitting an entry at its last `=` instead of its first: neither a name nor an object reference holds "
        "one",
    "llmswitch.entry_points.x__read__mutmut_7":
        "a missing file read as `XXXX` instead of empty: it has no section header and no `key:` line, so it "
        "parses to nothing exactly like an empty text",
    "llmswitch.plugins.xǁRegistryǁ_function__mutmut_7":
        "the KeyError's argument when a hook function is not found: only hooks the registry has just found "
        "implemented are looked up, so it is never raised",
    "llmswitch.kit.decoders.xǁNDJSONDecoderǁ__init____mutmut_6":
        '`any_cr=None` instead of False: both are false',
    "llmswitch.kit.decoders.xǁSSEDecoderǁ__init____mutmut_11":
        'the event name starts as None instead of "": both are false, and a dispatch reads `self._event or "message"`',
    "llmswitch.kit.decoders.xǁSSEDecoderǁfeed__mutmut_35":
        'the event name reset to None instead of "" after a dispatch: as above',
    "llmswitch.kit.decoders.xǁSSEDecoderǁclose__mutmut_1":
        "the open event's lines dropped as None instead of []: a closed decoder is never fed again",
    "llmswitch.kit.decoders.xǁSSEDecoderǁfeed__mutmut_27":
        'always joining the data lines: the join of one line is that line',
    "llmswitch.kit.decoders.xǁSSEDecoderǁfeed__mutmut_5":
        'the fast path for `data:` lines disabled: the general field parser gives every data line the same value',
    "llmswitch.kit.decoders.xǁSSEDecoderǁfeed__mutmut_6":
        'the fast path for `data:` lines disabled (`DATA:`): as above',
    "llmswitch.kit.decoders.xǁSSEDecoderǁfeed__mutmut_39":
        "comments parsed as fields instead of skipped: a comment's field name is empty, which no rule uses",
    "llmswitch.kit.decoders.xǁ_Linesǁ__init____mutmut_11":
        'the CR carry starting as None instead of False: both are false',
    "llmswitch.kit.decoders.xǁ_Linesǁ__init____mutmut_12":
        'the CR carry starting as True: it can only swallow an LF that opens the stream, i.e. an empty first line, which both decoders ignore',
    "llmswitch.kit.decoders.xǁ_Linesǁclose__mutmut_10":
        'the pending text dropped as None instead of []: a closed decoder is never fed again',
    "llmswitch.kit.decoders.xǁ_Linesǁfeed__mutmut_8":
        'the start flag cleared to None instead of False: both are false',
    "llmswitch.kit.decoders.xǁ_Linesǁfeed__mutmut_15":
        'the CR carry cleared to None instead of False: both are false',
    "llmswitch.kit.decoders.xǁ_Linesǁfeed__mutmut_66":
        '`>=` in the cheap pre-check before the exact per-line checks: the exact checks decide',
    "llmswitch.ledger.xǁLedgerǁsummary__mutmut_16":
        "the ORDER BY alias `grp` upper-cased: SQLite's identifiers ignore case",
    "llmswitch.price_catalog.x__download__mutmut_7":
        "the name of an HTTP header upper- or lower-cased: urllib sends names capitalised whatever they were,"
        " and looks a response's headers up without case",
    "llmswitch.price_catalog.x__download__mutmut_8":
        "the name of an HTTP header upper- or lower-cased: urllib sends names capitalised whatever they were,"
        " and looks a response's headers up without case",
    "llmswitch.price_catalog.x__download__mutmut_12":
        "the name of an HTTP header upper- or lower-cased: urllib sends names capitalised whatever they were,"
        " and looks a response's headers up without case",
    "llmswitch.price_catalog.x__download__mutmut_13":
        "the name of an HTTP header upper- or lower-cased: urllib sends names capitalised whatever they were,"
        " and looks a response's headers up without case",
    "llmswitch.price_catalog.x__download__mutmut_27":
        "the name of an HTTP header upper- or lower-cased: urllib sends names capitalised whatever they were,"
        " and looks a response's headers up without case",
    "llmswitch.price_catalog.x__download__mutmut_28":
        "the name of an HTTP header upper- or lower-cased: urllib sends names capitalised whatever they were,"
        " and looks a response's headers up without case",
    "llmswitch.price_catalog.x__download__mutmut_41":
        "reading the limit + 2 bytes instead of + 1 before the size check: any length above the limit is "
        "refused the same way",
    "llmswitch.price_catalog.x_save_catalog__mutmut_10":
        "the stored table written in the locale's encoding: json.dumps escapes every non-ASCII character, so "
        "the text is ASCII",
    "llmswitch.price_catalog.x_save_catalog__mutmut_12":
        "the stored table written in the locale's encoding (no encoding given): as above",
    "llmswitch.price_catalog.x_update_prices__mutmut_7":
        "load_catalog called when the stored table does not exist: it returns None for a missing file itself",
    "llmswitch.price_catalog.xǁCatalogDiffǁsuspicious__mutmut_2":
        "a change without a factor counted as 1 instead of 0: both are below the 10x threshold",
    "llmswitch.pricing.x_parse_table__mutmut_1":
        "the default format's name (`toml` -> `XXtomlXX`): every format but `json` is read as TOML",
    "llmswitch.pricing.x_parse_table__mutmut_2":
        "the default format's name (`toml` -> `TOML`): as above",
    "llmswitch.pricing.x__package_text__mutmut_1":
        "the fast path for a package in a plain folder skipped: importlib.resources reads the same file (only"
        " slower)",
    "llmswitch.pricing.x__package_text__mutmut_2":
        "the fast path for a package in a plain folder skipped: importlib.resources reads the same file (only"
        " slower)",
    "llmswitch.pricing.x__package_text__mutmut_6":
        "getattr(module, '__file__') without a default: every module has the attribute (None for a namespace "
        "package)",
    "llmswitch.pricing.x__package_text__mutmut_8":
        "the fast path for a package in a plain folder skipped: importlib.resources reads the same file (only"
        " slower)",
    "llmswitch.pricing.x__package_text__mutmut_9":
        "the fast path for a package in a plain folder skipped: importlib.resources reads the same file (only"
        " slower)",
    "llmswitch.pricing.x__package_text__mutmut_10":
        "the fast path for a package in a plain folder skipped: importlib.resources reads the same file (only"
        " slower)",
    "llmswitch.pricing.xǁModelPriceǁcost__mutmut_7":
        "the type-narrowing assert weakened to `or`: `known`, checked just before, guarantees both prices",
    "llmswitch.pricing.x_format_usd__mutmut_9":
        "$0.01 exactly through the small-sum branch: three significant digits print it as $0.0100 too",
    "llmswitch.pricing.x_format_rate__mutmut_9":
        "rpartition instead of partition at the decimal point: a formatted number has one",
    "llmswitch.pricing.x_format_rate__mutmut_19":
        "rstrip('XX0XX') instead of rstrip('0'): the decimals are digits, never X",
    "llmswitch.pricing.x_lookup__mutmut_19":
        "`base_url or 'XXXX'`: this branch is reached only with a base URL (no URL is the backend's own)",
    "llmswitch.store.database.x_connect__mutmut_7":
        "sqlite3.connect without its timeout: the PRAGMA busy_timeout set right after it decides the wait",
    "llmswitch.store.database.x_upgrade__mutmut_22":
        "`target >= found` when writing the version: at equal versions it writes the number the file already "
        "has",
    "llmswitch.store.checkpoint.xǁCheckpointǁforget__mutmut_6":
        "the letter case of a SQL fragment (a condition, WHERE, AND, an upsert's SET list): SQL ignores case",
    "llmswitch.store.checkpoint.xǁCheckpointǁforget__mutmut_7":
        "the letter case of a SQL fragment (a condition, WHERE, AND, an upsert's SET list): SQL ignores case",
    "llmswitch.store.checkpoint.xǁCheckpointǁjobs__mutmut_6":
        "the letter case of a SQL fragment (a condition, WHERE, AND, an upsert's SET list): SQL ignores case",
    "llmswitch.store.checkpoint.xǁCheckpointǁjobs__mutmut_12":
        "the letter case of a SQL fragment (a condition, WHERE, AND, an upsert's SET list): SQL ignores case",
    "llmswitch.store.checkpoint.xǁCheckpointǁjobs__mutmut_14":
        "the letter case of a SQL fragment (a condition, WHERE, AND, an upsert's SET list): SQL ignores case",
    "llmswitch.store.checkpoint.xǁCheckpointǁjobs__mutmut_26":
        "the letter case of a SQL fragment (a condition, WHERE, AND, an upsert's SET list): SQL ignores case",
    "llmswitch.store.checkpoint.xǁCheckpointǁjobs__mutmut_29":
        "the letter case of a SQL fragment (a condition, WHERE, AND, an upsert's SET list): SQL ignores case",
    "llmswitch.store.checkpoint.xǁCheckpointǁstart_run__mutmut_13":
        "the letter case of a SQL fragment (a condition, WHERE, AND, an upsert's SET list): SQL ignores case",
    "llmswitch.store.checkpoint.xǁCheckpointǁruns__mutmut_5":
        "no parameters passed to _read: its default is the same empty tuple",
    "llmswitch.store.checkpoint.xǁCheckpointǁsave__mutmut_3":
        "ensure_ascii=None instead of False: both are false",
    "llmswitch.store.responses.xǁResponseStoreǁclear__mutmut_11":
        "the letter case of a SQL fragment (a condition, WHERE, AND, an upsert's SET list): SQL ignores case",
    "llmswitch.store.responses.xǁResponseStoreǁclear__mutmut_15":
        "the letter case of a SQL fragment (a condition, WHERE, AND, an upsert's SET list): SQL ignores case",
    "llmswitch.store.responses.xǁResponseStoreǁclear__mutmut_26":
        "the letter case of a SQL fragment (a condition, WHERE, AND, an upsert's SET list): SQL ignores case",
    "llmswitch.store.responses.xǁResponseStoreǁclear__mutmut_29":
        "the letter case of a SQL fragment (a condition, WHERE, AND, an upsert's SET list): SQL ignores case",
    "llmswitch.store.responses.xǁResponseStoreǁclear__mutmut_38":
        "the letter case of a SQL fragment (a condition, WHERE, AND, an upsert's SET list): SQL ignores case",
    "llmswitch.store.responses.xǁResponseStoreǁget__mutmut_14":
        "the letter case of a SQL fragment (a condition, WHERE, AND, an upsert's SET list): SQL ignores case",
    "llmswitch.store.responses.xǁResponseStoreǁget__mutmut_15":
        "the letter case of a SQL fragment (a condition, WHERE, AND, an upsert's SET list): SQL ignores case",
    "llmswitch.store.responses.xǁResponseStoreǁput__mutmut_7":
        "ensure_ascii=None instead of False: both are false",
    "llmswitch.ledger.x_start_of_next__mutmut_7":
        "37 h instead of 36 h past the start of a local day: anything from 25 h to 46 h lands in the next day (a "
        "local day is 23 to 25 hours long)",
    "llmswitch.ledger.x_start_of_next__mutmut_8":
        "36 x 3601 s (36 h 36 s) past the start of a local day: still inside the next day, as above",
    "llmswitch.ledger.x_start_of_next__mutmut_12":
        "33 days instead of 32 past the first of a month: anything from 31 to 56 days lands in the next month (a "
        "month is 28 to 31 days long)",
    "llmswitch.ledger.x_start_of_next__mutmut_13":
        "32 x 86401 s (32 days 32 s) past the first of a month: still inside the next month, as above",
    "llmswitch.ledger.xǁLedgerǁappend_all__mutmut_15":
        "the letter case of the INSERT's column list: SQL identifiers ignore case (the rule above wants a keyword "
        "on the line, and this line of the statement has none)",
    "llmswitch.ledger.xǁLedgerǁtotal__mutmut_1":
        "`since` defaulting to 1.0 instead of 0.0: no call is recorded in the first second of 1970",
    "llmswitch.router.plan.xǁCallPlanǁ_prefer_larger_windows__mutmut_26":
        "`windows(other) or 1` in the sort key of the larger members: each of them has a known window above the "
        "failing member's, never None or 0",
    "llmswitch.secrets.x_redact__mutmut_2":
        "`secret and secret in text` -> `or`: every remembered secret is non-empty (6 characters at least), and "
        "replacing a secret that is not in the text changes nothing",
}
# SQL keywords and identifiers are case-insensitive: a mutant that only changes the case of a SQL string
# literal cannot change what the database does.
SQL_LITERAL = re.compile(r"(\b(select|create|insert|update|delete|alter|pragma|begin|commit|rollback|drop)\b"
                         r"|\b(values|coalesce|sum|avg|count) ?\(|\b(order by|group by|is null|is not null)\b"
                         r"|^\s*\w+ (text|real|integer)\b)", re.IGNORECASE)
STRING_LITERAL = re.compile(r"([\"'])(.*?)\1")
# Python looks codecs up by a normalised, lower-cased name.
CODEC_NAMES = {"utf-8", "utf-8-sig", "utf8", "ascii", "latin-1"}


def changed_texts(removed: list[str], added: list[str]) -> list[str]:
    """The string literals a mutant changed (as they were), line by line; a changed line inside a
    triple-quoted string counts whole."""
    texts = []
    for old, new in zip(removed, added, strict=True):
        before = [match.group(2) for match in STRING_LITERAL.finditer(old)]
        after = [match.group(2) for match in STRING_LITERAL.finditer(new)]
        differing = [a for a, b in zip(before, after, strict=False) if a != b]
        texts += differing if differing and len(before) == len(after) else [old]
    return texts


def equivalence_reason(work: Path, mutant: str) -> str | None:
    """Why a surviving mutant cannot change behaviour, or None when it could."""
    if mutant in EQUIVALENT:
        return EQUIVALENT[mutant]
    shown = subprocess.run([_mutmut(), "show", mutant], cwd=work, capture_output=True, text=True).stdout
    removed = [line[1:] for line in shown.splitlines() if line.startswith("-") and not line.startswith("---")]
    added = [line[1:] for line in shown.splitlines() if line.startswith("+") and not line.startswith("+++")]
    if (removed and len(removed) == len(added) and removed != added
            and [line.lower() for line in removed] == [line.lower() for line in added]):
        # Only letter case changed: equivalent when every literal that changed is SQL (each one, not merely
        # one on the same line: `by == "day"` beside a SQL fragment is not SQL) or a codec name.
        texts = changed_texts(removed, added)
        if all(SQL_LITERAL.search(text) for text in texts):
            return "only the letter case of a SQL statement changed; SQL keywords and identifiers ignore case"
        if {text.lower() for text in texts} <= CODEC_NAMES:
            return "only the letter case of a codec name changed (`utf-8` -> `UTF-8`); codec names ignore case"
    return None


def _mutmut() -> str:
    return str(Path(sys.executable).with_name("mutmut"))


def _mutant_env(work: Path, mutant: str) -> dict[str, str]:
    """The environment child tests run in: ``mutant`` active, and a child process a test starts (``python -m
    llmswitch``, ``python -c``) imports the mutated tree, not the installed one. (Not for ``mutmut run``: its
    first pass records which functions each test runs, which fails in a child outside its folder.)"""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(work / "mutants"), env.get("PYTHONPATH")]))
    env["MUTANT_UNDER_TEST"] = mutant
    return env


def _run_child_tests(work: Path, mutant: str, tests: tuple[str, ...]) -> str:
    """``killed`` when ``tests`` fail with ``mutant`` active (in the tests' process and every child of it)."""
    # A mutant that stops the writer makes a flush wait for ever, in the test and again in its teardown: a
    # minute per test is plenty, and the thread method ends the whole run at the first one.
    command = [sys.executable, "-m", "pytest", *tests, "-x", "-q", "-p", "no:randomly", "-p", "no:cacheprovider",
               "--timeout", "60", "--timeout-method", "thread"]
    # In a session of its own: whatever the tests started (a child a mutant keeps from exiting) ends with it.
    run = subprocess.Popen(command, cwd=work / "mutants", env=_mutant_env(work, mutant), start_new_session=True,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        returncode: int | str = run.wait(timeout=300)
    except subprocess.TimeoutExpired:
        returncode = "timeout"
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(run.pid, signal.SIGKILL)
        run.wait()
    if returncode == "timeout":
        return "timeout"
    return "survived" if returncode == 0 else "killed"


def run_group(name: str, group: Group, *, children: int, rescore: bool = False) -> dict[str, object]:
    work = ROOT / ".mutate" / name
    started = time.monotonic()
    if not (rescore and (work / "mutants").is_dir()):
        _run_mutmut(work, group, children=children)
    return _score(name, group, work, children=children, started=started)


def _run_mutmut(work: Path, group: Group, *, children: int) -> None:
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    for part in ("llmswitch", "tests", "docs"):  # docs: tests run the plugin guide's example from its page
        shutil.copytree(ROOT / part, work / part, ignore=shutil.ignore_patterns("__pycache__", "__snapshots__"))
    pyproject = {
        "source_paths": ["llmswitch"],
        "only_mutate": list(group.modules),
        "also_copy": ["docs"],
        "pytest_add_cli_args": ["-p", "no:randomly", "-p", "no:cacheprovider", "-q", "-x"],
        "pytest_add_cli_args_test_selection": list(group.tests),
    }
    lines = ["[tool.mutmut]"] + [f"{key} = {json.dumps(value)}" for key, value in pyproject.items()]
    lines += ["", "[tool.pytest.ini_options]",
              'addopts = "-ra --allow-hosts=127.0.0.1,localhost,::1 --allow-unix-socket"', "timeout = 600"]
    (work / "pyproject.toml").write_text("\n".join(lines) + "\n")
    subprocess.run([_mutmut(), "run", "--max-children", str(children)], cwd=work, check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def _score(name: str, group: Group, work: Path, *, children: int, started: float) -> dict[str, object]:
    listing = subprocess.run([_mutmut(), "results", "--all", "true"], cwd=work, check=True, capture_output=True,
                             text=True).stdout
    outcomes: dict[str, str] = {}
    for line in listing.splitlines():
        mutant, _, outcome = line.strip().rpartition(": ")
        if mutant:
            outcomes[mutant] = outcome
    if group.child_tests:  # what mutmut could not try in child processes (see Group.child_tests)
        untested = [mutant for mutant, outcome in outcomes.items() if outcome in ("no tests", "survived")]
        with ThreadPoolExecutor(max_workers=children) as pool:
            for mutant, outcome in zip(untested, pool.map(lambda m: _run_child_tests(work, m, group.child_tests),
                                                          untested), strict=True):
                outcomes[mutant] = outcome
    killed = sorted(m for m, o in outcomes.items() if o in ("killed", "timeout"))  # a hang is caught too
    survived, equivalent = [], {}
    for mutant in sorted(m for m, o in outcomes.items() if o in ("survived", "no tests", "suspicious")):
        reason = equivalence_reason(work, mutant)
        if reason is None:
            survived.append(mutant)
        else:
            equivalent[mutant] = reason
    counted = len(killed) + len(survived)
    return {"group": name, "modules": list(group.modules), "mutants": len(outcomes), "killed": len(killed),
            "equivalent": len(equivalent), "equivalent_reasons": equivalent, "survived": survived,
            "kill_rate": round(len(killed) / counted, 4) if counted else 1.0,
            "seconds": round(time.monotonic() - started, 1)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("groups", nargs="*", help="groups to run (default: all)")
    parser.add_argument("--list", action="store_true", help="list the groups")
    parser.add_argument("--children", type=int, default=2, help="mutants tested at once")
    parser.add_argument("--json", type=Path, help="also write the results here")
    parser.add_argument("--rescore", action="store_true",
                        help="score the last run's mutants in .mutate/GROUP again without running mutmut (only "
                             "the child tests run again)")
    args = parser.parse_args(argv)
    if args.list:
        for name, group in GROUPS.items():
            print(f"{name:12} {', '.join(group.modules)}: {group.why}")
        return 0
    unknown = [name for name in args.groups if name not in GROUPS]
    if unknown:
        parser.error(f"unknown group(s) {', '.join(unknown)}; known: {', '.join(GROUPS)}")
    results = []
    for name in args.groups or list(GROUPS):
        result = run_group(name, GROUPS[name], children=args.children, rescore=args.rescore)
        results.append(result)
        print(f"{name:12} {result['killed']}/{result['mutants'] - result['equivalent']} killed "  # type: ignore[operator]
              f"({result['kill_rate']:.0%}), {result['equivalent']} equivalent, {result['seconds']} s", flush=True)
        for mutant in result["survived"]:  # type: ignore[attr-defined]
            print(f"    survived: {mutant}")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")
    below = [r["group"] for r in results if r["kill_rate"] < GOAL]  # type: ignore[operator]
    if below:
        print(f"mutate: below the {GOAL:.0%} goal: {', '.join(below)} (see `mutmut show NAME` in .mutate/GROUP)",
              file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
