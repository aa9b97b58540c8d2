"""Backend registry: names from the "strvos.backends" entry points (plus the built-in ones when not installed)."""
from __future__ import annotations

import importlib
from importlib.metadata import entry_points

from strvos_core.errors import StrvosError

GROUP = "strvos.backends"
BUILTIN = {
    "streamingrvos": "strvos_core.backends.streaming:StreamingRVOSBackend",
    "streamingrvos-no-state": "strvos_core.backends.streaming:StreamingRVOSNoStateBackend",
    "sa2va-offline": "strvos_core.backends.offline:OfflineSa2VABackend",
}


def _registry() -> dict[str, str]:
    found = dict(BUILTIN)
    for ep in entry_points(group=GROUP):
        found[ep.name] = ep.value
    return found


def available() -> list[str]:
    """Registered backend names."""
    return sorted(_registry())


def load_class(name: str) -> type:
    registry = _registry()
    if name not in registry:
        raise StrvosError(f"unknown backend {name!r}; available: {sorted(registry)}")
    module_name, _, attr = registry[name].partition(":")
    return getattr(importlib.import_module(module_name), attr)


def create(name: str, **kwargs):
    """Instantiate a backend by name, e.g. create("streamingrvos", model="random:tiny", device="cpu")."""
    return load_class(name)(**kwargs)


__all__ = ["available", "create", "load_class", "GROUP"]
