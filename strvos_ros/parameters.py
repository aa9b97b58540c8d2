"""strvos_node parameters: one table of names, defaults, ranges and descriptions, declared with descriptors.

Read-only parameters need a model reload or new subscriptions to change; the rest (thresholds, rates, what to
publish, pose tuning) apply from the next frame when set at run time (`ros2 param set`).
"""
from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

from rcl_interfaces.msg import FloatingPointRange, IntegerRange, ParameterDescriptor, SetParametersResult
from rclpy.parameter import Parameter

from strvos_core.realtime.pipeline import PipelineSettings


@dataclass
class Settings:
    """Current values of all node parameters (attribute = parameter name with '.' -> '_')."""

    backend: str = "streamingrvos"
    model: str = "default"
    device: str = "cpu"
    dtype: str = "float32"
    threads: int = 0
    autostart: bool = True
    release_on_deactivate: bool = True
    prompt: str = ""
    use_depth: bool = True
    compressed_input: bool = False
    input_reliability: str = "best_effort"
    input_depth: int = 5
    score_threshold: float = 0.5
    max_prompt_chars: int = 500
    max_targets: int = 16
    max_rate: float = 0.0
    sync_tolerance: float = 0.02
    sync_max_wait: float = 0.1
    publish_overlay: bool = True
    publish_markers: bool = True
    overlay_alpha: float = 0.5
    pose_min_points: int = 20
    pose_outlier_mads: float = 3.0
    pose_min_band: float = 0.02
    pose_max_eigen_ratio: float = 0.7
    diagnostics_period: float = 1.0
    camera_timeout: float = 1.0
    warn_throttle: float = 5.0


# name -> (read_only, range (lo, hi) or choices or None, description)
SPECS: dict[str, tuple[bool, Any, str]] = {
    "backend": (True, None, "strvos_core backend name (entry point group strvos.backends)"),
    "model": (True, None, "model: default (the shipped tiny model), a local HF export folder, a hub id, "
                        "or random:<preset> for tests"),
    "device": (True, None, "torch device: cpu, cuda, cuda:1 ..."),
    "dtype": (True, ("float32", "bfloat16", "float16"), "model weights dtype"),
    "threads": (True, (0, 256), "CPU threads of torch's operators in the inference thread (0: torch's default, "
                "one per core); on a small CPU shared with the camera and DDS threads, fewer can be faster"),
    "autostart": (True, None, "configure and activate on start (no lifecycle manager needed)"),
    "release_on_deactivate": (True, None, "free the model (GPU memory) on deactivate; reloaded on activate"),
    "prompt": (True, None, "initial referring expression of the 'default' target (empty: none)"),
    "use_depth": (True, None, "subscribe to depth + camera infos and publish 3D poses"),
    "compressed_input": (True, None, "subscribe to sensor_msgs/CompressedImage on image/compressed"),
    "input_reliability": (True, ("best_effort", "reliable"), "reliability of the camera subscriptions"),
    "input_depth": (True, (1, 100), "history depth of the camera subscriptions"),
    "score_threshold": (False, (0.0, 1.0), "a target is TRACKING when its mask is non-empty and score >= this"),
    "max_prompt_chars": (False, (1, 10000), "longer prompts are refused"),
    "max_targets": (False, (1, 1000), "more targets are refused (each one is a model pass per frame)"),
    "max_rate": (False, (0.0, 1000.0), "process at most this many frames per second (0: as fast as possible)"),
    "sync_tolerance": (False, (0.0, 1.0), "max stamp difference (s) between colour and depth/camera info"),
    "sync_max_wait": (False, (0.0, 2.0), "max time (s) a colour frame waits for its depth"),
    "publish_overlay": (False, None, "publish ~/overlay (costs a colour image per frame)"),
    "publish_markers": (False, None, "publish ~/markers"),
    "overlay_alpha": (False, (0.0, 1.0), "mask opacity in ~/overlay"),
    "pose_min_points": (False, (3, 1000000), "fewer valid depth samples in a mask: no pose"),
    "pose_outlier_mads": (False, (0.1, 100.0), "depth outlier rejection band, in robust standard deviations"),
    "pose_min_band": (False, (0.0, 10.0), "never reject depth within this distance (m) of the median"),
    "pose_max_eigen_ratio": (False, (0.01, 0.99), "orientation valid when eigenvalue ratios are below this"),
    "diagnostics_period": (True, (0.05, 60.0), "seconds between /diagnostics messages"),
    "camera_timeout": (False, (0.05, 3600.0), "no colour image for this long (s): the camera is STALE on "
                       "/diagnostics (LOST when its publisher is gone too)"),
    "warn_throttle": (False, (0.0, 3600.0), "seconds between repeated warnings of one kind"),
}


def parameter_name(attribute: str) -> str:
    """Dotted ROS parameter name of a Settings attribute (sync_tolerance -> sync.tolerance)."""
    for prefix in ("sync", "pose", "input"):
        if attribute.startswith(prefix + "_"):
            return f"{prefix}.{attribute[len(prefix) + 1:]}"
    return attribute


def _descriptor(name: str, default: Any, read_only: bool, bounds: Any, description: str) -> ParameterDescriptor:
    descriptor = ParameterDescriptor(description=description, read_only=read_only)
    if isinstance(bounds, tuple) and isinstance(bounds[0], str):
        descriptor.additional_constraints = "one of: " + ", ".join(bounds)
    elif isinstance(bounds, tuple) and isinstance(default, float):
        descriptor.floating_point_range = [FloatingPointRange(from_value=bounds[0], to_value=bounds[1], step=0.0)]
    elif isinstance(bounds, tuple) and isinstance(default, int) and not isinstance(default, bool):
        descriptor.integer_range = [IntegerRange(from_value=bounds[0], to_value=bounds[1], step=0)]
    return descriptor


def declare(node) -> Settings:
    """Declare every parameter on ``node`` (values from the params file / overrides) and return them."""
    settings = Settings()
    for field in fields(Settings):
        read_only, bounds, description = SPECS[field.name]
        default = getattr(settings, field.name)
        name = parameter_name(field.name)
        node.declare_parameter(name, default, _descriptor(name, default, read_only, bounds, description))
        value = node.get_parameter(name).value
        check = _check(field.name, value)
        if check:
            raise ValueError(f"parameter {name}: {check}")
        setattr(settings, field.name, value)
    return settings


def _check(attribute: str, value: Any) -> str | None:
    bounds = SPECS[attribute][1]
    if isinstance(bounds, tuple) and isinstance(bounds[0], str) and value not in bounds:
        return f"{value!r} is not one of {bounds}"
    return None


def validate_and_apply(settings: Settings, params: list[Parameter]) -> SetParametersResult:
    """on-set-parameters callback body: refuse bad choices, then apply the changes to ``settings``."""
    by_name = {parameter_name(f.name): f.name for f in fields(Settings)}
    updates = {}
    for param in params:
        attribute = by_name.get(param.name)
        if attribute is None:
            continue  # e.g. qos_overrides.*, use_sim_time
        problem = _check(attribute, param.value)
        if problem:
            return SetParametersResult(successful=False, reason=f"{param.name}: {problem}")
        updates[attribute] = param.value
    for attribute, value in updates.items():
        setattr(settings, attribute, value)
    return SetParametersResult(successful=True)


def pipeline_settings(settings: Settings) -> PipelineSettings:
    """The run-time settings the pipeline reads (rebuilt whenever a parameter changes)."""
    return PipelineSettings(
        score_threshold=settings.score_threshold, max_prompt_chars=settings.max_prompt_chars,
        max_targets=settings.max_targets, pose_min_points=settings.pose_min_points,
        pose_outlier_mads=settings.pose_outlier_mads, pose_min_band=settings.pose_min_band,
        pose_max_eigen_ratio=settings.pose_max_eigen_ratio)
