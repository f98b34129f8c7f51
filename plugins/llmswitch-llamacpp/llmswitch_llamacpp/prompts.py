"""Prompt formats: how a conversation becomes the text a model continues.

Chosen once per model (``choose_format``): the ``chat_format`` option when set, else the chat template in
the GGUF metadata when there is one, else by model family. A model with no template is most likely a base
model, and base models answer a plain transcript best: measured on the embedded Gemma 3 270M, Gemma's own
turn markers make it repeat the question, while ``Q: ...`` / ``A:`` with a stop at the next ``Q:`` answers
"The capital of France is Paris."

The rendered text is tokenized with special tokens enabled, so turn markers become the model's control
tokens; ``add_bos`` says whether the tokenizer should still add the beginning-of-sequence token.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from llmswitch.kit import InvalidOptionError, Message
from llmswitch_llamacpp.defaults import AUTO, FORMATS, TEMPLATE, TRANSCRIPT

# Words in a model's name that mark a model tuned to follow turns (it has a chat format even without a template).
_TUNED_MARKERS = ("instruct", "-it", " it", "chat", "-sft")


@dataclass(frozen=True)
class FormatChoice:
    """The format to use for a model and why (shown by ``doctor``)."""

    name: str
    reason: str
    template: str | None = None


@dataclass(frozen=True)
class Prompt:
    """A rendered prompt: the text, the stop sequences the format needs, and whether to add BOS."""

    text: str
    stop: tuple[str, ...]
    add_bos: bool = True


def choose_format(requested: str | None, metadata: Mapping[str, Any], reason: str | None = None) -> FormatChoice:
    """Pick the prompt format for a model from the ``chat_format`` option and the GGUF metadata.

    ``reason`` says why a named format was requested when it was not the profile's own choice.
    """
    template = metadata.get("tokenizer.chat_template")
    template = template if isinstance(template, str) and template.strip() else None
    if requested and requested != AUTO:
        if requested == TEMPLATE and template is None:
            raise InvalidOptionError(
                "chat_format = 'template' but this model's GGUF metadata has no chat template",
                remedy="choose a named format (" + ", ".join(FORMATS[2:]) + ") or remove chat_format",
            )
        return FormatChoice(requested, reason or "set by the chat_format option",
                            template if requested == TEMPLATE else None)
    if template is not None:
        return FormatChoice(TEMPLATE, "the chat template in the GGUF metadata", template)
    architecture = str(metadata.get("general.architecture", "")).lower()
    naming = " ".join(
        str(metadata.get(key, "")) for key in ("general.name", "general.basename", "general.finetune")
    ).lower()
    if any(marker in naming for marker in _TUNED_MARKERS):
        if architecture.startswith("gemma"):
            return FormatChoice("gemma", f"an instruction-tuned {architecture} model without a template")
        if architecture.startswith("qwen"):
            return FormatChoice("chatml", f"an instruction-tuned {architecture} model without a template")
        if architecture == "llama" and "3" in naming:
            return FormatChoice("llama-3", "an instruction-tuned Llama 3 model without a template")
    return FormatChoice(
        TRANSCRIPT, f"no chat template in the GGUF metadata: a base {architecture or 'unknown'} model"
    )


def conversation(messages: Sequence[Message], system: str | None) -> list[Message]:
    """The request's system prompt as a leading system message, then the messages."""
    turns = [Message("system", system)] if system else []
    turns.extend(messages)
    return turns


def render(choice: FormatChoice, turns: Sequence[Message], *, bos_token: str = "", eos_token: str = "") -> Prompt:
    """Render ``turns`` (see :func:`conversation`) in the chosen format, ready for the model to answer."""
    if choice.name == TEMPLATE:
        return _render_template(choice.template or "", turns, bos_token, eos_token)
    renderer = _RENDERERS.get(choice.name)
    if renderer is None:
        raise InvalidOptionError(
            f"unknown chat_format '{choice.name}'", remedy="choose one of " + ", ".join(FORMATS)
        )
    return renderer(turns)


def _transcript(turns: Sequence[Message]) -> Prompt:
    lines: list[str] = []
    preamble = [turn.content for turn in turns if turn.role == "system"]
    if preamble:
        lines.append("\n".join(preamble) + "\n")
    for turn in turns:
        if turn.role == "user":
            lines.append(f"Q: {turn.content}")
        elif turn.role == "assistant":
            lines.append(f"A: {turn.content}")
    lines.append("A:")
    # A new "Q:" or "A:" line means the model has moved on to writing the next turns itself.
    return Prompt("\n".join(lines), stop=("\nQ:", "\nA:"))


def _gemma(turns: Sequence[Message]) -> Prompt:
    # Gemma has no system role: its own template puts the system text at the top of the first user turn.
    system = "\n\n".join(turn.content for turn in turns if turn.role == "system")
    parts: list[str] = []
    for turn in turns:
        if turn.role == "system":
            continue
        content = turn.content
        if system and turn.role == "user":
            content, system = f"{system}\n\n{content}", ""
        role = "model" if turn.role == "assistant" else "user"
        parts.append(f"<start_of_turn>{role}\n{content}<end_of_turn>\n")
    parts.append("<start_of_turn>model\n")
    return Prompt("".join(parts), stop=("<end_of_turn>",))


def _chatml(turns: Sequence[Message]) -> Prompt:
    body = "".join(f"<|im_start|>{turn.role}\n{turn.content}<|im_end|>\n" for turn in turns)
    return Prompt(body + "<|im_start|>assistant\n", stop=("<|im_end|>",))


def _llama3(turns: Sequence[Message]) -> Prompt:
    body = "".join(
        f"<|start_header_id|>{turn.role}<|end_header_id|>\n\n{turn.content}<|eot_id|>" for turn in turns
    )
    return Prompt(body + "<|start_header_id|>assistant<|end_header_id|>\n\n", stop=("<|eot_id|>",))


_RENDERERS = {TRANSCRIPT: _transcript, "gemma": _gemma, "chatml": _chatml, "llama-3": _llama3}


def _render_template(template: str, turns: Sequence[Message], bos_token: str, eos_token: str) -> Prompt:
    """Render a Hugging Face style Jinja chat template, sandboxed, the way llama-cpp-python does."""
    from datetime import datetime

    import jinja2
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    def raise_exception(message: str) -> None:
        raise jinja2.TemplateError(message)

    try:
        environment = ImmutableSandboxedEnvironment(loader=jinja2.BaseLoader(), trim_blocks=True, lstrip_blocks=True)
        text = environment.from_string(template).render(
            messages=[{"role": turn.role, "content": turn.content} for turn in turns],
            bos_token=bos_token,
            eos_token=eos_token,
            add_generation_prompt=True,
            raise_exception=raise_exception,
            strftime_now=lambda fmt: datetime.now().strftime(fmt),
        )
    except jinja2.TemplateError as exc:
        raise InvalidOptionError(
            f"the model's chat template refused this conversation: {exc}",
            remedy="set chat_format to a named format (" + ", ".join(FORMATS[2:]) + ") to bypass the template",
        ) from None
    # Templates usually write the BOS token themselves; adding another would double it.
    starts_with_bos = bool(bos_token) and text.startswith(bos_token)
    stop = (eos_token,) if eos_token else ()
    return Prompt(text, stop=stop, add_bos=not starts_with_bos)
