"""Router logic written once for both ``for`` and ``async for``: a *program* is a generator that yields the
steps it needs done and receives their results; a runner does the steps, blocking or awaited.

A step on the router state is an :class:`Ask` (a :class:`~llmswitch.router.state.RouterState` method's name
and arguments): :func:`drive` calls the method, :func:`adrive` awaits its ``a``-prefixed twin (a state's failure propagates
out of them). The call driver (:mod:`llmswitch.router.driver`) adds steps of its own (sleep, send an attempt)
on top of the same shape.

This is the shape httpcore gets from ``unasync`` and the SDKs from shared request builders: the rules live in
the program, and the two runners hold no rule.
"""

from __future__ import annotations

from collections.abc import Generator
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from llmswitch.router.state import RouterState

Result = TypeVar("Result")
Step = TypeVar("Step")


@dataclass(frozen=True, slots=True)
class Ask:
    """Call ``method`` of the router state with ``args`` (awaited as ``a`` + ``method`` on the async path)."""

    method: str
    args: tuple[Any, ...]


Program = Generator[Ask, Any, Result]


class Stepper(Generic[Step, Result]):
    """Advances a program: hands it the last step's result (``reply``) or exception (``failure``) and takes
    its next step. A runner loops ``while (step := stepper.next()) is not None``, then reads ``result``."""

    def __init__(self, program: Generator[Step, Any, Result]) -> None:
        self.program = program
        self.reply: Any = None
        self.failure: Exception | None = None
        self.result: Result | None = None

    def next(self) -> Step | None:
        """The next step, or None once the program has returned (its value is then ``result``)."""
        reply, failure, self.reply, self.failure = self.reply, self.failure, None, None
        try:
            return self.program.send(reply) if failure is None else self.program.throw(failure)
        except StopIteration as done:
            self.result = done.value
            return None


def drive(program: Program[Result], state: RouterState) -> Result:
    """Run a program whose only steps are :class:`Ask`, calling ``state``'s methods."""
    stepper = Stepper(program)
    while (ask := stepper.next()) is not None:
        stepper.reply = getattr(state, ask.method)(*ask.args)
    return stepper.result  # type: ignore[return-value]


async def adrive(program: Program[Result], state: RouterState) -> Result:
    """:func:`drive`, awaiting the state's async twins."""
    stepper = Stepper(program)
    while (ask := stepper.next()) is not None:
        stepper.reply = await getattr(state, "a" + ask.method)(*ask.args)
    return stepper.result  # type: ignore[return-value]
