"""Typed target commands a real-time pipeline accepts, and the answer each one gets at once.

Clients (a ROS topic, a service, a test) build these; `Pipeline.submit` checks one against the target registry
and answers with a `CommandAck`: accepted with the index of the first frame it applies to, or refused with the
reason. No string actions: a command's type is its action.
"""
from __future__ import annotations

from dataclasses import dataclass, field

DEFAULT_TARGET = "default"  # the target a bare prompt (SetPrompt, /strvos/prompt) sets


@dataclass(frozen=True)
class AddTarget:
    """Add a named target, or replace the prompt of an existing one (its tracking restarts)."""

    target_id: str
    prompt: str


@dataclass(frozen=True)
class SetPrompt:
    """Set the prompt of the default target (added when absent)."""

    prompt: str

    @property
    def target_id(self) -> str:
        return DEFAULT_TARGET


@dataclass(frozen=True)
class RemoveTarget:
    target_id: str


@dataclass(frozen=True)
class ClearTargets:
    """Remove every target."""

    @property
    def target_id(self) -> str:
        return ""


@dataclass(frozen=True)
class ResetTracking:
    """Forget every target's temporal state and tracking history (targets stay), e.g. when a bag loops."""

    @property
    def target_id(self) -> str:
        return ""


Command = AddTarget | SetPrompt | RemoveTarget | ClearTargets | ResetTracking


@dataclass(frozen=True)
class CommandAck:
    """The answer to one command.

    accepted: the change is in force from frame ``frame_index`` on (the pipeline's count of processed frames;
    the next frame it processes when the command was accepted). ``applied`` is False in the answer given at
    once and True in the copy a FrameResult carries for the frame it was applied to. Refused: ``message`` says
    why and nothing changed. ``prompt`` is the cleaned prompt (what the model reads) when accepted."""

    command: Command | None  # None: the request named no command at all (e.g. an unknown action number)
    accepted: bool
    message: str
    frame_index: int
    active_targets: list[str] = field(default_factory=list)
    prompt: str = ""
    applied: bool = False

    @property
    def target_id(self) -> str:
        return "" if self.command is None else self.command.target_id
