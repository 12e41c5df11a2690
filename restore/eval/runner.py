"""Run every method on the same protocol inputs, score them, and write results and montages.

Work goes in chunks of ``inpainter.batch_size`` photos: each method fills the chunk (the model
in one batched call, as ``restore images`` runs it), then the chunk is scored, so memory stays
flat however many photos there are and the ground truth's ST-LPIPS features are computed once
per chunk for all methods.
"""

from __future__ import annotations

import itertools
import json
import math
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import cv2
import numpy as np

from restore.eval.baselines import BASELINES, get_baseline
from restore.eval.metrics import STLPIPS, InceptionFeatures, fid, kid, psnr, require_perceptual, ssim, streaks
from restore.eval.protocol import Case, Photo, iter_cases, kid_boxes, kid_crop_side, load_photos
from restore.train.masks import MASK_KINDS

if TYPE_CHECKING:
    from rich.table import Table

    from restore.inpaint.engine import Inpainter

MODEL_METHOD = "restore"
MONTAGE_METHODS = ("telea", "patchmatch", MODEL_METHOD)  # ns looks like telea; keep the sheet narrow
MONTAGE_TILE = 192
KID_SUBSETS = 100
KID_SUBSET_SIZE = 100

Progress = Callable[[str, int, int], None]  # (class, photos done, photos in all)


@dataclass
class _Scores:
    """Running scores of one method on one class."""

    per_image: list[dict[str, float | None]] = field(default_factory=list)
    seconds: float = 0.0
    features: list[np.ndarray] = field(default_factory=list)
    outside_changed: int = 0


def _finite(value: Any) -> Any:
    """JSON has no inf/NaN: write them as null (PSNR is inf only for a perfect fill)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite(v) for v in value]
    return value


def _mean(values: list[float | None]) -> float | None:
    vals = [v for v in values if v is not None]
    return float(np.mean(vals)) if vals else None


def _median(values: list[float | None]) -> float | None:
    vals = [v for v in values if v is not None]
    return float(np.median(vals)) if vals else None


def _fill_chunk(cases: list[Case], fills: dict[str, Callable], inpainter: Inpainter
                ) -> dict[str, tuple[list[np.ndarray], float]]:
    """Every method's outputs for a chunk, and the wall seconds spent inside its fill calls."""
    out: dict[str, tuple[list[np.ndarray], float]] = {}
    for name, fill in fills.items():
        results, seconds = [], 0.0
        for case in cases:
            given = case.masked.copy()  # a method that scribbles on its input can't reach the next one
            start = time.perf_counter()
            results.append(fill(given, case.mask))
            seconds += time.perf_counter() - start
        out[name] = (results, seconds)
    given = [case.masked.copy() for case in cases]
    start = time.perf_counter()
    results = inpainter.repair(given, [case.mask for case in cases])
    out[MODEL_METHOD] = (results, time.perf_counter() - start)
    return out


def _crops(images: list[np.ndarray], boxes: list[list[tuple[int, int]]], side: int) -> np.ndarray:
    return np.stack([img[y : y + side, x : x + side] for img, bxs in zip(images, boxes, strict=True)
                     for y, x in bxs])


def _montage(rows: list[tuple[Case, dict[str, np.ndarray]]], path: Path) -> None:
    """Truth | input (noise in the holes) | fills, one photo a row, downscaled; labelled header."""
    names = [m for m in MONTAGE_METHODS if m in rows[0][1]]
    labels = ["truth", "input"] + names
    tile = MONTAGE_TILE
    header = np.full((24, tile * len(labels), 3), 255, np.uint8)
    for i, label in enumerate(labels):
        cv2.putText(header, label, (i * tile + 6, 17), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0, 0, 0), 1,
                    cv2.LINE_AA)
    lines = [header]
    for case, outputs in rows:
        cells = [case.truth, case.masked] + [outputs[n] for n in names]
        lines.append(np.concatenate([cv2.resize(c, (tile, tile), interpolation=cv2.INTER_AREA)
                                     for c in cells], axis=1))
    sheet = np.concatenate(lines, axis=0)
    cv2.imwrite(str(path), cv2.cvtColor(sheet, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_PNG_COMPRESSION, 9])


def _check_names(classes: Sequence[str], baselines: Sequence[str]) -> None:
    for cls in classes:
        if cls not in MASK_KINDS:
            raise ValueError(f"unknown mask class {cls!r}; expected some of {', '.join(MASK_KINDS)}")
    for name in baselines:
        if name not in BASELINES:
            raise ValueError(f"unknown baseline {name!r}; expected some of {', '.join(BASELINES)}")


def evaluate(data_dir: str | os.PathLike[str], inpainter: Inpainter,
             classes: Sequence[str] = ("thin", "medium", "thick"), size: int = 512,
             baselines: Sequence[str] = ("telea", "ns", "patchmatch"), seed: int = 0,
             out_dir: str | os.PathLike[str] | None = None, limit: int | None = None, *,
             perceptual: bool = True, kid_crops: int = 4, montage_rows: int = 4,
             progress: Progress | None = None) -> dict[str, Any]:
    """Score ``inpainter`` and ``baselines`` on the photos of ``data_dir`` under one protocol.

    Returns (and writes to ``out_dir/results.json``) ``{"protocol", "model", "device",
    "methods", "results": {class: {method: summary}}, "per_image": {class: [...]}}``.
    ``perceptual=False`` skips ST-LPIPS, KID and FID (no optional packages needed); it raises
    MissingPackage early when they are asked for and missing.
    """
    _check_names(classes, baselines)
    fills = {name: get_baseline(name) for name in baselines}  # missing packages fail before any work
    lpips = inception = None
    if perceptual:
        require_perceptual()
        lpips, inception = STLPIPS(inpainter.device), InceptionFeatures(inpainter.device)
    photos: list[Photo] = load_photos(data_dir, size, limit)
    methods = list(fills) + [MODEL_METHOD]
    side = kid_crop_side(size)
    first = next(iter_cases(photos[:1], classes[0], seed))
    inpainter.repair([first.masked], [first.mask])  # warm-up: one-off setup costs stay out of s/img
    out = Path(out_dir) if out_dir is not None else None
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)

    results: dict[str, dict[str, Any]] = {}
    per_image: dict[str, list[dict[str, Any]]] = {}
    for cls in classes:
        scores = {m: _Scores() for m in methods}
        real_features: list[np.ndarray] = []
        records: list[dict[str, Any]] = []
        montage: list[tuple[Case, dict[str, np.ndarray]]] = []
        cases = iter_cases(photos, cls, seed)
        done = 0
        while chunk := list(itertools.islice(cases, inpainter.batch_size)):
            filled = _fill_chunk(chunk, fills, inpainter)
            truths = np.stack([c.truth for c in chunk])
            truth_feats = lpips.features(truths) if lpips is not None else None
            boxes = [kid_boxes(c, kid_crops, side, seed) for c in chunk]
            if inception is not None:
                real_features.append(inception(_crops([c.truth for c in chunk], boxes, side)))
            chunk_records = [{"path": c.relative, "hole": round(float(c.mask.mean()), 4),
                              "upscaled": c.photo.upscaled, "methods": {}} for c in chunk]
            for name, (outputs, seconds) in filled.items():
                s = scores[name]
                s.seconds += seconds
                dists = (lpips.distance(truth_feats, lpips.features(np.stack(outputs)))
                         if lpips is not None else [None] * len(chunk))
                for case, output, dist, record in zip(chunk, outputs, dists, chunk_records, strict=True):
                    s.outside_changed += int(not np.array_equal(output[~case.mask], case.masked[~case.mask]))
                    image_scores = {"psnr": psnr(case.truth, output), "ssim": ssim(case.truth, output),
                                    "stlpips": None if dist is None else float(dist),
                                    "streaks": streaks(case.truth, output, case.mask)}
                    s.per_image.append(image_scores)
                    record["methods"][name] = image_scores
                if inception is not None:
                    s.features.append(inception(_crops(outputs, boxes, side)))
            records += chunk_records
            for i, case in enumerate(chunk):
                if len(montage) < montage_rows:
                    montage.append((case, {name: filled[name][0][i] for name in methods}))
            done += len(chunk)
            if progress is not None:
                progress(cls, done, len(photos))
        results[cls] = {name: _summary(scores[name], real_features) for name in methods}
        per_image[cls] = records
        if out is not None and montage:
            _montage(montage, out / f"montage-{cls}.png")

    report = _finite({
        "protocol": {
            "data_dir": str(data_dir), "images": len(photos), "size": size, "seed": seed,
            "classes": list(classes), "limit": limit,
            "upscaled": sum(p.upscaled for p in photos),
            "hole_input": "uniform uint8 noise",
            "kid": {"crops_per_image": kid_crops, "crop_side": side, "resized_to": 299,
                    "subsets": KID_SUBSETS, "subset_size": KID_SUBSET_SIZE, "estimator": "paired U-statistic"}
            if perceptual else None,
        },
        "model": inpainter.model_name, "grain": inpainter.grain,
        "fill": inpainter.fill_style, "device": str(inpainter.device),
        "methods": methods,
        "results": results, "per_image": per_image,
    })
    if out is not None:
        (out / "results.json").write_text(json.dumps(report, indent=1, allow_nan=False) + "\n")
    return report


def _summary(s: _Scores, real_features: list[np.ndarray]) -> dict[str, Any]:
    n = len(s.per_image)
    summary: dict[str, Any] = {
        "images": n,
        "psnr": _mean([r["psnr"] for r in s.per_image]),
        "ssim": _mean([r["ssim"] for r in s.per_image]),
        "stlpips": _mean([r["stlpips"] for r in s.per_image]),
        "streaks": _median([r["streaks"] for r in s.per_image]),
        "kid": None, "kid_std": None, "fid": None,
        "sec_per_image": s.seconds / n if n else None,
        "outside_changed": s.outside_changed,
    }
    if s.features and real_features:
        real, fake = np.concatenate(real_features), np.concatenate(s.features)
        mean, std = kid(real, fake, KID_SUBSETS, KID_SUBSET_SIZE, paired=True)  # crop i of both: same place
        # With no more crops than one subset holds, every subset is the same set: no spread to report.
        summary.update(kid=mean, kid_std=std if min(len(real), len(fake)) > KID_SUBSET_SIZE else None,
                       fid=fid(real, fake))
    return summary


# -- terminal table ------------------------------------------------------------------------------

_COLUMNS = (  # (key, header, higher is better, format)
    ("psnr", "PSNR↑", True, "{:.2f}"),
    ("ssim", "SSIM↑", True, "{:.4f}"),
    ("stlpips", "ST-LPIPS↓", False, "{:.4f}"),
    ("kid", "KID×10³↓", False, None),
    ("fid", "FID↓", False, "{:.1f}"),
    ("sec_per_image", "s/img", False, "{:.3f}"),
)


def _cell(key: str, fmt: str | None, row: dict[str, Any]) -> str:
    value = row.get(key)
    if value is None:
        return "—"
    if key == "kid":
        std = row.get("kid_std")
        return f"{value * 1e3:.2f}" + (f" ± {std * 1e3:.2f}" if std is not None else "")
    return fmt.format(value)  # type: ignore[union-attr]


def format_table(report: dict[str, Any]) -> Table:
    """The summary as a rich Table: one block of rows per mask class, the best value in bold."""
    from rich.table import Table

    proto = report["protocol"]
    caption = None
    if proto["upscaled"]:
        caption = (f"{proto['upscaled']} of {proto['images']} photos were smaller than {proto['size']} px "
                   "and upscaled (smoother, so easier to fill)")
    grain = f", grain {report['grain']:g}" if report.get("grain") is not None else ""
    grain += f", fill {report['fill']}" if report.get("fill") else ""
    table = Table(title=f"restore eval: {report['model']}{grain} on {proto['images']} photos, "
                        f"{proto['size']} px, seed {proto['seed']} ({report['device']})", caption=caption)
    table.add_column("class")
    table.add_column("method")
    for _, header, _, _ in _COLUMNS:
        table.add_column(header, justify="right")
    for cls, rows in report["results"].items():
        best = {}
        for key, _, higher, _ in _COLUMNS:
            values = [r[key] for r in rows.values() if r.get(key) is not None]
            if len(values) > 1 and key != "sec_per_image":
                best[key] = max(values) if higher else min(values)
        for i, (method, row) in enumerate(rows.items()):
            cells = []
            for key, _, _, fmt in _COLUMNS:
                text = _cell(key, fmt, row)
                cells.append(f"[bold]{text}[/bold]" if key in best and row.get(key) == best[key] else text)
            table.add_row(cls if i == 0 else "", method, *cells, end_section=i == len(rows) - 1)
    return table
