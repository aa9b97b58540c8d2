"""Knobs of the synthetic referring-video world, checked once so generation never fails deep inside numpy."""
from __future__ import annotations

from dataclasses import dataclass

SPLITS: tuple[str, ...] = ("train", "valid", "test")  # Ref-YouTube-VOS names


@dataclass(frozen=True)
class SyntheticConfig:
    """Size and content of generated videos.

    Object sizes and speeds scale with min(width, height) / 240, so a scene looks the same at any
    resolution. Depths are in millimetres: objects lie between `object_depth_mm` and the background
    plane lies well behind them, so the background never occludes an object.
    """

    width: int = 320
    height: int = 240
    num_frames: int = 20
    min_objects: int = 2
    max_objects: int = 5
    horizontal_fov_deg: float = 60.0
    object_depth_mm: tuple[int, int] = (800, 2000)
    min_depth_gap_mm: int = 100  # distinct depths give every pixel a strict occlusion order
    background_depth_mm: tuple[int, int] = (2800, 4000)
    invalid_depth_fraction: float = 0.003  # pixels set to 0 (invalid) as a depth sensor would
    pixel_noise: int = 3  # +- uniform RGB noise
    jpeg_quality: int = 95
    expressions_per_kind: int = 1  # per object and expression kind, when one exists

    def __post_init__(self) -> None:
        def need(ok: bool, message: str) -> None:
            if not ok:
                raise ValueError(f"SyntheticConfig: {message}")

        need(64 <= self.width <= 4096 and 64 <= self.height <= 4096,
             f"width and height must be in [64, 4096], got {self.width}x{self.height}")
        need(8 <= self.num_frames <= 1000, f"num_frames must be in [8, 1000], got {self.num_frames}")
        need(1 <= self.min_objects <= self.max_objects <= 8,
             f"need 1 <= min_objects <= max_objects <= 8, got {self.min_objects}..{self.max_objects}")
        near, far = self.object_depth_mm
        need(0 < near < far, f"object_depth_mm must be an increasing pair of positive mm, got {self.object_depth_mm}")
        need(self.min_depth_gap_mm >= 1, f"min_depth_gap_mm must be >= 1, got {self.min_depth_gap_mm}")
        need((far - near) // self.min_depth_gap_mm + 1 >= self.max_objects,
             f"object_depth_mm {self.object_depth_mm} cannot hold {self.max_objects} objects "
             f"{self.min_depth_gap_mm} mm apart")
        bg_near, bg_far = self.background_depth_mm
        need(far < bg_near <= bg_far < 65536,
             f"background_depth_mm {self.background_depth_mm} must lie behind the objects and below 65536")
        need(10.0 <= self.horizontal_fov_deg <= 150.0,
             f"horizontal_fov_deg must be in [10, 150], got {self.horizontal_fov_deg}")
        need(0.0 <= self.invalid_depth_fraction < 0.5,
             f"invalid_depth_fraction must be in [0, 0.5), got {self.invalid_depth_fraction}")
        need(0 <= self.pixel_noise <= 64, f"pixel_noise must be in [0, 64], got {self.pixel_noise}")
        need(1 <= self.jpeg_quality <= 100, f"jpeg_quality must be in [1, 100], got {self.jpeg_quality}")
        need(self.expressions_per_kind >= 0, f"expressions_per_kind must be >= 0, got {self.expressions_per_kind}")

    @property
    def scale(self) -> float:
        """Pixels per 'reference pixel' of the 320x240 design size."""
        return min(self.width, self.height) / 240.0
