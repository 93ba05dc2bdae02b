"""Label-preserving augmentation of a grey handwriting line (the field reader's lines, and the
Donut text-line encoder's lines built on them)."""

from __future__ import annotations

import cv2
import numpy as np


class Augment:
    """Random, label-preserving distortions of a grey line (seeded per call by the caller's rng)."""

    def __init__(self, strength: float = 1.0) -> None:
        self.s = float(strength)

    def __call__(self, line: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        s = self.s
        h, w = line.shape
        sx = 1 + rng.uniform(-0.12, 0.12) * s
        sy = 1 + rng.uniform(-0.05, 0.05) * s
        shear = rng.uniform(-0.25, 0.25) * s
        angle = np.deg2rad(rng.uniform(-1.5, 1.5) * s)
        a = np.array([[sx * np.cos(angle), shear - np.sin(angle), 0], [np.sin(angle), sy * np.cos(angle), 0]])
        a[:, 2] = [w / 2, h / 2] - a[:, :2] @ [w / 2, h / 2] + rng.uniform(-4, 4, 2) * s
        out = cv2.warpAffine(line, a, (int(w * max(1, sx)) + 2, h), borderValue=255, flags=cv2.INTER_LINEAR)
        r = rng.random()
        if r < 0.25 * s:
            out = cv2.erode(out, np.ones((2, 2), np.uint8))  # thicker strokes (ink is dark)
        elif r < 0.5 * s:
            out = cv2.dilate(out, np.ones((2, 2), np.uint8))  # thinner strokes
        if rng.random() < 0.2 * s:
            out = cv2.GaussianBlur(out, (3, 3), 0)
        if rng.random() < 0.2 * s:
            flip = rng.random(out.shape) < 0.004
            out = np.where(flip, 255 - out, out).astype(np.uint8)
        return out
