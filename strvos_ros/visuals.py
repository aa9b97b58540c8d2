"""rviz2 markers and /diagnostics messages built from one processed frame / the node's statistics."""
from __future__ import annotations

import copy

from diagnostic_msgs.msg import DiagnosticStatus, KeyValue
from std_msgs.msg import ColorRGBA, Header
from visualization_msgs.msg import Marker

from strvos_core.realtime.camera_watch import CameraReport, CameraState
from strvos_core.realtime.tracking import TrackingState


def target_markers(header: Header, index: int, target_id: str, pose, extent, colour, orientation_valid: bool,
                   lifetime_s: float = 1.0) -> list[Marker]:
    """A box (or sphere when the orientation is unknown) at the target pose, and its name above it."""
    r, g, b = (c / 255.0 for c in colour)
    shape = Marker(header=header, ns="strvos/" + target_id, id=2 * index, action=Marker.ADD)
    shape.type = Marker.CUBE if orientation_valid else Marker.SPHERE
    shape.pose = copy.deepcopy(pose.pose)  # messages are references: never alias the caller's pose
    shape.scale.x, shape.scale.y, shape.scale.z = (max(float(v), 0.01) for v in (extent.x, extent.y, extent.z))
    shape.color = ColorRGBA(r=r, g=g, b=b, a=0.6)
    shape.lifetime.sec, shape.lifetime.nanosec = int(lifetime_s), int((lifetime_s % 1) * 1e9)
    text = Marker(header=header, ns="strvos/" + target_id, id=2 * index + 1, action=Marker.ADD)
    text.type = Marker.TEXT_VIEW_FACING
    text.pose = copy.deepcopy(pose.pose)
    text.pose.position.y -= max(float(extent.y), 0.05)  # above it (optical y points down)
    text.scale.z = 0.05
    text.text = target_id
    text.color = ColorRGBA(r=r, g=g, b=b, a=1.0)
    text.lifetime = shape.lifetime
    return [shape, text]


def delete_all(header: Header) -> Marker:
    return Marker(header=header, action=Marker.DELETEALL)


def _pairs(values: dict) -> list[KeyValue]:
    return [KeyValue(key=str(k), value=f"{v:.4g}" if isinstance(v, float) else str(v)) for k, v in values.items()]


def pipeline_status(node_name: str, values: dict, problems: list[str]) -> DiagnosticStatus:
    level = DiagnosticStatus.WARN if problems else DiagnosticStatus.OK
    return DiagnosticStatus(level=level, name=f"{node_name}: pipeline", hardware_id="strvos",
                            message="; ".join(problems) or "ok", values=_pairs(values))


CAMERA_LEVELS = {CameraState.LIVE: DiagnosticStatus.OK, CameraState.WAITING: DiagnosticStatus.WARN,
                 CameraState.STALE: DiagnosticStatus.WARN, CameraState.LOST: DiagnosticStatus.ERROR}


def camera_status(node_name: str, camera: CameraReport) -> DiagnosticStatus:
    """'<node>: camera': LIVE (OK), WAITING or STALE (WARN), LOST (ERROR: no image and no publisher)."""
    age = "never" if camera.image_age is None else f"{camera.image_age:.1f} s ago"
    return DiagnosticStatus(
        level=CAMERA_LEVELS[camera.state], name=f"{node_name}: camera", hardware_id="strvos",
        message=f"{camera.state.value}: last image {age}, {camera.publishers} publisher(s)",
        values=_pairs({"state": camera.state.value, "image_age_s": -1.0 if camera.image_age is None
                       else float(camera.image_age), "publishers": camera.publishers}),
    )


def target_status(node_name: str, target_id: str, prompt: str, state: TrackingState, score: float,
                  frames_since_seen: int) -> DiagnosticStatus:
    level = DiagnosticStatus.OK if state is TrackingState.TRACKING else DiagnosticStatus.WARN
    return DiagnosticStatus(
        level=level, name=f"{node_name}: target {target_id}", hardware_id="strvos", message=state.name,
        values=_pairs({"prompt": prompt, "state": state.name, "score": float(score),
                       "frames_since_seen": frames_since_seen}),
    )
