"""Frozen Markdown, the finished blocks of a long answer: the same text and styles as before it was made
lazy, its height counted without drawing it, and its code highlighted only once it is seen."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st
from textual.content import Content, Span

from llmswitch.tui.widgets.frozen_markdown import join, parser, render_tokens, wrapped_height

# What Content strips from its text (bell, backspace, VT, FF, CR): the pieces joined are already free of them.
STRIPPED = "\x07\x08\x0b\x0c\x0d"
TEXT = st.text(alphabet=st.characters(blacklist_characters=STRIPPED), max_size=20)
STYLE = st.sampled_from(["bold", "italic", "$text-accent", "on $boost", ""])


@st.composite
def styled(draw: st.DrawFn) -> Content:
    text = draw(TEXT)
    ends = st.integers(0, len(text))
    spans = draw(st.lists(st.tuples(ends, ends, STYLE), max_size=4))
    return Content(text, [Span(min(a, b), max(a, b), style) for a, b, style in spans])


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(["", "\n", "\n\n", " │ ", "  "]), st.lists(st.one_of(styled(), TEXT), max_size=6))
def test_join_gives_the_text_and_spans_textuals_join_gives(separator: str, items: list[Content | str]) -> None:
    assert join(separator, items).is_same(Content(separator).join(items))


@settings(max_examples=300, deadline=None)
@given(st.lists(st.one_of(styled(), st.just("\n")), min_size=1, max_size=6))
def test_a_block_without_prefixes_is_drawn_the_same_without_being_split_into_lines(pieces: list[Content | str]) -> None:
    """Why ``emit`` keeps such a block whole: splitting it into lines and joining them again (what a block with a
    prefix goes through) changes how its spans are cut, never what is drawn on any line."""
    content = join("", pieces)
    if content.plain.endswith("\n"):
        return  # split drops a last empty line: such a block takes the long way
    split_and_joined = join("\n", [join("", ["", line]) for line in content.split("\n")])  # type: ignore[misc]

    def drawn(item: Content) -> list[list[object]]:
        return [list(line.render_segments()) for line in item.split("\n", allow_blank=True)]

    assert split_and_joined.plain == content.plain and drawn(split_and_joined) == drawn(content)


LINE_PIECES = st.sampled_from(["word", "a", "longerword" * 3, " ", "  ", "\t", "\n", "漢字", "é", "e\u0301", "-"])


@settings(max_examples=400, deadline=None)
@given(st.lists(LINE_PIECES, max_size=60).map("".join), st.integers(1, 50))
def test_the_counted_height_is_the_height_textual_lays_out(text: str, width: int) -> None:
    assert wrapped_height(text, width) == Content(text).get_height({}, width)


BLOCKS = st.sampled_from([
    "## A heading with `code`", "Plain paragraph with **bold**, *em* and a [link](https://example.com).",
    "- one\n- two with `x`\n  - nested", "1. first\n2. second", "> quoted\n> text", "---",
    "```python\ndef f(x):\n\treturn x  # tab\n```", "```\nno language\r\nline two\n```", "    indented code",
    "```nosuchlanguage\nsome code\n```", "| a | b |\n|---|---|\n| 1 | **2** |", "<div>html</div>",
    "line one  \nhard break", "漢字の段落 " * 12,
])


@settings(max_examples=60, deadline=None)
@given(st.lists(BLOCKS, min_size=1, max_size=8).map("\n\n".join))
def test_unhighlighted_code_has_the_highlighted_text(markdown: str) -> None:
    """The height is counted from the unhighlighted text; drawn, the widget must take exactly that height."""
    tokens = parser().parse(markdown)
    drawn = render_tokens(tokens)
    measured = render_tokens(tokens, highlighted=False)
    assert measured.plain == drawn.plain
    assert all(wrapped_height(measured.plain, width) == drawn.get_height({}, width) for width in (20, 77, 116))
