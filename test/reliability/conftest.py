"""tools/soak.py's scenarios as tests: tools/ on the import path (the scenarios live in tools/reliability)."""
from __future__ import annotations

import sys
from pathlib import Path

TOOLS = Path(__file__).resolve().parents[2] / "tools"
if str(TOOLS) not in sys.path:
    sys.path.insert(0, str(TOOLS))
