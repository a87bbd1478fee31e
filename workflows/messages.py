"""Core: the base of every command and event, and the rejection."""

from __future__ import annotations

from typing import Annotated

from pydantic import AwareDatetime, ConfigDict, Field

from workflows.text import Cleaned

Token = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]{0,39}$")]
EntityId = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_:\-]{0,127}$")]
Actor = Annotated[str, Field(min_length=1, max_length=200)]
Reason = Annotated[str, Field(max_length=2000)]
Priority = Annotated[int, Field(ge=1, le=4)]


class Frozen(Cleaned):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Command(Frozen):
    """Something someone (or a timer) asks for, at a time the shell supplies."""

    at: AwareDatetime
    by: Actor = "system"


class Event(Frozen):
    """Something that happened; the record."""

    at: AwareDatetime


class Rejected(Exception):
    """The decider refused a command; ``reason`` is meant for a person."""

    def __init__(self, code: str, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason
