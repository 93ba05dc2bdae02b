"""Registration on image features, for forms without a printed box row (``registration:
{method: features, template: blank.png}`` in a form spec).

A scan is brought onto the blank template page in two steps, both OpenCV:

1. **ORB key points** of the scan and of the template (on copies at most ``work_width`` wide),
   matched by Hamming distance with Lowe's ratio test; a similarity transform (rotation, scale,
   shift) fitted to the matches with RANSAC (``cv2.estimateAffinePartial2D``). Fewer than
   ``min_matches`` inliers: :class:`~handwriting_pipeline.forms.registration.RegistrationError`.
2. **ECC refinement** (``cv2.findTransformECC``, Evangelidis & Psarakis 2008) of that transform
   on blurred copies, which aligns the printed lines to a fraction of a pixel; when it does not
   converge the ORB transform is kept.

The page is then warped onto the template's size (white outside the scan).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from PIL import Image

from handwriting_pipeline.forms.registration import RegistrationError


@dataclass
class FeatureRegistration:
    """What feature registration found: the page -> template transform and how it was fitted."""

    matrix: list[list[float]]  # 2x3 affine map of page pixels onto template pixels
    matches: int  # ORB matches kept by the ratio test
    inliers: int  # of them, consistent with the fitted transform
    refined: bool  # ECC converged (else the ORB transform is used)
    angle: float  # rotation of the scan, degrees
    scale: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _grey(image: Image.Image) -> np.ndarray:
    return np.asarray(image.convert("L"), dtype=np.uint8)


@lru_cache(maxsize=8)
def _template(path: str) -> np.ndarray:
    if not Path(path).is_file():
        raise FileNotFoundError(f"{path}: the form spec's registration template (a blank form image) is missing")
    return _grey(Image.open(path))


def _small(grey: np.ndarray, width: int) -> tuple[np.ndarray, float]:
    factor = min(1.0, width / grey.shape[1])
    if factor == 1.0:
        return grey, 1.0
    size = (round(grey.shape[1] * factor), round(grey.shape[0] * factor))
    return cv2.resize(grey, size, interpolation=cv2.INTER_AREA), factor


def _orb_transform(page: np.ndarray, template: np.ndarray, max_features: int, min_matches: int) -> tuple[np.ndarray, int, int]:
    """Page -> template similarity transform (2x3) from ORB matches, with match and inlier counts."""
    orb = cv2.ORB_create(nfeatures=int(max_features))
    kp_page, des_page = orb.detectAndCompute(page, None)
    kp_tmpl, des_tmpl = orb.detectAndCompute(template, None)
    if des_page is None or des_tmpl is None:
        raise RegistrationError("feature registration: no key points found (a blank or unreadable page)")
    pairs = cv2.BFMatcher(cv2.NORM_HAMMING).knnMatch(des_page, des_tmpl, k=2)
    good = [m[0] for m in pairs if len(m) == 2 and m[0].distance < 0.75 * m[1].distance]
    if len(good) < min_matches:
        raise RegistrationError(f"feature registration: {len(good)} key point matches with the template, "
                                f"{min_matches} needed (not this form, or a very poor scan)")
    src = np.float32([kp_page[m.queryIdx].pt for m in good])
    dst = np.float32([kp_tmpl[m.trainIdx].pt for m in good])
    matrix, inliers = cv2.estimateAffinePartial2D(src, dst, method=cv2.RANSAC, ransacReprojThreshold=4.0)
    count = int(inliers.sum()) if inliers is not None else 0
    if matrix is None or count < min_matches:
        raise RegistrationError(f"feature registration: {count} matches agree on one transform, {min_matches} needed")
    return matrix, len(good), count


def _ecc(page: np.ndarray, template: np.ndarray, matrix: np.ndarray) -> tuple[np.ndarray, bool]:
    """``matrix`` refined by ECC (affine motion), or unchanged when ECC does not converge."""
    blur = (5, 5)
    tmpl = cv2.GaussianBlur(255 - template, blur, 0).astype(np.float32)
    warped = cv2.GaussianBlur(255 - page, blur, 0).astype(np.float32)
    inverse = cv2.invertAffineTransform(matrix).astype(np.float32)  # ECC maps template coordinates -> page
    criteria = (cv2.TERM_CRITERIA_EPS | cv2.TERM_CRITERIA_COUNT, 60, 1e-5)
    try:
        _, refined = cv2.findTransformECC(tmpl, warped, inverse, cv2.MOTION_AFFINE, criteria, None, 1)
    except cv2.error:
        return matrix, False
    return cv2.invertAffineTransform(refined), True


def register_features(page: Image.Image, template_path: str | Path, max_features: int = 5000,
                      min_matches: int = 25, work_width: int = 1200) -> tuple[Image.Image, FeatureRegistration]:
    """``page`` warped onto the blank template's frame (the template's size) and how."""
    template = _template(str(template_path))
    grey = _grey(page)
    small_page, fp = _small(grey, work_width)
    small_tmpl, ft = _small(template, work_width)
    matrix, matches, inliers = _orb_transform(small_page, small_tmpl, max_features, min_matches)
    matrix, refined = _ecc(small_page, small_tmpl, matrix)
    # back to full resolution: x_t = ft^-1 * M(fp * x_p)
    full = matrix.astype(np.float64).copy()
    full[:, :2] *= fp / ft
    full[:, 2] /= ft
    height, width = template.shape
    warped = cv2.warpAffine(grey, full, (width, height), flags=cv2.INTER_LINEAR, borderValue=255)
    scale = float(np.hypot(full[0, 0], full[1, 0]))
    angle = float(np.degrees(np.arctan2(full[1, 0], full[0, 0])))
    found = FeatureRegistration(full.round(6).tolist(), matches, inliers, refined, round(angle, 3), round(scale, 4))
    return Image.fromarray(warped), found
