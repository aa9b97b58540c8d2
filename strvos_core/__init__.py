"""strvos_core: framework-independent StreamingRVOS (no ROS imports anywhere in this package)."""
from strvos_core.version import __version__

__all__ = ["__version__"]
