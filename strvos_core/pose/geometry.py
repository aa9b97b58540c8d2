"""Small geometry helpers: pinhole back-projection (REP-103 optical frame) and rotation -> quaternion."""
from __future__ import annotations

import numpy as np


def back_project(rows: np.ndarray, cols: np.ndarray, z: np.ndarray, K: np.ndarray) -> np.ndarray:
    """Nx3 points in the optical frame (x right, y down, z forward) of pixels (row, col) at depth z metres."""
    fx, fy, cx, cy = K[0, 0], K[1, 1], K[0, 2], K[1, 2]
    z = np.asarray(z, dtype=np.float64)
    x = (np.asarray(cols, dtype=np.float64) - cx) * z / fx
    y = (np.asarray(rows, dtype=np.float64) - cy) * z / fy
    return np.stack([x, y, z], axis=1)


def project(points: np.ndarray, K: np.ndarray) -> np.ndarray:
    """Nx2 pixel coordinates (u, v) of Nx3 optical-frame points."""
    points = np.asarray(points, dtype=np.float64)
    u = K[0, 0] * points[:, 0] / points[:, 2] + K[0, 2]
    v = K[1, 1] * points[:, 1] / points[:, 2] + K[1, 2]
    return np.stack([u, v], axis=1)


def quaternion_from_matrix(R: np.ndarray) -> tuple[float, float, float, float]:
    """(x, y, z, w) unit quaternion of a proper rotation matrix, w >= 0 (Shepperd's method, stable)."""
    m = np.asarray(R, dtype=np.float64)
    trace = m[0, 0] + m[1, 1] + m[2, 2]
    if trace > 0:
        s = 2.0 * np.sqrt(trace + 1.0)
        q = (m[2, 1] - m[1, 2]) / s, (m[0, 2] - m[2, 0]) / s, (m[1, 0] - m[0, 1]) / s, 0.25 * s
    elif m[0, 0] > m[1, 1] and m[0, 0] > m[2, 2]:
        s = 2.0 * np.sqrt(1.0 + m[0, 0] - m[1, 1] - m[2, 2])
        q = 0.25 * s, (m[0, 1] + m[1, 0]) / s, (m[0, 2] + m[2, 0]) / s, (m[2, 1] - m[1, 2]) / s
    elif m[1, 1] > m[2, 2]:
        s = 2.0 * np.sqrt(1.0 + m[1, 1] - m[0, 0] - m[2, 2])
        q = (m[0, 1] + m[1, 0]) / s, 0.25 * s, (m[1, 2] + m[2, 1]) / s, (m[0, 2] - m[2, 0]) / s
    else:
        s = 2.0 * np.sqrt(1.0 + m[2, 2] - m[0, 0] - m[1, 1])
        q = (m[0, 2] + m[2, 0]) / s, (m[1, 2] + m[2, 1]) / s, 0.25 * s, (m[1, 0] - m[0, 1]) / s
    quat = np.array(q, dtype=np.float64)
    quat /= np.linalg.norm(quat)
    if quat[3] < 0:
        quat = -quat
    return float(quat[0]), float(quat[1]), float(quat[2]), float(quat[3])


def matrix_from_quaternion(q: tuple[float, float, float, float]) -> np.ndarray:
    """3x3 rotation matrix of an (x, y, z, w) quaternion."""
    x, y, z, w = np.asarray(q, dtype=np.float64) / np.linalg.norm(q)
    return np.array(
        [
            [1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
            [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
            [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)],
        ]
    )


def rotation_angle_between(R_a: np.ndarray, R_b: np.ndarray) -> float:
    """Angle in radians of the rotation taking R_a to R_b."""
    cos = (np.trace(np.asarray(R_a).T @ np.asarray(R_b)) - 1.0) / 2.0
    return float(np.arccos(np.clip(cos, -1.0, 1.0)))
