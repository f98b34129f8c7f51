"""The CI gate in tests/conftest.py: under CI=true a skip fails unless ALLOWED_SKIPS names the test."""

from __future__ import annotations

from pathlib import Path

import pytest

CONFTEST = Path(__file__).with_name("conftest.py")
ALLOWED = "test_spend_earlier_this_month_does_not_count_against_the_daily_budget"  # on the allow-list


@pytest.fixture
def suite(pytester: pytest.Pytester) -> pytest.Pytester:
    pytester.makeconftest(CONFTEST.read_text(encoding="utf-8"))
    tests = pytester.mkdir("tests")
    (tests / "test_mutation_survivors.py").write_text(
        f"import pytest\n\ndef {ALLOWED}():\n    pytest.skip('first of the month')\n")
    (tests / "test_unlisted.py").write_text(
        "import pytest\n\ndef test_needs_a_gpu():\n    pytest.skip('no GPU here')\n\ndef test_fine():\n    pass\n")
    (tests / "test_whole_module.py").write_text("import pytest\n\npytest.importorskip('no_such_module_xyz')\n")
    return pytester


def test_under_ci_an_unlisted_skip_fails_and_a_listed_one_skips(suite: pytest.Pytester,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CI", "true")
    result = suite.runpytest_subprocess(
        "-p", "no:randomly", "-p", "no:cacheprovider", "--continue-on-collection-errors")
    outcomes = result.parseoutcomes()
    assert (outcomes.get("passed"), outcomes.get("skipped"), outcomes.get("failed"), outcomes.get("errors")) == (
        1, 1, 1, 1), result.stdout.str()
    result.stdout.fnmatch_lines(["tests/test_mutation_survivors.py s*", "tests/test_unlisted.py F.*"])
    result.stdout.fnmatch_lines(["*test_needs_a_gpu was skipped in CI (*no GPU here*add it to ALLOWED_SKIPS*"])
    assert "test_whole_module.py was skipped in CI" in result.stdout.str()


def test_outside_ci_every_skip_is_a_skip(suite: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CI", raising=False)
    outcomes = suite.runpytest_subprocess("-p", "no:randomly", "-p", "no:cacheprovider", "--continue-on-collection-errors").parseoutcomes()
    assert (outcomes.get("passed"), outcomes.get("skipped"), outcomes.get("failed")) == (1, 3, None)
