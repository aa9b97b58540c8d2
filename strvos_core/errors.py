"""The one exception type strvos raises for bad models, checkpoints and inputs it can name."""
from __future__ import annotations


class StrvosError(ValueError):
    """A problem with something the user gave (a checkpoint, a config, a frame, an expression).

    Subclasses ValueError so callers that validate input generically still catch it.
    """
