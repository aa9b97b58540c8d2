"""A non-editable wheel carries the shipped default model (strvos_core/assets/models/**), so `default` loads
wherever strvos_core is pip-installed, not only in this checkout."""
from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
MODEL = Path("strvos_core") / "assets" / "models" / "strvos-synthetic-tiny"
MODEL_FILES = ["config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json", "README.md",
               "scores.json"]


def test_wheel_includes_the_shipped_model_folder(tmp_path):
    # A copy of the sources with placeholder model files: the real folder may be absent (not trained here) or
    # being written by training, and the check is about what setup.py packs, not about the weights.
    src = tmp_path / "src"
    src.mkdir()
    shutil.copy(ROOT / "setup.py", src)
    shutil.copy(ROOT / "README.md", src)
    shutil.copytree(ROOT / "strvos_core", src / "strvos_core",
                    ignore=shutil.ignore_patterns("__pycache__", "models"))
    (src / MODEL).mkdir(parents=True)
    for name in MODEL_FILES:
        (src / MODEL / name).write_text("placeholder")
    out = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index",
                          "-q", "-w", str(tmp_path / "dist"), str(src)], capture_output=True, text=True)
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-2000:]
    (wheel,) = (tmp_path / "dist").glob("strvos-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    assert {(MODEL / name).as_posix() for name in MODEL_FILES} <= names, sorted(n for n in names if "assets" in n)
    assert "strvos_core/checkpoint.py" in names
