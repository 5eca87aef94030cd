"""Batched 3x3 matrix builders in float64 numpy (pixel coordinates, origin top-left,
pixel centres at integers, as Kornia's warps with ``align_corners=True``).

Every matrix maps source pixel coordinates forward to output pixel coordinates, so
composing a run of geometric ops is a matrix product, and a client can map its own
boxes or keypoints with the matrix the engine returns. Conventions match Kornia's
own builders (``get_rotation_matrix2d``, ``get_affine_matrix2d``,
``get_shear_matrix2d``); tests hold them to that.
"""

from __future__ import annotations

import numpy as np


def eye(n: int) -> np.ndarray:
    return np.broadcast_to(np.eye(3), (n, 3, 3)).copy()


def translation(tx: np.ndarray, ty: np.ndarray) -> np.ndarray:
    m = eye(len(tx))
    m[:, 0, 2] = tx
    m[:, 1, 2] = ty
    return m


def scaling(sx: np.ndarray, sy: np.ndarray) -> np.ndarray:
    m = eye(len(sx))
    m[:, 0, 0] = sx
    m[:, 1, 1] = sy
    return m


def rotation(angle_deg: np.ndarray, cx: np.ndarray, cy: np.ndarray) -> np.ndarray:
    """Counter-clockwise (as displayed) rotation about (cx, cy): Kornia's
    ``get_rotation_matrix2d`` and OpenCV's ``getRotationMatrix2D`` with scale 1."""
    return scaled_rotation(angle_deg, np.ones_like(cx), np.ones_like(cx), cx, cy)


def scaled_rotation(
    angle_deg: np.ndarray, sx: np.ndarray, sy: np.ndarray, cx: np.ndarray, cy: np.ndarray
) -> np.ndarray:
    """T(c) · R(angle) · S(sx, sy) · T(-c), Kornia's ``get_rotation_matrix2d``."""
    t = np.deg2rad(angle_deg)
    r = eye(len(t))
    r[:, 0, 0] = np.cos(t)
    r[:, 0, 1] = np.sin(t)
    r[:, 1, 0] = -np.sin(t)
    r[:, 1, 1] = np.cos(t)
    return translation(cx, cy) @ r @ scaling(sx, sy) @ translation(-cx, -cy)


def shear(sx_rad: np.ndarray, sy_rad: np.ndarray, cx: np.ndarray, cy: np.ndarray) -> np.ndarray:
    """Kornia's ``get_shear_matrix2d``: shear x then y about (cx, cy)."""
    tx, ty = np.tan(sx_rad), np.tan(sy_rad)
    m = eye(len(tx))
    m[:, 0, 1] = -tx
    m[:, 0, 2] = tx * cy
    m[:, 1, 0] = -ty
    m[:, 1, 1] = 1 + tx * ty
    m[:, 1, 2] = ty * (cx - tx * cy)
    return m


def affine(
    angle_deg: np.ndarray,
    tx: np.ndarray,
    ty: np.ndarray,
    scale: np.ndarray,
    shear_x_deg: np.ndarray,
    shear_y_deg: np.ndarray,
    cx: np.ndarray,
    cy: np.ndarray,
) -> np.ndarray:
    """Kornia's ``get_affine_matrix2d``: clockwise-positive angle (it negates it),
    translation added after rotation/scale, shear applied first."""
    m = scaled_rotation(-angle_deg, scale, scale, cx, cy)
    m[:, 0, 2] += tx
    m[:, 1, 2] += ty
    return m @ shear(np.deg2rad(shear_x_deg), np.deg2rad(shear_y_deg), cx, cy)


def crop_resize(
    top: np.ndarray,
    left: np.ndarray,
    height: np.ndarray,
    width: np.ndarray,
    out_h: np.ndarray,
    out_w: np.ndarray,
) -> np.ndarray:
    """Map the box [left, left+width) x [top, top+height) onto an out_h x out_w image
    with half-pixel centres (F.interpolate's align_corners=False, torchvision's resize)."""
    sx = out_w / width
    sy = out_h / height
    m = scaling(sx, sy)
    m[:, 0, 2] = (0.5 - left) * sx - 0.5
    m[:, 1, 2] = (0.5 - top) * sy - 0.5
    return m


def hflip(width: np.ndarray, on: np.ndarray) -> np.ndarray:
    m = eye(len(width))
    m[on, 0, 0] = -1.0
    m[on, 0, 2] = width[on] - 1
    return m


def vflip(height: np.ndarray, on: np.ndarray) -> np.ndarray:
    m = eye(len(height))
    m[on, 1, 1] = -1.0
    m[on, 1, 2] = height[on] - 1
    return m


def homography(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """The 3x3 matrix taking four points src (N,4,2) to dst (N,4,2) (DLT with h33 = 1)."""
    n = src.shape[0]
    a = np.zeros((n, 8, 8))
    b = np.zeros((n, 8))
    x, y = src[..., 0], src[..., 1]
    u, v = dst[..., 0], dst[..., 1]
    a[:, 0::2, 0] = x
    a[:, 0::2, 1] = y
    a[:, 0::2, 2] = 1
    a[:, 0::2, 6] = -x * u
    a[:, 0::2, 7] = -y * u
    a[:, 1::2, 3] = x
    a[:, 1::2, 4] = y
    a[:, 1::2, 5] = 1
    a[:, 1::2, 6] = -x * v
    a[:, 1::2, 7] = -y * v
    b[:, 0::2] = u
    b[:, 1::2] = v
    h = np.linalg.solve(a, b[..., None])[..., 0]
    return np.concatenate([h, np.ones((n, 1))], axis=1).reshape(n, 3, 3)


def corners(height: np.ndarray, width: np.ndarray) -> np.ndarray:
    """(N,4,2) pixel-centre corners: top-left, top-right, bottom-right, bottom-left."""
    w1, h1 = width - 1, height - 1
    z = np.zeros_like(width)
    return np.stack(
        [
            np.stack([z, z], -1),
            np.stack([w1, z], -1),
            np.stack([w1, h1], -1),
            np.stack([z, h1], -1),
        ],
        axis=1,
    )


def apply_points(m: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Map (N,K,2) points through (N,3,3) matrices (with the projective divide)."""
    homog = np.concatenate([points, np.ones((*points.shape[:-1], 1))], axis=-1)
    out = homog @ np.swapaxes(m, 1, 2)
    return out[..., :2] / out[..., 2:3]


def affine_rows(m: np.ndarray) -> np.ndarray:
    """Per sample: does its matrix have no perspective part?"""
    return np.isclose(m[:, 2, :2], 0.0).all(axis=1) & np.isclose(m[:, 2, 2], 1.0)


def is_affine(m: np.ndarray) -> bool:
    return bool(affine_rows(m).all())


def linear_scales(m: np.ndarray, height: np.ndarray, width: np.ndarray) -> np.ndarray:
    """(N,2) output pixels per source pixel near the source centre: the mean scale
    (sqrt of the Jacobian's determinant; below 0.5 the warp shrinks by more than 2x and
    would alias) and the largest, along the least shrunk direction (the Jacobian's
    larger singular value)."""
    cx, cy = (width - 1) / 2, (height - 1) / 2
    p = np.stack(
        [np.stack([cx, cy], -1), np.stack([cx + 1, cy], -1), np.stack([cx, cy + 1], -1)], 1
    )
    q = apply_points(m, p)
    jx, jy = q[:, 1] - q[:, 0], q[:, 2] - q[:, 0]
    mean = np.sqrt(np.abs(jx[:, 0] * jy[:, 1] - jx[:, 1] * jy[:, 0]))
    a, b, c = (jx**2).sum(-1), (jy**2).sum(-1), (jx * jy).sum(-1)
    largest = np.sqrt((a + b) / 2 + np.sqrt(((a - b) / 2) ** 2 + c**2))
    return np.stack([mean, largest], -1)
