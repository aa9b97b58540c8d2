"""The one error type of the readers: a StrvosError (a ValueError) whose message names the offending file."""
from __future__ import annotations

from strvos_core.errors import StrvosError


class DatasetError(StrvosError):
    """A benchmark folder or file is missing, malformed, or inconsistent with the others."""
