"""Low-resolution region helpers for the subject tracker: shifting masks, splitting the
foreground among people along colour edges, and turning a label map into a soft gate."""

from __future__ import annotations

import cv2
import numpy as np

#: alpha at or above this is a confident person pixel ("core"); cores seed the regions
CORE = 0.5
#: alpha at or above this is shared out among the people (soft edges, hair, motion blur)
SOFT = 0.05
#: the gate stays 1 this many low-resolution px beyond the subject's region and fades to 0 over
#: as many again: the guided filter's full-resolution edge reaches a little past the low-res one
REACH = 4.0


def shift(mask: np.ndarray, dx: int, dy: int) -> np.ndarray:
    """`mask` moved by whole pixels (x right, y down), zero-filled; same shape."""
    h, w = mask.shape
    out = np.zeros_like(mask)
    if abs(dx) >= w or abs(dy) >= h:
        return out
    ys, yd = (slice(0, h - dy), slice(dy, h)) if dy >= 0 else (slice(-dy, h), slice(0, h + dy))
    xs, xd = (slice(0, w - dx), slice(dx, w)) if dx >= 0 else (slice(-dx, w), slice(0, w + dx))
    out[yd, xd] = mask[ys, xs]
    return out


def bbox(mask: np.ndarray) -> tuple[int, int, int, int] | None:
    """(x0, y0, x1, y1) half-open bounds of a mask's True pixels, None when empty."""
    rows = np.flatnonzero(mask.any(1))
    if rows.size == 0:
        return None
    cols = np.flatnonzero(mask.any(0))
    return int(cols[0]), int(rows[0]), int(cols[-1]) + 1, int(rows[-1]) + 1


def grown_box(mask: np.ndarray, margin: int) -> tuple[slice, slice] | None:
    """Slices of `mask`'s bounding box grown by `margin` px (clipped), None when empty."""
    box = bbox(mask)
    if box is None:
        return None
    h, w = mask.shape
    return (
        slice(max(box[1] - margin, 0), min(box[3] + margin, h)),
        slice(max(box[0] - margin, 0), min(box[2] + margin, w)),
    )


def components(mask: np.ndarray) -> tuple[int, np.ndarray, np.ndarray]:
    """8-connected components of a bool mask: (count incl. background, labels int32, areas);
    computed on the mask's bounding box only."""
    labels = np.zeros(mask.shape, np.int32)
    box = grown_box(mask, 0)
    if box is None:
        return 1, labels, np.array([mask.size])
    n, part, stats, _ = cv2.connectedComponentsWithStats(mask[box].astype(np.uint8), connectivity=8, ltype=cv2.CV_32S)
    labels[box] = part
    areas = stats[:, cv2.CC_STAT_AREA].copy()
    areas[0] = mask.size - areas[1:].sum()
    return n, labels, areas


def boundary_free(owner: np.ndarray, radius: int) -> np.ndarray:
    """`owner` with labels removed within `radius` px of a differently-labelled pixel.

    Where two people meet, the prediction from the last frame is least sure; leaving that band
    open lets the colour-edge partition place the border afresh each frame.
    """
    if radius <= 0 or not owner.any():
        return owner
    size = 2 * radius + 1
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (size, size))
    o = owner.astype(np.float32)
    high = cv2.dilate(o, kernel)
    low = cv2.erode(np.where(owner > 0, o, np.float32(3e7)), kernel)
    keep = (owner > 0) & (high == o) & ((low == o) | (low == np.float32(3e7)))
    return np.where(keep, owner, 0).astype(np.int32)


def partition(markers: np.ndarray, rgb: np.ndarray, soft: np.ndarray) -> np.ndarray:
    """Every `soft` pixel labelled with one of the `markers` labels (int32 `(h,w)`, 0 = open).

    Watershed flooding on the picture's colour gradient: where two people's regions meet, the
    border settles on the strongest colour edge between their markers (a silhouette). Runs on
    the bounding box of the foreground only. Soft pixels no marker reaches stay 0.
    """
    labels = np.zeros(markers.shape, np.int32)
    box = bbox(soft)
    if box is None or not markers.any():
        return labels
    h, w = soft.shape
    x0, y0, x1, y1 = max(box[0] - 2, 0), max(box[1] - 2, 0), min(box[2] + 2, w), min(box[3] + 2, h)
    m = np.ascontiguousarray(markers[y0:y1, x0:x1], np.int32)
    if not m.any():
        # all markers lie outside the foreground's box (can happen with a ghost): flood the whole frame
        x0, y0, x1, y1 = 0, 0, w, h
        m = markers.astype(np.int32, copy=True)
    cv2.watershed(np.ascontiguousarray(rgb[y0:y1, x0:x1, ::-1]), m)
    edge = m < 0
    if edge.any():
        # one-pixel watershed lines: take a neighbour's label
        m[edge] = cv2.dilate(np.where(edge, 0, m).astype(np.float32), np.ones((3, 3), np.uint8))[edge].astype(np.int32)
    labels[y0:y1, x0:x1] = np.where(soft[y0:y1, x0:x1], m, 0)
    return labels


def fill_nearest(labels: np.ndarray, where: np.ndarray) -> np.ndarray:
    """`labels` with its 0 pixels inside `where` given the label of the nearest labelled pixel."""
    missing = where & (labels == 0)
    if not missing.any() or not labels.any():
        return labels
    box = grown_box(missing | (labels != 0), 0)
    part = labels[box]
    _, nearest = cv2.distanceTransformWithLabels(
        (part == 0).astype(np.uint8), cv2.DIST_L2, 3, labelType=cv2.DIST_LABEL_PIXEL
    )
    # nearest: for each pixel, the index (1-based, in scan order) of its nearest zero-distance pixel
    seeds = part[part != 0]
    out = labels.copy()
    hole = missing[box]
    out[box][hole] = seeds[nearest[hole] - 1]
    return out


def gate_from_labels(labels: np.ndarray, selected: np.ndarray, soft: np.ndarray) -> np.ndarray:
    """The gate `(h,w)` float32: 1 on the `selected` labels' regions, 0 on the other labels',
    a one-pixel ramp where they meet, and beyond the foreground 1 within `REACH` px of the
    subject, fading to 0 over `REACH` more (everything far from the subject is 0)."""
    out = np.zeros(labels.shape, np.float32)
    sel = np.isin(labels, selected) & (labels > 0) if len(selected) else None
    box = None if sel is None else grown_box(sel, int(2 * REACH) + 2)
    if box is None or sel is None:
        return out
    lab, sel, soft = labels[box], sel[box], soft[box]
    d_sel = cv2.distanceTransform((~sel).astype(np.uint8), cv2.DIST_L2, 5)
    others = (lab > 0) & ~sel
    if others.any():
        # (people just outside the box are farther than the ramp reaches: no effect inside it)
        d_oth = cv2.distanceTransform((~others).astype(np.uint8), cv2.DIST_L2, 5)
        gate = np.clip(0.5 + 0.5 * (d_oth - d_sel), 0.0, 1.0)
    else:
        gate = np.ones(lab.shape, np.float32)
    reach = np.clip((2 * REACH - d_sel) / REACH, 0.0, 1.0)
    out[box] = np.where(soft, gate, gate * reach)
    return out
