"""`restore video`: frames, rate, duration and audio kept; better than Telea; steadier than per-frame repair.

The damaged clip is cut from ../shared/data/video/cockatoo.mp4 (480x270, 1.5 s, with its audio)
where that exists, else built from tests/data/tiny.mp4. The damage moves from frame to frame (a
scratch at a new place, dust specks), as it does on film, so what one frame hides another shows.
"""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
import threading
import time
import tracemalloc
from pathlib import Path
from types import SimpleNamespace

import cv2
import numpy as np
import pytest
from click.testing import CliRunner
from conftest import EXAMPLES, SHARED

from restore.cli import main
from restore.video.ahead import Ahead
from restore.video.job import RepairOptions, fill_small_leftovers, repair_frames
from restore.video.masks import damage_boxes, single_frame_defects, stepped_box
from restore.video.overlay import OverlayFinder
from restore.video.plan import plan_video_jobs
from restore.video.propagate import bilinear
from restore.video.reader import FrameReader, ffmpeg_exe, probe_video
from restore.video.writer import VideoWriter

ROOT = Path(__file__).resolve().parents[1]
TINY = ROOT / "tests" / "data" / "tiny.mp4"
COCKATOO = SHARED / "video" / "cockatoo.mp4"


def _run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, list(args), catch_exceptions=False)
    return result.exit_code, result.output


def _frames(path: Path) -> np.ndarray:
    return np.stack(list(FrameReader(probe_video(path))))


def _psnr(a: np.ndarray, b: np.ndarray, where: np.ndarray) -> float:
    mse = ((a.astype(np.float32) - b.astype(np.float32))[where] ** 2).mean()
    return float(10 * np.log10(255.0 ** 2 / max(mse, 1e-6)))


def _flicker(frames: np.ndarray, masks: np.ndarray, truth: np.ndarray) -> float:
    """How far the mean absolute change from one frame to the next inside the repaired area is from
    the original's: the scene's own motion changes pixels too, so only the excess (or lack) is flicker."""
    where = masks[1:] | masks[:-1]

    def change(x: np.ndarray) -> float:
        return float(np.abs(x[1:].astype(np.float32) - x[:-1].astype(np.float32))[where].mean())

    return abs(change(frames) - change(truth))


class Echo:
    """An 'inpainter' that changes nothing: for tests about the stream, not the fill."""

    model_name, device = "echo", "cpu"

    def repair(self, images, masks, grown=None):
        return images


def _damage(frame: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """A scratch somewhere new and a few dust specks: what one frame hides, the next shows."""
    h, w = frame.shape[:2]
    mask = np.zeros((h, w), np.uint8)
    x = int(rng.integers(w // 20, w - w // 20))
    cv2.line(mask, (x, 0), (x + int(rng.integers(-w // 60 - 1, w // 60 + 1)), h - 1), 255, max(1, w // 240))
    for _ in range(6):
        cv2.circle(mask, (int(rng.integers(0, w)), int(rng.integers(0, h))), int(rng.integers(1, 4)), 255, -1)
    damaged = frame.copy()
    damaged[mask > 0] = rng.choice([20, 235])
    return damaged, mask > 0


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> SimpleNamespace:
    """original.mp4 (a real clip with audio), damaged.mp4, masks/NNNN.png, and the original frames."""
    folder = tmp_path_factory.mktemp("video")
    original = folder / "original.mp4"
    if COCKATOO.exists():
        subprocess.run([ffmpeg_exe(), "-v", "error", "-ss", "2", "-t", "1.5", "-i", str(COCKATOO),
                        "-vf", "scale=480:270", "-c:v", "libx264", "-crf", "12", "-c:a", "aac", "-b:a", "32k",
                        str(original)], check=True)
    else:
        shutil.copy(TINY, original)
    info = probe_video(original)
    frames = _frames(original)
    rng = np.random.default_rng(0)
    (folder / "masks").mkdir()
    writer = VideoWriter(folder / "damaged.mp4", info.width, info.height, info.fps, crf=8,
                         audio_from=original)
    masks = []
    for i, frame in enumerate(frames):
        damaged, mask = _damage(frame, rng)
        writer.write(damaged)
        cv2.imwrite(str(folder / "masks" / f"{i:04d}.png"), mask.astype(np.uint8) * 255)
        masks.append(mask)
    writer.close()
    return SimpleNamespace(folder=folder, original=original, damaged=folder / "damaged.mp4", info=info,
                           frames=frames, masks=np.stack(masks), mask_dir=folder / "masks")


def test_output_keeps_frames_rate_duration_audio_and_beats_telea(clip, tmp_path, tiny_model):
    out = tmp_path / "out.mp4"
    report = tmp_path / "run.jsonl"
    code, _ = _run("video", str(clip.damaged), "-o", str(out), "--masks", str(clip.mask_dir),
                   "--model", str(tiny_model), "--report", str(report), "-q")
    assert code == 0
    before, after = probe_video(clip.damaged), probe_video(out)
    assert (after.width, after.height, after.fps) == (before.width, before.height, before.fps)
    assert after.has_audio and abs(after.duration - before.duration) < 0.1
    repaired = _frames(out)
    assert len(repaired) == len(clip.frames)
    line = json.loads(report.read_text())
    assert line["status"] == "ok" and line["frames"] == len(clip.frames) and line["copied_percent"] > 80
    damaged = _frames(clip.damaged)
    telea = np.stack([cv2.inpaint(f, m.astype(np.uint8), 3, cv2.INPAINT_TELEA)
                      for f, m in zip(damaged, clip.masks, strict=True)])
    ours, theirs = _psnr(repaired, clip.frames, clip.masks), _psnr(telea, clip.frames, clip.masks)
    assert ours > theirs + 0.5, (ours, theirs)
    assert _psnr(repaired, clip.frames, ~clip.masks) > 30  # outside the damage: only re-encoding loss


def test_propagation_flickers_less_than_per_frame_repair(clip):
    """The shipped model, frame by frame, against the same model behind propagation (12 frames),
    with a 28 px blotch somewhere new in every frame besides the thin damage: the generator draws
    each frame's blotch anew, propagation copies what the neighbours show. (On thin damage alone,
    since the generator got tiles sized to it, the two flicker about as little.)"""
    from restore.inpaint.engine import Inpainter

    inpainter = Inpainter(batch_size=8, fill="smooth")  # restore video's default
    frames, masks = _frames(clip.damaged)[:12], clip.masks[:12].copy()
    rng = np.random.default_rng(1)
    for frame, mask in zip(frames, masks, strict=True):
        y, x = rng.integers(20, frame.shape[0] - 50), rng.integers(20, frame.shape[1] - 50)
        mask[y:y + 28, x:x + 28] = True
        frame[y:y + 28, x:x + 28] = 255
    runs = {}
    for name, temporal in [("propagated", True), ("per-frame", False)]:
        out = repair_frames(frames, inpainter, masks=list(masks), options=RepairOptions(temporal=temporal))
        runs[name] = np.stack([r.pixels for r in out])
    ours = _flicker(runs["propagated"], masks, clip.frames[:12])
    per_frame = _flicker(runs["per-frame"], masks, clip.frames[:12])
    assert ours < per_frame, (ours, per_frame)


def test_static_mask_saved_masks_and_frames_out(clip, tmp_path, tiny_model):
    h, w = clip.info.height, clip.info.width
    logo = np.zeros((h, w), np.uint8)
    logo[h - 20:h - 6, w - 60:w - 8] = 255
    cv2.imwrite(str(tmp_path / "logo.png"), logo)
    saved = tmp_path / "used.mp4"
    code, _ = _run("video", str(clip.damaged), "-o", str(tmp_path / "frames"),
                   "--mask", str(tmp_path / "logo.png"), "--save-masks", str(saved),
                   "--model", str(tiny_model), "-q")
    assert code == 0
    written = sorted((tmp_path / "frames").glob("*.png"))
    assert [p.name for p in written[:2]] == ["000001.png", "000002.png"] and len(written) == len(clip.frames)
    masks = _frames(saved)
    assert len(masks) == len(clip.frames) and (masks[..., 0] > 127).sum(axis=(1, 2)).tolist() == [
        int((logo > 0).sum())] * len(clip.frames)
    first = cv2.cvtColor(cv2.imread(str(written[0])), cv2.COLOR_BGR2RGB)
    assert _psnr(first, _frames(clip.damaged)[0], logo == 0) > 50  # frames out: PNG, lossless outside


def test_image_sequence_in_frames_and_video_out(clip, tmp_path, tiny_model):
    reel, masks = tmp_path / "reel", tmp_path / "reel-masks"
    reel.mkdir()
    masks.mkdir()
    for i in range(8):  # numbered without zero padding: natural order must still hold
        cv2.imwrite(str(reel / f"f{i + 1}.png"), cv2.cvtColor(clip.frames[i], cv2.COLOR_RGB2BGR))
        cv2.imwrite(str(masks / f"m{i + 1}.png"), clip.masks[i].astype(np.uint8) * 255)
    code, _ = _run("video", str(reel), "--masks", str(masks), "--model", str(tiny_model), "-q")
    assert code == 0
    out = tmp_path / "reel.restored"
    assert sorted(p.name for p in out.iterdir()) == sorted(p.name for p in reel.iterdir())
    code, _ = _run("video", str(reel), "-o", str(tmp_path / "reel.mp4"), "--fps", "12",
                   "--masks", str(masks), "--model", str(tiny_model), "-q")
    assert code == 0
    info = probe_video(tmp_path / "reel.mp4")
    assert info.fps == 12 and len(_frames(tmp_path / "reel.mp4")) == 8


def test_rotation_and_odd_size_are_kept(tmp_path, tiny_model):
    rotated = tmp_path / "phone.mp4"
    subprocess.run([ffmpeg_exe(), "-v", "error", "-display_rotation", "90", "-i", str(TINY), "-c", "copy",
                    str(rotated)], check=True)
    source = probe_video(rotated)
    assert source.rotation == 90 and (source.width, source.height) == (96, 128)  # upright, as players show it
    mask = np.zeros((128, 96), np.uint8)
    mask[10:20, 30:60] = 255  # drawn on the upright picture
    cv2.imwrite(str(tmp_path / "m.png"), mask)
    code, _ = _run("video", str(rotated), "--mask", str(tmp_path / "m.png"), "--model", str(tiny_model), "-q")
    assert code == 0
    out = probe_video(tmp_path / "phone.restored.mp4")
    assert (out.rotation, out.width, out.height, out.has_audio) == (90, 96, 128, True)

    odd = tmp_path / "odd.mkv"
    writer = VideoWriter(odd, 33, 25, probe_video(TINY).fps)
    for frame in _frames(TINY)[:6]:
        writer.write(np.ascontiguousarray(frame[:25, :33]))
    writer.close()
    cv2.imwrite(str(tmp_path / "dot.png"), cv2.circle(np.zeros((25, 33), np.uint8), (16, 12), 3, 255, -1))
    code, _ = _run("video", str(odd), "--mask", str(tmp_path / "dot.png"), "--model", str(tiny_model), "-q")
    assert code == 0
    assert _frames(tmp_path / "odd.restored.mkv").shape == (6, 25, 33, 3)


def test_video_looks_with_one_detector_view_and_fills_deeper_damage_classically(tmp_path, monkeypatch,
                                                                               tiny_model, tiny_detector):
    """Video's own defaults (one view, an 8 px classical limit), which the flags still override."""
    import restore.cli.common as common
    from restore.inpaint.windows import CLASSICAL_DEPTH, VIDEO_CLASSICAL_DEPTH
    from restore.video.masks import DETECTOR_VIEWS

    made: dict[str, object] = {}
    real_detector, real_inpainter = common.make_detector, common.make_inpainter

    def detector(*args, **kwargs):
        made["detector"] = found = real_detector(*args, **kwargs)
        return found

    def inpainter(*args, **kwargs):
        made["inpainter"] = engine = real_inpainter(*args, **kwargs)
        return engine

    monkeypatch.setattr("restore.cli.video.make_detector", detector)
    monkeypatch.setattr("restore.cli.video.make_inpainter", inpainter)
    shutil.copy(TINY, tmp_path / "tiny.mp4")
    base = ["video", str(tmp_path / "tiny.mp4"), "--model", str(tiny_model), "--detector", str(tiny_detector),
            "--overwrite", "-q"]
    assert _run(*base)[0] == 0
    assert made["detector"].views == DETECTOR_VIEWS == 1
    assert made["inpainter"].classical_depth == VIDEO_CLASSICAL_DEPTH > CLASSICAL_DEPTH
    assert _run(*base, "--detector-views", "3", "--classical-thin", "2")[0] == 0
    assert made["detector"].views == 3 and made["inpainter"].classical_depth == 2


def test_detector_masks_and_a_missing_detector(tmp_path, tiny_model, tiny_detector):
    shutil.copy(TINY, tmp_path / "tiny.mp4")
    code, _ = _run("video", str(tmp_path / "tiny.mp4"), "--model", str(tiny_model), "--detector",
                   str(tiny_detector), "--save-masks", str(tmp_path / "found"), "-q")
    assert code == 0
    assert len(_frames(tmp_path / "tiny.restored.mp4")) == 30
    assert len(list((tmp_path / "found").iterdir())) == 30
    code, out = _run("video", str(tmp_path / "tiny.mp4"), "--overwrite", "--model", str(tiny_model),
                     "--detector", str(tmp_path / "missing.pt"))
    assert code == 2 and "missing.pt" in out


def test_skip_overwrite_report_truncated_and_corrupt(clip, tmp_path, tiny_model):
    folder = tmp_path / "in"
    folder.mkdir()
    shutil.copy(TINY, folder / "good.mp4")
    (folder / "broken.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42" + bytes(range(256)) * 8)
    # A file cut short (as by a full disk) keeps what decodes; matroska has no index at the end.
    subprocess.run([ffmpeg_exe(), "-v", "error", "-i", str(TINY), "-c", "copy", str(tmp_path / "full.mkv")],
                   check=True)
    data = (tmp_path / "full.mkv").read_bytes()
    (folder / "cut.mkv").write_bytes(data[: len(data) * 6 // 10])
    logo = tmp_path / "logo.png"
    cv2.imwrite(str(logo), cv2.rectangle(np.zeros((96, 128), np.uint8), (90, 80), (120, 90), 255, -1))
    args = ["video", str(folder), "--mask", str(logo), "--model", str(tiny_model), "-q"]
    code, _ = _run(*args, "--report", str(tmp_path / "one.jsonl"))
    assert code == 1
    rows = map(json.loads, (tmp_path / "one.jsonl").read_text().splitlines())
    lines = {Path(r["path"]).name: r for r in rows}
    assert lines["broken.mp4"]["status"] == "failed" and "cannot open" in lines["broken.mp4"]["error"]
    assert lines["good.mp4"]["status"] == "ok" and not lines["good.mp4"]["warnings"]
    cut = lines["cut.mkv"]
    assert cut["status"] == "ok" and 0 < cut["frames"] < 30 and "truncated" in " ".join(cut["warnings"])
    assert len(_frames(folder / "cut.restored.mkv")) == cut["frames"]
    assert not (folder / "broken.restored.mp4").exists()
    code, _ = _run(*args, "--report", str(tmp_path / "two.jsonl"))
    statuses = [json.loads(line)["status"] for line in (tmp_path / "two.jsonl").read_text().splitlines()]
    assert code == 1 and sorted(statuses) == ["failed", "skipped", "skipped"]  # outputs are never redone
    before = (folder / "good.restored.mp4").stat().st_mtime_ns
    code, _ = _run(*args, "--overwrite")
    assert code == 1 and (folder / "good.restored.mp4").stat().st_mtime_ns != before


def test_killed_run_leaves_no_output_and_rerun_finishes(clip, tmp_path, tiny_model):
    src = tmp_path / "clip.mp4"
    shutil.copy(clip.damaged, src)
    final = tmp_path / "clip.restored.mp4"
    cmd = [sys.executable, "-m", "restore", "video", str(src), "--masks", str(clip.mask_dir), "-q"]
    process = subprocess.Popen(cmd + ["--per-frame"], cwd=ROOT)  # the shipped model, per frame: slow enough
    deadline = time.monotonic() + 60
    while not list(tmp_path.glob(".clip.restored.*.tmp.mp4")) and time.monotonic() < deadline:
        time.sleep(0.02)
        assert process.poll() is None, "finished before it could be killed"
    time.sleep(0.1)  # frames are being written now
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert not final.exists()
    assert subprocess.run(cmd + ["--model", str(tiny_model)], cwd=ROOT).returncode == 0
    assert len(_frames(final)) == len(clip.frames)


def test_the_detector_looks_in_boxes_of_few_sizes_around_its_finds():
    """Between full looks the detector looks around its last finds; each new input shape costs
    the network library memory it keeps, so what it is given has sides that are multiples of
    64 (or the frame's) and holds each box."""
    rng = np.random.default_rng(0)
    sizes = set()
    for _ in range(40):
        h, w = (int(v) for v in rng.integers(100, 400, 2))
        mask = np.zeros((h, w), bool)
        for _ in range(3):
            y, x = int(rng.integers(0, h - 30)), int(rng.integers(0, w - 30))
            mask[y:y + int(rng.integers(15, 30)), x:x + int(rng.integers(15, 30))] = True
        boxes = damage_boxes(mask, 16)
        grown = cv2.dilate(mask.astype(np.uint8), np.ones((33, 33), np.uint8)) > 0
        covered = np.zeros_like(mask)
        for box in boxes:
            covered[box[0]:box[1], box[2]:box[3]] = True
            y0, y1, x0, x1 = stepped_box(box, (h, w))
            assert 0 <= y0 <= box[0] and box[1] <= y1 <= h and 0 <= x0 <= box[2] and box[3] <= x1 <= w
            assert (y1 - y0) % 64 == 0 or y1 - y0 == h
            assert (x1 - x0) % 64 == 0 or x1 - x0 == w
            sizes.add((y1 - y0, x1 - x0))
        assert covered[grown].all()  # every find with its 16 px margin
    assert len(sizes) < 40


def test_memory_does_not_grow_with_length():
    rng = np.random.default_rng(0)
    base = rng.integers(0, 255, (96, 400, 3), dtype=np.uint8)

    def stream(n: int):
        for i in range(n):
            frame = np.ascontiguousarray(base[:48, i % 300:i % 300 + 64])
            yield frame

    def masks(n: int):
        for i in range(n):
            mask = np.zeros((48, 64), bool)
            mask[:, (7 * i) % 60:(7 * i) % 60 + 2] = True
            yield mask

    peaks = []
    for n in (30, 150):
        tracemalloc.start()
        count = sum(1 for _ in repair_frames(stream(n), Echo(), masks=masks(n)))
        peaks.append(tracemalloc.get_traced_memory()[1])
        tracemalloc.stop()
        assert count == n
    assert peaks[1] < peaks[0] * 1.25, peaks


def _pan(count: int, static_camera: bool = False) -> tuple[list[np.ndarray], np.ndarray]:
    """A camera panning over a photo with a date burnt in at a fixed place."""
    photo = cv2.cvtColor(cv2.imread(str(EXAMPLES / "originals" / "lanterns.jpg")), cv2.COLOR_BGR2RGB)
    photo = cv2.resize(photo, (900, 600), interpolation=cv2.INTER_AREA)
    stamp = np.zeros((180, 320), np.uint8)
    cv2.putText(stamp, "2003-07-14 12:34", (10, 165), cv2.FONT_HERSHEY_SIMPLEX, 0.6, 255, 2)
    frames = []
    for i in range(count):
        x, y = (0, 0) if static_camera else (8 * i, 2 * i)
        frame = photo[y:y + 180, x:x + 320].copy()
        frame[stamp > 0] = 255
        frames.append(frame)
    return frames, stamp > 0


def test_static_overlay_found_on_a_pan_and_not_on_a_still_camera():
    class NoDamage:
        model_name = "none"

        def detect(self, images):
            return [np.zeros(i.shape[:2], bool) for i in images]

    frames, stamp = _pan(24)
    out = list(repair_frames(frames, Echo(), detector=NoDamage(), warmup=frames))
    found = out[0].mask  # the warm-up pass already learned it for the first frame
    assert (found & stamp).sum() > 0.95 * stamp.sum()
    near = cv2.dilate(stamp.astype(np.uint8), np.ones((9, 9), np.uint8)) > 0
    assert (found & ~near).mean() < 0.002
    still, _ = _pan(12, static_camera=True)
    assert not any(r.mask.any() for r in repair_frames(still, Echo(), detector=NoDamage(), warmup=still))
    for i, frame in enumerate(still):  # someone walks past a still camera: the background is no overlay
        frame[40:120, 20 + 12 * i:70 + 12 * i] = (30, 60, 90)
    only_overlay = RepairOptions(cues=("overlay",))
    out = repair_frames(still, Echo(), detector=NoDamage(), warmup=still, options=only_overlay)
    assert not any(r.mask.any() for r in out)


def _scratched_pan(count: int, static_camera: bool = False, stop_after: int | None = None
                   ) -> tuple[list[np.ndarray], list[np.ndarray], list[np.ndarray]]:
    """A pan over a photo with a thin dark pole in the scene (it moves with the scene) and an
    upright film scratch that stays near one column (it wanders a pixel): frames, the scratch's
    pixels and the pole's, per frame. ``stop_after``: the camera stands still from that frame on."""
    photo = cv2.cvtColor(cv2.imread(str(EXAMPLES / "originals" / "lanterns.jpg")), cv2.COLOR_BGR2RGB)
    photo = cv2.resize(photo, (900, 600), interpolation=cv2.INTER_AREA)
    photo[:, 300:302] = 15  # the pole
    frames, scratches, poles = [], [], []
    for i in range(count):
        x = 0 if static_camera else 6 * (i if stop_after is None else min(i, stop_after))
        frame = photo[100:280, x:x + 320].copy()
        pole = np.zeros(frame.shape[:2], bool)
        if 0 <= 300 - x < 318:
            pole[:, 300 - x:302 - x] = True
        scratch = np.zeros(frame.shape[:2], bool)
        scratch[:, 150 + i % 3 - 1:152 + i % 3 - 1] = True
        frame[scratch] = 235
        frames.append(frame)
        scratches.append(scratch)
        poles.append(pole)
    return frames, scratches, poles


def test_an_upright_film_scratch_is_found_where_the_scene_moves_and_a_pole_in_the_scene_is_not():
    class NoDamage:
        model_name = "none"

        def detect(self, images):
            return [np.zeros(i.shape[:2], bool) for i in images]

    only = RepairOptions(cues=("scratches",), dilate=0)
    frames, scratches, poles = _scratched_pan(12)
    out = list(repair_frames(frames, Echo(), detector=NoDamage(), options=only))
    assert len(out) == 12
    for r, scratch, pole in zip(out, scratches, poles, strict=True):
        assert (r.mask & scratch).sum() > 0.9 * scratch.sum()
        assert (r.mask & pole).sum() < 0.05 * max(pole.sum(), 1)
        near = cv2.dilate(scratch.astype(np.uint8), np.ones((5, 5), np.uint8)) > 0
        assert (r.mask & ~near).mean() < 0.002
    # A still camera: the scene cannot move under the scratch, so nothing is decided or flagged.
    still, _, _ = _scratched_pan(8, static_camera=True)
    assert not any(r.mask.any() for r in repair_frames(still, Echo(), detector=NoDamage(), options=only))


def test_a_scratch_found_while_the_camera_moved_is_followed_when_it_stops(monkeypatch):
    """The motion test cannot judge frames where the scene stands still; the scratch it found a few
    frames before is looked for again at its column (a clip still from the start: above)."""
    class NoDamage:
        model_name = "none"

        def detect(self, images):
            return [np.zeros(i.shape[:2], bool) for i in images]

    only = RepairOptions(cues=("scratches",), dilate=0)
    frames, scratches, _ = _scratched_pan(14, stop_after=8)

    def found_at_rest() -> list[float]:
        out = list(repair_frames(frames, Echo(), detector=NoDamage(), options=only))
        for r, scratch in zip(out, scratches, strict=True):
            near = cv2.dilate(scratch.astype(np.uint8), np.ones((5, 5), np.uint8)) > 0
            assert (r.mask & ~near).mean() < 0.002
        return [(r.mask & t).sum() / t.sum() for r, t in zip(out[10:], scratches[10:], strict=True)]

    assert min(found_at_rest()) > 0.9
    monkeypatch.setattr("restore.video.job.MEMORY", 0)  # no memory: the still frames go undecided
    assert max(found_at_rest()) < 0.5


def test_overlay_cue_and_speck_detector_units():
    finder = OverlayFinder((40, 60))
    rng = np.random.default_rng(0)
    scene = cv2.GaussianBlur(rng.integers(0, 255, (40, 200), dtype=np.uint8), (3, 3), 0)
    frames = [np.ascontiguousarray(scene[:, 3 * i:3 * i + 60]) for i in range(15)]
    for f in frames:
        f[5:9, 5:25] = np.where(np.arange(20) // 2 % 2, 255, 0)  # burnt-in lettering: thin strokes
        finder.add(f)
    mask = finder.mask()
    assert mask[5:9, 5:25].mean() > 0.9 and mask[20:, :].mean() < 0.02
    cur = rng.integers(60, 200, (30, 30), dtype=np.uint8)
    speck = cur.copy()
    speck[10:13, 10:13] = 0
    found = single_frame_defects(speck, cur, cur, np.ones((30, 30), bool))
    assert found[10:13, 10:13].all() and found.sum() == 9
    # In all three frames: not a speck.
    assert not single_frame_defects(speck, speck, speck, np.ones((30, 30), bool)).any()
    # A film scratch (a thin line down the frame, elsewhere in the neighbours) is kept; a blob as
    # large, which is more likely motion the flow missed, is not.
    cur = rng.integers(60, 200, (120, 90), dtype=np.uint8)
    damaged = cur.copy()
    damaged[5:115, 40:42] = 240
    damaged[20:50, 60:85] = 0
    found = single_frame_defects(damaged, cur, cur, np.ones(cur.shape, bool))
    assert found[5:115, 40:42].all() and not found[20:50, 60:85].any()


def test_thin_or_small_leftovers_are_filled_by_telea_wide_ones_left_to_the_generator():
    rng = np.random.default_rng(0)
    frame = cv2.GaussianBlur(rng.integers(0, 255, (80, 120, 3), dtype=np.uint8), (9, 9), 0)
    out = frame.copy()
    root = np.zeros((80, 120), bool)
    root[10:40, 10:13] = True  # a letter's stroke, 30 px long
    root[60:63, 60:63] = True  # a speck
    root[20:60, 70:110] = True  # wide: the generator's
    out[root] = 255
    filled = fill_small_leftovers(out, root)
    assert filled == 90 + 9 and root.sum() == 1600 and root[20:60, 70:110].all()
    assert np.abs(out[10:40, 10:13].astype(int) - frame[10:40, 10:13]).mean() < 20
    assert (out[20:60, 70:110] == 255).all()


def test_detector_looks_at_every_kth_frame_and_near_its_finds_in_between():
    class Scratch:
        model_name = "scratch"

        def __init__(self):
            self.seen = []

        def detect(self, images):
            self.seen.append([i.shape[:2] for i in images])
            out = []
            for image in images:
                mask = np.zeros(image.shape[:2], bool)
                mask[:, (image[..., 0] > 250).any(axis=0)] = True
                out.append(mask)
            return out

    rng = np.random.default_rng(0)
    frames = []
    for i in range(8):
        frame = rng.integers(0, 200, (64, 96, 3), dtype=np.uint8)
        frame[:, 40 + i % 2] = 255  # a scratch that wanders a pixel
        frames.append(frame)
    detector = Scratch()
    out = list(repair_frames(frames, Echo(), detector=detector,
                             options=RepairOptions(detect_every=4, cues=(), batch_size=4, dilate=0)))
    full = [shape for call in detector.seen for shape in call if shape == (64, 96)]
    crops = [shape for call in detector.seen for shape in call if shape != (64, 96)]
    assert len(full) == 2 and len(crops) == 6 and all(w < 96 for _, w in crops)
    assert all(r.mask[:, 40 + r.index % 2].all() for r in out)  # found in every frame, in or out of a crop


def test_the_detector_runs_ahead_on_its_own_thread_and_its_errors_reach_the_caller():
    class Threads:
        model_name = "threads"

        def __init__(self, fail_at: int | None = None):
            self.threads, self.calls, self.fail_at = set(), 0, fail_at

        def detect(self, images):
            self.calls += 1
            self.threads.add(threading.current_thread().name)
            if self.calls == self.fail_at:
                raise RuntimeError("the detector broke")
            return [np.zeros(i.shape[:2], bool) for i in images]

    rng = np.random.default_rng(0)
    frames = [rng.integers(0, 200, (48, 64, 3), dtype=np.uint8) for _ in range(12)]
    options = RepairOptions(detect_every=1, cues=(), batch_size=4, dilate=0)
    before = threading.active_count()
    detector = Threads()
    out = list(repair_frames(frames, Echo(), detector=detector, options=options))
    assert [r.index for r in out] == list(range(12))
    assert detector.threads == {"restore-detect"}
    broken = Threads(fail_at=2)
    with pytest.raises(RuntimeError, match="the detector broke"):
        list(repair_frames(frames, Echo(), detector=broken, options=options))
    stream = repair_frames(iter(frames), Echo(), detector=Threads(), options=options)
    next(stream)
    stream.close()  # the caller stops early: the worker stops too
    assert threading.active_count() == before


def test_ahead_keeps_order_and_closes_its_source_on_its_own_thread():
    closed_on = []

    def source():
        try:
            yield from range(100)
        finally:
            closed_on.append(threading.current_thread().name)

    with Ahead(source(), depth=2, name="worker") as ahead:
        assert [next(ahead) for _ in range(5)] == [0, 1, 2, 3, 4]
    assert closed_on == ["worker"]
    assert list(Ahead(iter(range(7)))) == list(range(7))


def test_plan_names_outputs_and_skips_its_own(tmp_path):
    (tmp_path / "a").mkdir()
    shutil.copy(TINY, tmp_path / "a" / "x.mp4")
    shutil.copy(TINY, tmp_path / "a" / "x.restored.mp4")  # an earlier output: never an input
    reel = tmp_path / "a" / "reel"
    reel.mkdir()
    for i in range(3):
        (reel / f"{i}.png").write_bytes(b"")
    jobs = {j.relative.as_posix(): j for j in plan_video_jobs([str(tmp_path / "a")])}
    assert set(jobs) == {"x.mp4", "reel"}
    assert jobs["x.mp4"].output == tmp_path / "a" / "x.restored.mp4"
    assert (jobs["reel"].output, jobs["reel"].output_kind) == (tmp_path / "a" / "reel.restored", "frames")
    jobs = plan_video_jobs([str(tmp_path / "a")], tmp_path / "out", to="video")
    assert sorted(j.output for j in jobs) == [tmp_path / "out" / "reel.mp4", tmp_path / "out" / "x.mp4"]
    (job,) = plan_video_jobs([str(tmp_path / "a" / "x.mp4")], tmp_path / "y.mkv")
    assert (job.output, job.output_kind, job.named) == (tmp_path / "y.mkv", "video", True)


@pytest.mark.parametrize("shape", [(37, 53, 3), (37, 53, 2), (37, 53), (1, 9, 3)])
def test_bilinear_matches_a_reference_sampler_and_clamps_to_the_frame(shape):
    rng = np.random.default_rng(5)
    image = rng.integers(0, 256, shape).astype(np.uint8)
    h, w = shape[:2]
    x = rng.uniform(-3, w + 3, 500)
    y = rng.uniform(-3, h + 3, 500)
    got = bilinear(image, x, y)
    # Reference: the four neighbours of each clamped point, weighted by hand in float64.
    cx, cy = np.clip(x, 0, w - 1), np.clip(y, 0, h - 1)
    x0, y0 = np.floor(cx).astype(int), np.floor(cy).astype(int)
    x1, y1 = np.minimum(x0 + 1, w - 1), np.minimum(y0 + 1, h - 1)
    fx, fy = cx - x0, cy - y0
    img = image.astype(np.float64)
    if img.ndim == 3:
        fx, fy = fx[:, None], fy[:, None]
    want = ((img[y0, x0] * (1 - fx) + img[y0, x1] * fx) * (1 - fy)
            + (img[y1, x0] * (1 - fx) + img[y1, x1] * fx) * fy)
    assert got.dtype == np.float32 and got.shape == want.shape
    np.testing.assert_allclose(got, want, atol=1e-2)


def test_damage_missed_in_one_neighbour_is_not_copied_into_the_hole():
    """A pan over a photo; frame 4's mask covers a band, and frame 5 shows a white scratch inside
    that band which its own mask missed. The other three neighbours are clean there, so the
    repair of frame 4 must not carry the scratch (a plain weighted mean of the copies would)."""
    photo = cv2.cvtColor(cv2.imread(str(EXAMPLES / "originals" / "lanterns.jpg")), cv2.COLOR_BGR2RGB)
    photo = cv2.resize(photo, (600, 400), interpolation=cv2.INTER_AREA)
    frames, truth, masks = [], [], []
    for i in range(9):
        frame = photo[100:260, 4 * i:4 * i + 240].copy()
        truth.append(frame.copy())
        mask = np.zeros(frame.shape[:2], bool)
        if i == 4:
            mask[20:140, 110:122] = True
            frame[mask] = 0  # the damage the mask does mark
        if i == 5:  # in frame 5's own coordinates, the scene moved 4 px left: the band is at 106-118
            frame[20:140, 110:113] = 255
        frames.append(frame)
        masks.append(mask)
    out = list(repair_frames(frames, Echo(), masks=masks))
    hole = masks[4]
    error = np.abs(out[4].pixels.astype(np.float32) - truth[4].astype(np.float32))[hole].max(-1)
    assert out[4].copied == hole.sum()
    assert np.percentile(error, 99) < 40, np.percentile(error, 99)


def test_the_middle_of_a_wide_still_hole_is_found_in_frames_beyond_the_near_ones():
    """Under a 24 px logo on a 2 px-a-frame pan, most of it shows only 3 to 12 frames on: the near
    neighbours (2 each side) do not show it, and the first frames have no earlier repair to carry
    it in. Followed through the later frames (``RepairOptions.later``) it is copied, not invented."""
    photo = cv2.imread(str(EXAMPLES / "originals" / "mountain.jpg"))[..., ::-1]
    h, w = 120, 200
    photo = cv2.resize(photo, (2 * w, round(photo.shape[0] * 2 * w / photo.shape[1])))
    clean = np.stack([photo[:h, 2 * i:2 * i + w] for i in range(24)])
    hole = np.zeros((h, w), bool)
    hole[40:80, 80:104] = True
    frames = clean.copy()
    frames[:, hole] = 255

    class Grey:  # what no frame showed comes back flat grey: easy to tell from a copy
        model_name, device = "grey", "cpu"

        def repair(self, images, masks, grown=None):
            return [np.where(m[..., None], 128, i).astype(np.uint8)
                    for i, m in zip(images, masks, strict=True)]

    def error(later: int) -> float:
        out = np.stack([r.pixels for r in repair_frames(frames, Grey(), masks=[hole] * len(frames),
                                                        options=RepairOptions(later=later))])
        return float(np.abs(out[:8].astype(np.float32) - clean[:8])[:, hole].mean())

    followed, near_only = error(12), error(0)
    assert followed < 0.5 * near_only, (followed, near_only)


def test_specks_beside_a_cut_are_judged_against_their_own_shot():
    """A speck on the last frame before a cut and on the first after it: the frames across the
    cut show another picture, so each is judged against the two nearest frames of its own shot."""

    class NoDamage:
        model_name = "none"

        def detect(self, images):
            return [np.zeros(i.shape[:2], bool) for i in images]

    h, w = 120, 200
    shots = []
    for name in ("mountain.jpg", "lanterns.jpg"):
        photo = cv2.imread(str(EXAMPLES / "originals" / name))[..., ::-1]
        photo = cv2.resize(photo, (2 * w, round(photo.shape[0] * 2 * w / photo.shape[1])))
        shots.append([photo[:h, 2 * i:2 * i + w] for i in range(10)])
    frames = np.stack(shots[0] + shots[1])
    specks = {9: (60, 50), 10: (40, 150)}  # frame: (y, x)
    for index, (y, x) in specks.items():
        cv2.circle(frames[index], (x, y), 3, (255, 255, 255), -1)
    out = {r.index: r.mask for r in repair_frames(frames, Echo(), detector=NoDamage(),
                                                  options=RepairOptions(cues=("specks",)))}
    for index, (y, x) in specks.items():
        assert out[index][y, x], index
