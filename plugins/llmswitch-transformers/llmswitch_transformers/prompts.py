"""How a conversation becomes the tokens a model continues: its tokenizer's chat template, or a transcript.

A tokenizer with a chat template (every instruction-tuned model on the Hub has one) renders the conversation
itself. Without one the model is most likely a base model, and base models continue a plain transcript best:
``Q: ...`` / ``A:``, stopping when the model starts writing the next turn.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from llmswitch.kit import InvalidOptionError, Request

TRANSCRIPT_STOPS = ("\nQ:", "\nA:")


@dataclass(frozen=True)
class Prompt:
    """The prompt's token ids, the format that made them, and the stop sequences that format needs."""

    token_ids: list[int]
    format: str
    stop: tuple[str, ...] = ()


def choose_format(chat_format: str, tokenizer: Any) -> str:
    """``template`` or ``transcript``: the option when set, else whether the tokenizer has a template."""
    has_template = bool(getattr(tokenizer, "chat_template", None))
    if chat_format == "template" and not has_template:
        raise InvalidOptionError("chat_format = 'template', but this model's tokenizer has no chat template",
                                 remedy="remove chat_format (or set it to transcript)")
    if chat_format in ("template", "transcript"):
        return chat_format
    if chat_format != "auto":
        raise InvalidOptionError(f"unknown chat_format {chat_format!r}", remedy="choose auto, template or transcript")
    return "template" if has_template else "transcript"


def render(tokenizer: Any, chat_format: str, request: Request) -> Prompt:
    """Render and tokenize ``request`` exactly as it will be fed to the model."""
    turns = [{"role": "system", "content": request.system}] if request.system else []
    turns += [{"role": message.role, "content": message.content} for message in request.messages]
    chosen = choose_format(chat_format, tokenizer)
    if chosen == "transcript":
        return Prompt(list(tokenizer(transcript(turns))["input_ids"]), chosen, TRANSCRIPT_STOPS)
    try:
        text = tokenizer.apply_chat_template(turns, tokenize=False, add_generation_prompt=True)
    except Exception as exc:  # jinja2's TemplateError and the template's own raise_exception
        raise InvalidOptionError(
            f"the model's chat template refused this conversation: {exc}",
            remedy="set chat_format = \"transcript\" to bypass the template (some templates refuse a system "
            "prompt: drop it, or put it in the first message)",
        ) from None
    # The template writes the special tokens (BOS, turn markers) itself: adding them again would double them.
    return Prompt(list(tokenizer(text, add_special_tokens=False)["input_ids"]), chosen)


def transcript(turns: list[dict[str, str]]) -> str:
    """System text first, then ``Q:`` / ``A:`` lines, ending with an open ``A:`` for the model to fill."""
    lines = ["\n".join(turn["content"] for turn in turns if turn["role"] == "system")] if any(
        turn["role"] == "system" for turn in turns) else []
    if lines:
        lines[0] += "\n"
    for turn in turns:
        if turn["role"] != "system":
            lines.append(f"{'Q' if turn['role'] == 'user' else 'A'}: {turn['content']}")
    lines.append("A:")
    return "\n".join(lines)
