"""pip install of strvos_core and the `strvos` command line (no ROS needed).

The ROS side (messages, strvos_node, launch, config) is the ament_cmake package described by
package.xml/CMakeLists.txt and is built with colcon; see README.md.
"""
from pathlib import Path

from setuptools import find_packages, setup

HERE = Path(__file__).parent


def _version() -> str:
    scope: dict = {}
    exec((HERE / "strvos_core" / "version.py").read_text(), scope)
    return scope["__version__"]


setup(
    name="strvos",
    version=_version(),
    description="Streaming referring video object segmentation (StreamingRVOS) for robots",
    long_description=(HERE / "README.md").read_text(encoding="utf-8"),
    long_description_content_type="text/markdown",
    license="Apache-2.0",
    python_requires=">=3.10",
    packages=find_packages(include=["strvos_core", "strvos_core.*"]),
    include_package_data=True,
    # assets/**: the tiny tokenizer and the shipped default model (assets/models/strvos-synthetic-tiny, the model
    # spec `default`); test/setup/test_packaging.py checks that a wheel carries the latter.
    package_data={"strvos_core": ["assets/**/*", "configs/*.yaml", "configs/*.json"]},
    install_requires=[
        # torch is not pinned here so that robots keep their CUDA build; CI pins it in requirements/.
        "torch>=2.4",
        "transformers>=5.0,<6",
        "tokenizers",
        "safetensors",
        "huggingface-hub",
        "numpy",
        "opencv-python-headless",
        "pillow",
        "tqdm",
        "pycocotools",
        "hydra-core",
        "iopath",
        # sam2 is installed separately with --no-deps (its metadata requires torchvision, which strvos
        # does not need); see scripts/setup.sh.
    ],
    entry_points={
        "console_scripts": ["strvos = strvos_core.cli.main:main"],
        # Third parties register more backends / pose estimators under these groups.
        "strvos.backends": [
            "streamingrvos = strvos_core.backends.streaming:StreamingRVOSBackend",
            "streamingrvos-no-state = strvos_core.backends.streaming:StreamingRVOSNoStateBackend",
            "sa2va-offline = strvos_core.backends.offline:OfflineSa2VABackend",
        ],
        "strvos.pose_estimators": [
            "pca = strvos_core.pose.pca:PCAPoseEstimator",
        ],
    },
)
