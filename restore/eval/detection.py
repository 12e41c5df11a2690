"""``restore eval --task detect``: how well the detector finds damage, and how often it cries wolf.

Protocol: every photo, at its own resolution, gets seeded synthetic damage of one type at
a time (and once a mix of types); the detector's mask is compared with the painted label.
A mask border is a matter of opinion by a pixel or two, so counts are tolerant: a
detected pixel within ``tolerance`` px of true damage is correct, and a damaged pixel
within ``tolerance`` px of a detection is found. From the summed counts:
precision = correct / detected, recall = found / damaged, F1, and
IoU = found / (damaged + detected - correct). The unmodified photos measure false alarms:
the fraction of their pixels flagged.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import cv2
import numpy as np

from restore.detect.synth import DAMAGE_TYPES, paint_damage
from restore.eval.protocol import find_photos, rng_for
from restore.inpaint.composite import to_colour
from restore.io.images import ImageError, read_image
from restore.io.preview import write_overlay

if TYPE_CHECKING:
    from rich.table import Table

    from restore.detect.detector import Detector

MIXED = "mixed"
GOALS = {"scratch": 0.85, "dust": 0.85, MIXED: 0.8}  # F1 goals; clean photos: <= 0.1% flagged
CLEAN_GOAL_PERCENT = 0.1


@dataclass
class Counts:
    """Tolerant pixel counts summed over images."""

    detected: int = 0
    correct: int = 0  # detected pixels near true damage
    damaged: int = 0
    found: int = 0  # damaged pixels near a detection

    def add(self, pred: np.ndarray, truth: np.ndarray, tolerance: int) -> None:
        kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * tolerance + 1, 2 * tolerance + 1))
        near_truth = cv2.dilate(truth.astype(np.uint8), kernel) > 0
        near_pred = cv2.dilate(pred.astype(np.uint8), kernel) > 0
        self.detected += int(pred.sum())
        self.correct += int((pred & near_truth).sum())
        self.damaged += int(truth.sum())
        self.found += int((truth & near_pred).sum())

    def scores(self) -> dict[str, float]:
        precision = self.correct / self.detected if self.detected else 1.0
        recall = self.found / self.damaged if self.damaged else 1.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        union = self.damaged + self.detected - self.correct
        iou = self.found / union if union else 1.0
        return {"precision": precision, "recall": recall, "f1": f1, "iou": iou}


def damage_case(photo: np.ndarray, relative: str, damage: str, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """The seeded damaged photo and its label for one damage type (or ``mixed``)."""
    rng = rng_for(seed, damage, relative, "damage")
    if damage == MIXED:
        return paint_damage(photo, rng, count=int(rng.integers(1, 4)), negatives=0.0)
    return paint_damage(photo, rng, types=(damage,), count=1, negatives=0.0)


def evaluate_detector(data_dir: str | os.PathLike[str], detector: Detector,
                      types: tuple[str, ...] = (*DAMAGE_TYPES, MIXED), seed: int = 0, tolerance: int = 2,
                      out_dir: Path | None = None, limit: int | None = None,
                      progress: Any = None) -> dict[str, Any]:
    """Score ``detector`` on DATA_DIR; writes results.json and overlays under ``out_dir``."""
    unknown = [t for t in types if t not in (*DAMAGE_TYPES, MIXED)]
    if unknown:
        raise ValueError(f"unknown damage type {unknown[0]!r}; expected {', '.join((*DAMAGE_TYPES, MIXED))}")
    photos = []
    for path, relative in find_photos(data_dir, limit):
        try:
            photos.append((relative, np.rint(to_colour(read_image(path).pixels) * 255).astype(np.uint8)))
        except ImageError as exc:
            raise ImageError(f"{path}: {exc}") from None
    if not photos:
        raise ValueError(f"no photos in {data_dir}")
    rows: dict[str, Any] = {}
    seconds, megapixels = 0.0, 0.0
    for damage in (*types, "clean"):
        counts, flagged = Counts(), []
        for i, (relative, photo) in enumerate(photos):
            image, truth = (photo, np.zeros(photo.shape[:2], bool)) if damage == "clean" else \
                damage_case(photo, relative, damage, seed)
            start = time.perf_counter()
            pred = detector.detect([image])[0]
            seconds += time.perf_counter() - start
            megapixels += image.shape[0] * image.shape[1] / 1e6
            if damage == "clean":
                flagged.append(float(pred.mean()))
            else:
                counts.add(pred, truth, tolerance)
            if out_dir is not None and i < 4:
                write_overlay(out_dir / "overlays" / f"{damage}-{i}-truth.png", image, truth)
                write_overlay(out_dir / "overlays" / f"{damage}-{i}-found.png", image, pred)
            if progress:
                progress(damage, i + 1, len(photos))
        if damage == "clean":
            rows["clean"] = {"flagged_percent": 100 * float(np.mean(flagged)),
                             "worst_percent": 100 * float(np.max(flagged))}
        else:
            rows[damage] = {**counts.scores(), "damaged_percent": 100 * counts.damaged / max(1, sum(
                p.shape[0] * p.shape[1] for _, p in photos))}
    report = {"data": str(data_dir), "photos": len(photos), "seed": seed, "tolerance_px": tolerance,
              "sensitivity_threshold": detector.threshold, "views": detector.views,
              "model": detector.model_name,
              "seconds_per_megapixel": seconds / max(megapixels, 1e-9), "types": rows}
    if out_dir is not None:
        out_dir.mkdir(parents=True, exist_ok=True)
        (out_dir / "results.json").write_text(json.dumps(report, indent=2))
    return report


def format_detect_table(report: dict[str, Any]) -> Table:
    """The terminal table: one row per damage type, then the clean photos."""
    from rich.table import Table

    table = Table(title=f"damage detection on {report['photos']} photos ({report.get('views', 1)} views, "
                        f"tolerance {report['tolerance_px']} px, {report['seconds_per_megapixel']:.3f} s/MP)")
    for col in ("damage", "precision", "recall", "F1", "IoU", "goal"):
        table.add_column(col, justify="left" if col == "damage" else "right")
    for name, row in report["types"].items():
        if name == "clean":
            continue
        goal = GOALS.get(name)
        mark = "" if goal is None else f"F1 ≥ {goal} {'✓' if row['f1'] >= goal else '✗'}"
        table.add_row(name, f"{row['precision']:.3f}", f"{row['recall']:.3f}", f"{row['f1']:.3f}",
                      f"{row['iou']:.3f}", mark)
    clean = report["types"]["clean"]
    ok = "✓" if clean["flagged_percent"] <= CLEAN_GOAL_PERCENT else "✗"
    table.add_row("clean photos", f"{clean['flagged_percent']:.3f}% flagged",
                  f"worst {clean['worst_percent']:.2f}%", "", "", f"≤ {CLEAN_GOAL_PERCENT}% {ok}")
    return table
