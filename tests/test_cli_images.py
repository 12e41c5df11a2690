"""`restore images` end to end: formats kept, nothing lost, exit codes that mean something."""

from __future__ import annotations

import json
import signal
import struct
import subprocess
import sys
import time
import zlib
from pathlib import Path

import cv2
import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from restore.cli import main
from restore.io.images import read_image


def _run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, list(args), catch_exceptions=False)
    return result.exit_code, result.output


def _scratch(h: int, w: int, seed: int = 0) -> np.ndarray:
    mask = np.zeros((h, w), np.uint8)
    rng = np.random.default_rng(seed)
    cv2.line(mask, (int(rng.integers(0, w)), 0), (int(rng.integers(0, w)), h - 1), 255, 3)
    cv2.circle(mask, (w // 3, h // 2), 5, 255, -1)
    return mask


@pytest.fixture
def album(tmp_path, photo):
    """A small folder of mixed files with matching masks."""
    src, masks = tmp_path / "in", tmp_path / "masks"
    (src / "sub").mkdir(parents=True)
    masks.joinpath("sub").mkdir(parents=True)
    small = cv2.resize(photo, (160, 120), interpolation=cv2.INTER_AREA)
    h, w = small.shape[:2]
    cv2.imwrite(str(src / "deep.tif"), cv2.cvtColor(small, cv2.COLOR_RGB2BGR).astype(np.uint16) * 257,
                [cv2.IMWRITE_TIFF_COMPRESSION, 5])
    rgba = np.dstack([small, np.tile(np.linspace(0, 255, w, dtype=np.uint8), (h, 1))])
    Image.fromarray(rgba, "RGBA").save(src / "alpha.png")
    Image.fromarray(cv2.cvtColor(small, cv2.COLOR_RGB2GRAY), "L").save(src / "sub" / "gray.png")
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to display
    Image.fromarray(small).save(src / "sub" / "rotated.jpg", exif=exif, quality=95)
    for name in ["deep", "alpha"]:
        cv2.imwrite(str(masks / f"{name}.png"), _scratch(h, w, seed=len(name)))
    cv2.imwrite(str(masks / "sub" / "gray.png"), _scratch(h, w, seed=2))
    cv2.imwrite(str(masks / "sub" / "rotated.png"), _scratch(w, h, seed=3))  # drawn on the upright view
    return src, masks


def test_help_lists_every_command():
    code, out = _run("--help")
    assert code == 0
    for command in ["images", "train", "eval"]:
        assert command in out


def test_formats_bit_depth_alpha_and_orientation_are_kept(album, tmp_path, tiny_model):
    src, masks = album
    out = tmp_path / "out"
    code, _ = _run("images", str(src), str(out), "--masks", str(masks), "--model", str(tiny_model), "-q")
    assert code == 0
    for rel, fmt, dtype, channels in [("deep.tif", "tiff", np.uint16, 3), ("alpha.png", "png", np.uint8, 4),
                                      ("sub/gray.png", "png", np.uint8, 1),
                                      ("sub/rotated.jpg", "jpeg", np.uint8, 3)]:
        before, after = read_image(src / rel), read_image(out / rel)
        assert after.format == fmt and after.pixels.dtype == dtype
        assert after.pixels.shape == before.pixels.shape
        assert after.pixels.shape[-1] == channels
    for rel in ["deep.tif", "alpha.png", "sub/gray.png"]:  # lossless: outside the mask, bit-exact
        before, after = read_image(src / rel).pixels, read_image(out / rel).pixels
        mask = read_image(masks / Path(rel).with_suffix(".png")).pixels[..., 0] > 0
        assert np.array_equal(before[~mask], after[~mask])
        assert not np.array_equal(before[mask], after[mask])
    alpha_in, alpha_out = read_image(src / "alpha.png").pixels, read_image(out / "alpha.png").pixels
    assert np.array_equal(alpha_in[..., 3], alpha_out[..., 3])
    assert read_image(out / "sub/rotated.jpg").pixels.shape[:2] == (160, 120)  # upright
    assert Image.open(out / "sub/rotated.jpg").getexif().get(0x0112, 1) == 1


def test_inputs_are_never_written(album, tmp_path, tiny_model):
    src, masks = album
    before = {p: (p.stat().st_mtime_ns, p.read_bytes()) for p in src.rglob("*") if p.is_file()}
    _run("images", str(src), str(tmp_path / "out"), "--masks", str(masks), "--model", str(tiny_model), "-q")
    assert before == {p: (p.stat().st_mtime_ns, p.read_bytes()) for p in src.rglob("*") if p.is_file()}


def _huge_png(path: Path) -> None:
    """A valid PNG header claiming 100000 x 100000 pixels: must be refused, not allocated."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    ihdr = struct.pack(">IIBBBBB", 100_000, 100_000, 8, 2, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 10))
                     + chunk(b"IEND", b""))


def test_bad_files_fail_alone_with_one_line_each_and_exit_1(album, tmp_path, tiny_model):
    src, masks = album
    (src / "empty.png").write_bytes(b"")
    (src / "notes.jpg").write_text("not a photo")
    good = (src / "alpha.png").read_bytes()
    (src / "truncated.png").write_bytes(good[: len(good) // 3])
    _huge_png(src / "huge.png")
    cv2.imwrite(str(src / "wrongmask.png"), np.zeros((50, 50, 3), np.uint8))
    for name in ["empty", "notes", "truncated", "huge"]:
        (masks / f"{name}.png").write_bytes((masks / "alpha.png").read_bytes())
    cv2.imwrite(str(masks / "wrongmask.png"), np.zeros((40, 40), np.uint8))
    report = tmp_path / "report.jsonl"
    out = tmp_path / "out"
    code, output = _run("images", str(src), str(out), "--masks", str(masks), "--model", str(tiny_model),
                        "--report", str(report), "-q")
    assert code == 1
    errors = [line for line in output.splitlines() if line.startswith("error:")]
    assert len(errors) == 5
    for name in ["empty.png", "notes.jpg", "truncated.png", "huge.png", "wrongmask.png"]:
        assert sum(name in e for e in errors) == 1
        assert not (out / name).exists()
    for rel in ["deep.tif", "alpha.png", "sub/gray.png", "sub/rotated.jpg"]:
        assert (out / rel).exists()
    lines = [json.loads(x) for x in report.read_text().splitlines()]
    assert len(lines) == 9
    assert {x["status"] for x in lines} == {"ok", "failed"}
    ok = [x for x in lines if x["status"] == "ok"]
    assert all(x["damaged_percent"] > 0 and x["device"] == "cpu" for x in ok)


def test_existing_outputs_are_skipped_unless_overwrite(album, tmp_path, tiny_model):
    src, masks = album
    out = tmp_path / "out"
    args = ["images", str(src), str(out), "--masks", str(masks), "--model", str(tiny_model), "-q"]
    _run(*args)
    marker = out / "alpha.png"
    marker.write_bytes(b"sentinel")
    assert _run(*args)[0] == 0 and marker.read_bytes() == b"sentinel"
    assert _run(*args, "--overwrite")[0] == 0 and marker.read_bytes() != b"sentinel"


@pytest.mark.parametrize("args", [["--shard", "3/2"], ["--shard", "x"], ["--masks", "/nonexistent"],
                                  ["--tile", "300"], ["--model", "/nonexistent.pt"]])
def test_usage_errors_exit_2(album, tmp_path, tiny_model, args):
    src, masks = album
    base = ["images", str(src), str(tmp_path / "out"), "--model", str(tiny_model)]
    if "--masks" not in args:
        base += ["--masks", str(masks)]
    assert _run(*base, *args)[0] == 2


def test_no_inputs_is_a_usage_error(tmp_path, tiny_model):
    (tmp_path / "empty").mkdir()
    assert _run("images", str(tmp_path / "empty"), str(tmp_path / "out"), "--model", str(tiny_model))[0] == 2


def test_shards_split_the_work_without_overlap(album, tmp_path, tiny_model):
    src, masks = album
    seen = []
    for k in (1, 2):
        out = tmp_path / f"out{k}"
        _run("images", str(src), str(out), "--masks", str(masks), "--model", str(tiny_model), "-q",
             "--shard", f"{k}/2")
        seen.append({p.relative_to(out) for p in out.rglob("*") if p.is_file()})
    assert not (seen[0] & seen[1])
    assert len(seen[0] | seen[1]) == 4


def test_compare_and_save_masks(album, tmp_path, tiny_model):
    src, masks = album
    code, _ = _run("images", str(src), str(tmp_path / "out"), "--masks", str(masks), "--model",
                   str(tiny_model), "-q", "--compare", str(tmp_path / "cmp"), "--save-masks",
                   str(tmp_path / "used"), "--dilate", "2")
    assert code == 0
    assert (tmp_path / "cmp" / "sub" / "gray.png").exists()
    used = cv2.imread(str(tmp_path / "used" / "alpha.png"), cv2.IMREAD_GRAYSCALE) > 0
    given = cv2.imread(str(masks / "alpha.png"), cv2.IMREAD_GRAYSCALE) > 0
    assert used.sum() > given.sum() and (used | ~given).all()  # dilated, and still covers the input


def test_one_mask_file_for_every_image(album, tmp_path, tiny_model):
    src, _ = album
    flat = tmp_path / "flat"
    flat.mkdir()
    for i in range(3):
        cv2.imwrite(str(flat / f"{i}.png"), np.full((64, 96, 3), 40 * i, np.uint8))
    stamp = np.zeros((64, 96), np.uint8)
    stamp[50:60, 60:90] = 255
    cv2.imwrite(str(tmp_path / "stamp.png"), stamp)
    code, _ = _run("images", str(flat), str(tmp_path / "out"), "--masks", str(tmp_path / "stamp.png"),
                   "--model", str(tiny_model), "-q")
    assert code == 0 and len(list((tmp_path / "out").glob("*.png"))) == 3


def test_killed_run_resumes_to_the_same_outputs(tmp_path, tiny_model, photo):
    src = tmp_path / "in"
    src.mkdir()
    for i in range(40):
        crop = np.ascontiguousarray(photo[i * 3 : i * 3 + 150, i * 3 : i * 3 + 250])
        cv2.imwrite(str(src / f"{i:02d}.png"), cv2.cvtColor(crop, cv2.COLOR_RGB2BGR))
    mask = tmp_path / "mask.png"
    cv2.imwrite(str(mask), _scratch(150, 250))
    cmd = [sys.executable, "-m", "restore", "images", str(src), "OUT", "--masks", str(mask),
           "--model", str(tiny_model), "--batch-size", "1", "-q"]

    subprocess.run([c.replace("OUT", str(tmp_path / "clean")) for c in cmd], check=True)
    interrupted = tmp_path / "interrupted"
    proc = subprocess.Popen([c.replace("OUT", str(interrupted)) for c in cmd])
    deadline = time.time() + 60
    def finals() -> list[str]:  # glob("*.png") also matches hidden temp files
        return sorted(p.name for p in interrupted.glob("*.png") if not p.name.startswith("."))

    while time.time() < deadline and len(finals()) < 3:
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    finished_before_kill = len(finals())
    leftovers = [p.name for p in interrupted.iterdir() if p.name.startswith(".")]
    subprocess.run([c.replace("OUT", str(interrupted)) for c in cmd], check=True)
    assert 0 < finished_before_kill < 40  # killed mid-batch, not before or after
    clean = sorted(p.name for p in (tmp_path / "clean").iterdir())
    assert len(clean) == 40
    assert finals() == clean
    for name in clean:
        assert (interrupted / name).read_bytes() == (tmp_path / "clean" / name).read_bytes(), name
    # A temp file may survive a SIGKILL, but only under a hidden temp name, never a final one.
    assert all(name.startswith(".") and ".tmp" in name for name in leftovers)
