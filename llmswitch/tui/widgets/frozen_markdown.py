"""Finished Markdown drawn as one widget: how long answers stay fast.

Textual's ``Markdown`` builds a widget for every block (and for every list item and paragraph inside it);
a 20,000-token answer makes thousands, and laying them out takes seconds. So an answer keeps only its last
blocks in a live ``Markdown`` (fed by ``MarkdownStream``), and the blocks before them are drawn by
:class:`FrozenMarkdown`: the same parser, styles close to Textual's, code highlighted by Textual's own
highlighter, all in a single widget.

A frozen widget is cheap until it is seen: its height is counted from the text without styling or wrapping
it (:func:`wrapped_height`), and code is highlighted only when the widget is first drawn. A long answer
scrolled past costs its parse and its text, not the highlighting and wrapping of every block.
"""

from __future__ import annotations

import re

from markdown_it import MarkdownIt
from markdown_it.token import Token
from rich._wrap import divide_line
from rich.cells import cell_len
from textual.content import Content, Span
from textual.geometry import Size
from textual.highlight import HighlightTheme, highlight
from textual.widget import Widget

from llmswitch.record import record

HEADING_STYLES = {
    1: "bold underline $markdown-h1-color",
    2: "underline $markdown-h2-color",
    3: "bold $markdown-h3-color",
    4: "italic $markdown-h4-color",
    5: "italic $markdown-h5-color",
    6: "dim italic $markdown-h6-color",
}
BULLETS = ("• ", "▪ ", "‣ ", "⭑ ", "◦ ")
CODE_BACKGROUND = "on $boost"
INLINE_STYLES = {"em_open": "italic", "strong_open": "bold", "s_open": "strike"}


def join(separator: str, items: list[Content | str]) -> Content:
    """``Content(separator).join(items)``, the same text and spans, built in one pass.

    Textual's ``join`` copies the text a character at a time and strips control codes again from the whole
    result; rendering a long answer joins every line this way several times over. The pieces here are
    already Content (control codes stripped when they were made) or plain prefixes of our own."""
    texts: list[str] = []
    spans: list[Span] = []
    offset = 0
    for index, item in enumerate(items):
        if index and separator:
            texts.append(separator)
            offset += len(separator)
        if isinstance(item, str):
            texts.append(item)
            offset += len(item)
            continue
        text = item.plain
        if text:
            spans.extend(Span(offset + start, offset + end, style) for start, end, style in item.spans if style)
            texts.append(text)
            offset += len(text)
    return Content("".join(texts), spans, strip_control_codes=False)


def wrapped_height(text: str, width: int) -> int:
    """How many lines ``Content(text)`` takes at ``width`` cells (wrapped at words, long words folded), as
    ``Content.get_height`` counts them, without making the lines: a line that fits is one line."""
    height = 0
    for line in text.split("\n"):
        if "\t" in line:
            line = Content(line, strip_control_codes=False).expand_tabs(8).plain
        if (len(line) <= width and line.isascii()) or cell_len(line) <= width:
            height += 1
        else:
            height += len(divide_line(line, width, fold=True)) + 1
    return height


def parser() -> MarkdownIt:
    return MarkdownIt("gfm-like")  # what Textual's Markdown uses, so both agree on where blocks end


def top_level_blocks(tokens: list[Token]) -> list[int]:
    """The index in ``tokens`` where every top-level block starts."""
    return [index for index, token in enumerate(tokens) if token.level == 0 and token.nesting >= 0]


@record(slots=False)
class Segment:
    """Some finished top-level blocks: their source and their tokens (parsed once, drawn from these)."""

    source: str
    tokens: list[Token]


def plan(source: str, keep: int, per_segment: int) -> tuple[list[Segment], str, int]:
    """Split Markdown before its last ``keep`` top-level blocks, parsing it once.

    Returns the finished part cut into segments of at most ``per_segment`` blocks, the rest (the live
    tail), and how many top-level blocks there are in all."""
    tokens = parser().parse(source)
    starts = top_level_blocks(tokens)
    if len(starts) <= keep:
        return [], source, len(starts)
    lines = source.splitlines(keepends=True)
    frozen_blocks = starts[: len(starts) - keep]
    cut_token = starts[len(starts) - keep]
    segments: list[Segment] = []
    for first in range(0, len(frozen_blocks), per_segment):
        begin = frozen_blocks[first]
        end = frozen_blocks[first + per_segment] if first + per_segment < len(frozen_blocks) else cut_token
        line_begin = tokens[begin].map[0] if tokens[begin].map else 0  # type: ignore[index]
        line_end = tokens[end].map[0] if tokens[end].map else len(lines)  # type: ignore[index]
        segments.append(Segment("".join(lines[line_begin:line_end]), tokens[begin:end]))
    tail_line = tokens[cut_token].map[0] if tokens[cut_token].map else len(lines)  # type: ignore[index]
    return segments, "".join(lines[tail_line:]), len(starts)


def inline_content(token: Token) -> Content:
    """An inline token (a paragraph's or heading's text) as styled Content."""
    parts: list[str] = []
    spans: list[Span] = []
    stack: list[tuple[str, int]] = []
    position = 0

    def add(text: str) -> None:
        nonlocal position
        parts.append(text)
        position += len(text)

    for child in token.children or []:
        kind = child.type
        if kind == "text":
            add(re.sub(r"\s+", " ", child.content))
        elif kind == "softbreak":
            add(" ")
        elif kind == "hardbreak":
            add("\n")
        elif kind == "code_inline":
            start = position
            add(child.content)
            spans.append(Span(start, position, "$text-warning on $warning 10%"))
        elif kind in INLINE_STYLES:
            stack.append((INLINE_STYLES[kind], position))
        elif kind == "link_open":
            stack.append(("underline $text-accent", position))
        elif kind.endswith("_close") and stack:
            style, start = stack.pop()
            spans.append(Span(start, position, style))
        elif kind == "image":
            add(child.content or str(child.attrs.get("alt", "")))
        elif kind == "html_inline":
            add(child.content)
    return Content("".join(parts), spans)


def code_content(code: str, language: str, *, highlighted: bool = True) -> Content:
    """A code block: highlighted like Textual's fences, indented, on a background as wide as its lines.
    Not ``highlighted``: the same text, unstyled (what its size is measured from)."""
    code = code.rstrip("\n")
    if highlighted:
        body = highlight(code, language=language or None, theme=HighlightTheme)
    else:
        body = Content("\n".join(code.splitlines()))  # the text ``highlight`` returns (its line ends unified)
    lines = body.split("\n")
    width = max((line.cell_length for line in lines), default=0) + 2
    padded = [join("", ["  ", line, " " * (width - line.cell_length)]).stylize(CODE_BACKGROUND) for line in lines]
    blank = Content(" " * (width + 2)).stylize(CODE_BACKGROUND)
    return join("\n", [blank, *padded, blank])


def render_markdown(source: str) -> Content:
    """Markdown as one Content: blocks separated by blank lines, lists indented, code highlighted."""
    return render_tokens(parser().parse(source))


def render_tokens(tokens: list[Token], *, highlighted: bool = True) -> Content:
    """Parsed Markdown (whole top-level blocks) as one Content; code unstyled unless ``highlighted``."""
    blocks: list[Content] = []
    lists: list[list[int]] = []  # per open list: [next number] for ordered, [] for bullets
    quote_depth = 0
    index = 0

    def prefix() -> str:
        return "▌ " * quote_depth

    def emit(content: Content, first_prefix: str = "", rest_prefix: str = "", tight: bool = False) -> None:
        lead = prefix()
        if lead or first_prefix or rest_prefix or content.plain.endswith("\n"):
            lines = content.split("\n")
            decorated = [join("", [lead + (first_prefix if i == 0 else rest_prefix), line])
                         for i, line in enumerate(lines)]
            joined = join("\n", decorated)  # type: ignore[arg-type]
        else:
            joined = content  # nothing to put before its lines
        if tight and blocks:
            blocks[-1] = join("\n", [blocks[-1], joined])
        else:
            blocks.append(joined)

    item_marker: str | None = None
    list_starts = False
    while index < len(tokens):
        token = tokens[index]
        kind = token.type
        indent = "  " * max(0, len(lists) - 1)
        if kind == "heading_open":
            level = int(token.tag[1:])
            emit(inline_content(tokens[index + 1]).stylize(HEADING_STYLES.get(level, "bold")))
            index += 3
            continue
        if kind == "paragraph_open":
            content = inline_content(tokens[index + 1])
            if item_marker is not None:
                emit(content, indent + item_marker, indent + " " * len(item_marker), tight=not list_starts)
                item_marker, list_starts = None, False
            elif lists:
                emit(content, indent + "  ", indent + "  ", tight=True)
            else:
                emit(content)
            index += 3
            continue
        if kind in ("bullet_list_open", "ordered_list_open"):
            start = int(token.attrs.get("start", 1) or 1) if kind == "ordered_list_open" else 0
            lists.append([start] if kind == "ordered_list_open" else [])
            list_starts = len(lists) == 1  # a top-level list starts a new block; a nested one continues
        elif kind in ("bullet_list_close", "ordered_list_close"):
            lists.pop()
        elif kind == "list_item_open":
            current = lists[-1] if lists else []
            if current:
                item_marker = f"{current[0]}. "
                current[0] += 1
            else:
                item_marker = BULLETS[(len(lists) - 1) % len(BULLETS)]
        elif kind in ("fence", "code_block"):
            language = token.info.strip().split(" ")[0] if token.info else ""
            emit(code_content(token.content, language, highlighted=highlighted), indent, indent, tight=bool(lists))
        elif kind == "blockquote_open":
            quote_depth += 1
        elif kind == "blockquote_close":
            quote_depth -= 1
        elif kind == "hr":
            emit(Content("─" * 40).stylize("$secondary"))
        elif kind == "html_block":
            emit(Content(token.content.rstrip("\n")))
        elif kind == "table_open":
            index = _table(tokens, index, emit)
            continue
        index += 1
    return join("\n\n", blocks)  # type: ignore[arg-type]


def _table(tokens: list[Token], index: int, emit) -> int:  # type: ignore[no-untyped-def]
    """A table as aligned columns; returns the index after it."""
    rows: list[list[Content]] = []
    header_rows = 0
    in_header = False
    while tokens[index].type != "table_close":
        token = tokens[index]
        if token.type == "thead_open":
            in_header = True
        elif token.type == "thead_close":
            in_header = False
        elif token.type == "tr_open":
            rows.append([])
            header_rows += 1 if in_header else 0
        elif token.type == "inline" and rows:
            rows[-1].append(inline_content(token))
        index += 1
    widths = [max((row[i].cell_length for row in rows if i < len(row)), default=0)
              for i in range(max((len(row) for row in rows), default=0))]
    lines = []
    for number, row in enumerate(rows):
        cells = [cell.append(" " * (widths[i] - cell.cell_length)) for i, cell in enumerate(row)]
        line = join(" │ ", cells)  # type: ignore[arg-type]
        lines.append(line.stylize("bold") if number < header_rows else line)
        if number == header_rows - 1:
            lines.append(Content("─┼─".join("─" * width for width in widths)).stylize("$secondary"))
    emit(join("\n", lines))  # type: ignore[arg-type]
    return index + 1


class FrozenMarkdown(Widget):
    """Finished Markdown blocks in a single widget, styled and highlighted only once it is drawn."""

    DEFAULT_CSS = """
    FrozenMarkdown {
        height: auto;
        padding: 0 0 1 0;
    }
    """

    def __init__(self, segment: Segment) -> None:
        super().__init__(classes="frozen")
        self.source = segment.source
        self._tokens = segment.tokens
        self._text: str | None = None  # the text as drawn, for its height
        self._styled: Content | None = None
        self._height: tuple[int, int] = (-1, 0)  # (width, height)

    @property
    def drawn(self) -> bool:
        """Whether it has been drawn (so styled and highlighted) yet."""
        return self._styled is not None

    def render(self) -> Content:
        if self._styled is None:
            self._styled = render_tokens(self._tokens)
            self._text = self._styled.plain
        return self._styled

    def get_content_height(self, container: Size, viewport: Size, width: int) -> int:
        if self._height[0] != width:
            if self._text is None:
                self._text = render_tokens(self._tokens, highlighted=False).plain
            self._height = (width, wrapped_height(self._text, width) if width > 0 else 0)
        return self._height[1]
