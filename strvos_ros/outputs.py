"""What strvos_node publishes: one frame's FrameResult as messages, and the answers to target changes.

Outputs nobody subscribes to are neither built nor published (the overlay and markers cost the most). The
per-frame results go out as CDR bytes written from plain values (cdr.serialize_*: no rclpy Python message
objects); ~/mask/<id> and ~/pose/<id> exist while their target does.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import numpy as np
from diagnostic_msgs.msg import DiagnosticArray
from geometry_msgs.msg import PoseStamped
from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy
from rclpy.qos_overriding_options import QoSOverridingOptions
from sensor_msgs.msg import Image
from std_msgs.msg import Header
from strvos_ros.msg import PromptStatus, SegmentationArray
from visualization_msgs.msg import MarkerArray

from strvos_core.realtime.commands import DEFAULT_TARGET, CommandAck, ResetTracking
from strvos_core.realtime.encodings import mask_to_mono8
from strvos_core.realtime.masks import colour_for
from strvos_core.realtime.overlay import draw_targets
from strvos_core.realtime.pipeline import FrameResult
from strvos_core.realtime.stats import StageTimer
from strvos_ros import cdr, conversions, visuals
from strvos_ros.health import NodeHealth
from strvos_ros.parameters import Settings

ECHO_CHARS = 200  # a refused request's id and prompt are echoed on ~/status this far (a hostile one may be 1 MB)
RELIABLE = QoSProfile(depth=5, reliability=ReliabilityPolicy.RELIABLE, history=HistoryPolicy.KEEP_LAST)
TOPICS = [("~/mask", Image, 5), ("~/segmentation", SegmentationArray, 5), ("~/overlay", Image, 2),
          ("~/markers", MarkerArray, 5), ("~/status", PromptStatus, 100), ("/diagnostics", DiagnosticArray, 10)]


@dataclass
class TargetPublishers:
    """~/mask/<id> and ~/pose/<id> of one target (made on its first frame, destroyed when it goes)."""

    mask: Any = None
    pose: Any = None


def _listened(publisher) -> bool:
    return publisher is not None and publisher.get_subscription_count() > 0


class Outputs:
    def __init__(self, node, health: NodeHealth) -> None:
        self._node = node
        self._health = health
        self._pubs: dict[str, Any] = {}
        self._targets: dict[str, TargetPublishers] = {}  # worker thread only

    def create(self) -> None:
        for name, msg_type, depth in TOPICS:
            profile = QoSProfile(depth=depth, reliability=RELIABLE.reliability, history=RELIABLE.history)
            self._pubs[name] = self._node.create_publisher(
                msg_type, name, profile, event_callbacks=self._health.publisher_events(),
                qos_overriding_options=QoSOverridingOptions.with_default_policies())

    def destroy(self) -> None:
        if self._node.context.ok():
            for target_id in list(self._targets):
                self._destroy_target(target_id)
            for publisher in self._pubs.values():
                self._node.destroy_publisher(publisher)
        self._targets.clear()
        self._pubs.clear()

    # ------------------------------------------------------------------ answers and diagnostics
    def status(self, header: Header, ack: CommandAck, action: int = 0, target_id: str = "", prompt: str = "") -> None:
        """~/status for one answer; ``action``, ``target_id``, ``prompt``: the request as received (for a refused
        one, whose command may not even exist)."""
        publisher = self._pubs.get("~/status")
        if publisher is None:
            return
        publisher.publish(PromptStatus(
            header=header, action=conversions.action_of(ack.command, action if 0 <= action < 256 else 0),
            target_id=(ack.target_id or target_id)[:ECHO_CHARS], prompt=ack.prompt if ack.accepted else prompt[:ECHO_CHARS],
            accepted=ack.accepted, applied=ack.applied, frame_index=ack.frame_index, message=ack.message,
            active_targets=ack.active_targets))

    def diagnostics(self, msg: DiagnosticArray) -> None:
        publisher = self._pubs.get("/diagnostics")
        if publisher is not None:
            publisher.publish(msg)

    # ------------------------------------------------------------------ per frame (worker thread)
    def wanted(self) -> tuple[bool, bool, bool, bool]:
        """(segmentation, overlay, markers, every pose) wanted for the next frame."""
        segmentation = _listened(self._pubs["~/segmentation"])
        settings: Settings = self._node.settings
        overlay = settings.publish_overlay and _listened(self._pubs["~/overlay"])
        markers = settings.publish_markers and _listened(self._pubs["~/markers"])
        return segmentation, overlay, markers, segmentation or markers

    def pose_subscribed(self, target_id: str) -> bool:
        pubs = self._targets.get(target_id)
        return pubs is not None and _listened(pubs.pose)

    def publish_frame(self, header: Header, rgb: np.ndarray, result: FrameResult, laps: StageTimer,
                      want: tuple[bool, bool, bool, bool], step_wall: float, received_ns: int) -> None:
        want_segmentation, want_overlay, want_markers, _ = want
        settings: Settings = self._node.settings
        for ack in result.applied:
            if not isinstance(ack.command, ResetTracking):  # not a target change: nobody asked for it
                self.status(header, ack)
        self._sync_targets(result, settings.use_depth)
        laps.lap("messages")
        out: list[cdr.TargetFields] = []
        markers = MarkerArray(markers=[visuals.delete_all(header)]) if want_markers else None
        default_mask = self._pubs["~/mask"] if _listened(self._pubs["~/mask"]) else None
        for target in result.targets:
            pubs = self._targets[target.target_id]
            mask_pubs = [pubs.mask] + ([default_mask] if target.target_id == DEFAULT_TARGET else [])
            mask_subscribers = [pub for pub in mask_pubs if _listened(pub)]
            seg = cdr.TargetFields(target.target_id, target.prompt, target.score, int(target.state), target.has_seg,
                                   mask_to_mono8(target.mask) if want_segmentation or mask_subscribers else None,
                                   target.area, target.bbox)
            estimate = target.pose
            if estimate is not None:
                seg.set_pose(estimate)
                pose_subscribed = _listened(pubs.pose)
                if estimate.position_valid and (pose_subscribed or want_markers):
                    pose = conversions.pose_msg(estimate, header)
                    if pose_subscribed:
                        pubs.pose.publish(pose)
                    if want_markers:
                        markers.markers += visuals.target_markers(
                            header, target.index, target.target_id, pose, conversions.extent_msg(estimate),
                            colour_for(target.index), estimate.orientation_valid)
            out.append(seg)
            laps.lap("messages")
            if mask_subscribers:
                mask_bytes = cdr.serialize_image(header, seg.mask, "mono8")
                for publisher in mask_subscribers:
                    publisher.publish(mask_bytes)
            laps.lap("publish")
        if want_segmentation:
            self._pubs["~/segmentation"].publish(cdr.serialize_segmentation_array(header, out, result.step_seconds))
            laps.lap("publish")
        # The node's own latency: colour image received by the middleware -> results handed back to it.
        self._health.stages.add("in_node", (time.time_ns() - received_ns) * 1e-9 - step_wall)
        if want_overlay:
            overlay = draw_targets(rgb, result.targets, result.camera_K, settings.overlay_alpha,
                                   settings.score_threshold)
            laps.lap("overlay")
            self._pubs["~/overlay"].publish(cdr.serialize_image(header, overlay, "rgb8"))
            laps.lap("publish_overlay")
        if want_markers:
            self._pubs["~/markers"].publish(markers)
            laps.lap("publish")

    def _sync_targets(self, result: FrameResult, use_depth: bool) -> None:
        """~/mask/<id> (and ~/pose/<id>) for each target of this frame; those of targets gone are destroyed."""
        ids = {target.target_id for target in result.targets}
        for target_id in [t for t in self._targets if t not in ids]:
            self._destroy_target(target_id)
        for target_id in ids - self._targets.keys():
            pubs = TargetPublishers()
            pubs.mask = self._node.create_publisher(Image, f"~/mask/{target_id}", RELIABLE,
                                                    event_callbacks=self._health.publisher_events())
            if use_depth:
                pubs.pose = self._node.create_publisher(PoseStamped, f"~/pose/{target_id}", RELIABLE,
                                                        event_callbacks=self._health.publisher_events())
            self._targets[target_id] = pubs

    def _destroy_target(self, target_id: str) -> None:
        pubs = self._targets.pop(target_id)
        for publisher in (pubs.mask, pubs.pose):
            if publisher is not None:
                self._node.destroy_publisher(publisher)
