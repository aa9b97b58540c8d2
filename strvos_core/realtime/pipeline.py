"""The real-time segmentation pipeline, without any robot framework: commands in, frames in, typed results out.

A node (strvos_ros) converts messages into `CameraFrame`s and commands, calls `submit` and `process`, and
publishes what `process` returns; everything between is here, tested without ROS:

* the one target registry: id -> prompt, colour index, tracking state. `submit` changes it at once (under a
  lock, from any thread) and answers at once: accepted with the index of the first frame the change applies to,
  or refused with the reason (the one prompt check, `realtime.prompts`, applies the core's rules too, so an
  accepted prompt can never fail later). `process` brings the model's session in line with the registry at the
  start of each frame, so a change applies from exactly the frame its answer named.
* per frame: the session step (all targets share the frame's image work), tracking state, the depth matched
  to the frame, and per-target masks, boxes and 3D poses.

Threads: `submit`, `targets` and `active_targets` from any thread; `process`, `attach` and `release` from one
thread at a time (a node's worker; attach/release only while no frame is being processed).
"""
from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from strvos_core.errors import StrvosError
from strvos_core.pose import PoseEstimate, create_pose_estimator
from strvos_core.processing.image import as_rgb_frame
from strvos_core.realtime.commands import (
    AddTarget,
    ClearTargets,
    Command,
    CommandAck,
    RemoveTarget,
    ResetTracking,
    SetPrompt,
)
from strvos_core.realtime.depth_input import DepthImage, DepthProblem, DepthView, Intrinsics, depth_for_colour
from strvos_core.realtime.masks import mask_bbox
from strvos_core.realtime.prompts import PromptError, check_target_id, clean_prompt
from strvos_core.realtime.stats import StageTimer
from strvos_core.realtime.tracking import TargetTracker, TrackingState

MAX_AWAITING = 256  # accepted changes whose frame has not come yet, kept to report them applied (older: dropped)


@dataclass(frozen=True)
class PipelineSettings:
    """What a node may change at run time; `Pipeline.settings` is replaced as a whole (atomic)."""

    score_threshold: float = 0.5      # TRACKING needs a non-empty mask and a score >= this
    max_prompt_chars: int = 500
    max_targets: int = 16             # more are refused: each target is one more model pass every frame
    pose_min_points: int = 20
    pose_outlier_mads: float = 3.0
    pose_min_band: float = 0.02
    pose_max_eigen_ratio: float = 0.7


@dataclass(frozen=True)
class CameraFrame:
    """One colour frame with the depth and CameraInfo stamped with it (None: none came)."""

    rgb: np.ndarray  # HxWx3 uint8 RGB
    depth: DepthImage | None = None
    color_info: Intrinsics | None = None


@dataclass
class TargetOutput:
    """One target in one frame. ``state`` is what planners read first: a mask means something only while
    TRACKING (it may be non-empty below the score threshold)."""

    target_id: str
    prompt: str
    index: int  # stable per target while it exists: its colour (realtime.masks.colour_for)
    state: TrackingState
    score: float
    has_seg: bool
    mask: np.ndarray  # bool HxW at the frame's size
    area: int
    bbox: tuple[int, int, int, int]  # x, y, width, height; zeros when the mask is empty
    pose: PoseEstimate | None = None  # None: not estimated (no depth, empty mask, or not wanted)
    click: tuple[float, float] | None = None  # where SAM 2 was clicked (x, y px; models with an attention click)


@dataclass(frozen=True)
class Problem:
    """Bad input met while processing a frame (the frame went on without what it spoiled)."""

    kind: str
    message: str


@dataclass
class FrameResult:
    frame_index: int
    targets: list[TargetOutput]
    step_seconds: float = 0.0  # the model's step (session timings "total"); 0 without targets
    step_wall_seconds: float = 0.0  # wall and thread-CPU time around the session step (for "besides the model")
    step_cpu_seconds: float = 0.0
    applied: list[CommandAck] = field(default_factory=list)  # changes in force from this frame on
    problems: list[Problem] = field(default_factory=list)
    has_depth: bool = False  # a depth image came with the frame
    camera_K: np.ndarray | None = None  # 3x3 intrinsics of the colour image when known (to draw poses)


@dataclass
class _Target:
    target_id: str
    prompt: str
    index: int
    generation: int  # a new one per accepted AddTarget / SetPrompt: the session restarts the target's state
    tracker: TargetTracker = field(default_factory=TargetTracker)
    last_score: float = 0.0


@dataclass(frozen=True)
class TargetStatus:
    """A target's tracking status, for diagnostics."""

    target_id: str
    prompt: str
    state: TrackingState
    score: float
    frames_since_seen: int


class Pipeline:
    def __init__(self, settings: PipelineSettings | None = None) -> None:
        self.settings = settings or PipelineSettings()
        self._lock = threading.Lock()
        self._targets: dict[str, _Target] = {}  # in force from frame self._next_frame on
        self._next_frame = 0
        self._next_index = 0
        self._generation = 0
        self._reset_pending = False
        self._awaiting: deque[CommandAck] = deque(maxlen=MAX_AWAITING)
        self._backend = None
        self._session = None
        self._session_generation: dict[str, int] = {}  # what the session holds: target id -> generation
        self._estimator, self._estimator_key = None, None

    # ------------------------------------------------------------------ model
    @property
    def ready(self) -> bool:
        return self._session is not None

    def attach(self, backend) -> None:
        """Use ``backend`` (a strvos_core backend) from the next frame; the registry's targets start afresh."""
        self._backend, self._session, self._session_generation = backend, backend.start_session(None), {}
        with self._lock:
            for target in self._targets.values():
                target.tracker.reset()

    def release(self) -> None:
        """Free the model (the targets stay, for the next `attach`)."""
        backend, self._backend, self._session = self._backend, None, None
        self._session_generation = {}
        if backend is not None:
            backend.release()

    # ------------------------------------------------------------------ commands
    def submit(self, command: Command) -> CommandAck:
        """Change the registry now and say so: accepted with the frame the change applies from, or refused."""
        with self._lock:
            try:
                message, prompt = self._change(command)
            except PromptError as exc:
                return CommandAck(command, False, str(exc), self._next_frame, sorted(self._targets))
            ack = CommandAck(command, True, f"{message}: applies from frame {self._next_frame}", self._next_frame,
                             sorted(self._targets), prompt)
            self._awaiting.append(ack)
            return ack

    def refuse(self, reason: str) -> CommandAck:
        """The answer to a request that is no command at all (e.g. an unknown action number)."""
        with self._lock:
            return CommandAck(None, False, reason, self._next_frame, sorted(self._targets))

    def _change(self, command: Command) -> tuple[str, str]:
        """Apply one command to the registry (lock held); (confirmation, cleaned prompt) or PromptError."""
        if isinstance(command, (AddTarget, SetPrompt)):
            target_id = check_target_id(command.target_id)
            prompt = clean_prompt(command.prompt, self.settings.max_prompt_chars)
            old = self._targets.get(target_id)
            if old is None and len(self._targets) >= self.settings.max_targets:
                raise PromptError(f"target {target_id!r} refused: there are already {len(self._targets)} targets, "
                                  f"the limit (max_targets) is {self.settings.max_targets}; remove one first")
            if old is None:
                index, self._next_index = self._next_index, self._next_index + 1
            else:
                index = old.index
            self._generation += 1
            self._targets[target_id] = _Target(target_id, prompt, index, self._generation)
            return f"target {target_id!r} {'replaced' if old else 'added'}", prompt
        if isinstance(command, RemoveTarget):
            target_id = check_target_id(command.target_id)
            if target_id not in self._targets:
                raise PromptError(f"no target {target_id!r}; targets are {sorted(self._targets)}")
            del self._targets[target_id]
            return f"target {target_id!r} removed", ""
        if isinstance(command, ClearTargets):
            self._targets.clear()
            return "all targets cleared", ""
        if isinstance(command, ResetTracking):
            self._reset_pending = True
            return "tracking restarted", ""
        raise PromptError(f"unknown command {command!r}")

    @property
    def active_targets(self) -> list[str]:
        """Target ids in force from the next frame on."""
        with self._lock:
            return sorted(self._targets)

    def targets(self) -> list[TargetStatus]:
        with self._lock:
            targets = list(self._targets.values())
        return [TargetStatus(t.target_id, t.prompt, t.tracker.state, t.last_score, t.tracker.frames_since_seen)
                for t in targets]

    # ------------------------------------------------------------------ frames
    def process(self, frame: CameraFrame, pose_for: Callable[[str], bool] | bool = True,
                laps: StageTimer | None = None) -> FrameResult:
        """Segment every target in ``frame``; poses for the targets ``pose_for`` wants (when depth came).

        Bad depth or camera infos become `FrameResult.problems` (the frame goes on without a pose); a frame
        that cannot be segmented at all (no model attached, a malformed image) raises StrvosError."""
        if self._session is None:
            raise StrvosError("no model attached: call Pipeline.attach(backend) first")
        rgb = as_rgb_frame(frame.rgb)  # a frame that cannot be segmented fails here, before it takes an index
        with self._lock:
            index, self._next_frame = self._next_frame, self._next_frame + 1
            targets = list(self._targets.values())
            applied = [_applied(ack) for ack in self._awaiting]
            self._awaiting.clear()
            reset, self._reset_pending = self._reset_pending, False
            settings = self.settings
        problems: list[Problem] = []
        targets = self._sync_session(targets, reset, problems)
        _lap(laps, "commands")
        results, step_seconds, step_wall, step_cpu = {}, 0.0, 0.0, 0.0
        if targets:
            step_wall, step_cpu = time.monotonic(), time.thread_time()
            step = self._session.step(rgb)
            step_wall, step_cpu = time.monotonic() - step_wall, time.thread_time() - step_cpu
            results, step_seconds = step.targets, float(step.timings.get("total", 0.0))
        _lap(laps, "step")
        shape = rgb.shape[:2]
        depth = self._depth(frame, shape, problems)
        camera_K = _camera_K(frame, depth, shape)
        estimator = self._pose_estimator(settings)
        _lap(laps, "depth")
        outputs = []
        for target in targets:
            res = results.get(target.target_id)
            if res is None:
                continue
            mask = np.asarray(res.mask, dtype=bool)
            area = int(np.count_nonzero(mask))
            score = float(res.score)
            state = target.tracker.update(area, score, settings.score_threshold)
            target.last_score = score
            out = TargetOutput(target.target_id, target.prompt, target.index, state, score, bool(res.has_seg),
                               mask, area, mask_bbox(mask) if area else (0, 0, 0, 0),
                               click=getattr(res, "click", None))
            _lap(laps, "masks")
            if depth is not None and area and (pose_for if isinstance(pose_for, bool) else pose_for(out.target_id)):
                out.pose = estimator.estimate(depth.to_depth_grid(mask), depth.image, depth.K, encoding=depth.encoding)
                _lap(laps, "pose")
            outputs.append(out)
        return FrameResult(index, outputs, step_seconds, step_wall, step_cpu, applied, problems,
                           frame.depth is not None, camera_K)

    def _sync_session(self, targets: list[_Target], reset: bool, problems: list[Problem]) -> list[_Target]:
        """Bring the session in line with this frame's targets; the targets it holds (a change it refuses, which
        the prompt check should make impossible, drops that target with a Problem instead of the frame)."""
        session, held = self._session, self._session_generation
        wanted = {target.target_id for target in targets}
        for target_id in [t for t in held if t not in wanted]:
            session.remove_target(target_id)
            del held[target_id]
        kept = []
        for target in targets:
            if held.get(target.target_id) != target.generation:
                try:
                    session.add_target(target.target_id, target.prompt)
                except StrvosError as exc:
                    problems.append(Problem("prompt", f"target {target.target_id!r} dropped: {exc}"))
                    held.pop(target.target_id, None)
                    with self._lock:
                        if self._targets.get(target.target_id) is target:
                            del self._targets[target.target_id]
                    continue
                held[target.target_id] = target.generation
            kept.append(target)
        if reset:
            session.reset()
            for target in kept:
                target.tracker.reset()
        return kept

    @staticmethod
    def _depth(frame: CameraFrame, shape: tuple[int, int], problems: list[Problem]) -> DepthView | None:
        if frame.depth is None:
            return None
        try:
            return depth_for_colour(frame.depth, frame.color_info, shape)
        except DepthProblem as exc:
            problems.append(Problem(exc.kind, str(exc)))
            return None

    def _pose_estimator(self, settings: PipelineSettings):
        """The PCA estimator for the current pose settings (rebuilt only when they change)."""
        key = (settings.pose_min_points, settings.pose_outlier_mads, settings.pose_min_band,
               settings.pose_max_eigen_ratio)
        if self._estimator_key != key:
            self._estimator = create_pose_estimator("pca", min_points=key[0], outlier_mads=key[1],
                                                    min_band_m=key[2], max_eigen_ratio=key[3])
            self._estimator_key = key
        return self._estimator


def _applied(ack: CommandAck) -> CommandAck:
    return CommandAck(ack.command, True, ack.message, ack.frame_index, ack.active_targets, ack.prompt, applied=True)


def _lap(laps: StageTimer | None, name: str) -> None:
    if laps is not None:
        laps.lap(name)


def _camera_K(frame: CameraFrame, depth: DepthView | None, shape: tuple[int, int]) -> np.ndarray | None:
    """The colour image's intrinsics when known: its CameraInfo, or registered depth's."""
    if frame.color_info is not None:
        try:
            return frame.color_info.checked("colour camera_info", shape)
        except DepthProblem:
            return None
    if depth is not None and depth.image.shape == tuple(shape):
        return depth.K
    return None
