"""Format fidelity, metadata, error reporting and crash safety of restore.io.images."""

from __future__ import annotations

import functools
import io
import os
import struct
import time
import zlib
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image, ImageCms, ImageOps

from restore.io.images import (
    ImageError,
    Picture,
    atomic_output,
    is_temp_name,
    read_image,
    read_mask,
    write_image,
)

H, W = 37, 53


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(1234)


def noise(rng: np.random.Generator, channels: int, dtype=np.uint8) -> np.ndarray:
    top = 65536 if dtype == np.uint16 else 256
    return rng.integers(0, top, size=(H, W, channels), dtype=dtype)


@functools.cache
def srgb_icc() -> bytes:
    """One sRGB profile for the whole run: a new one carries the clock's second in its header,
    so two made a second apart differ (this made a test fail now and then)."""
    return ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()


def cv2_write(path: Path, rgb: np.ndarray, params: list[int] | None = None) -> None:
    bgr = rgb[:, :, ::-1] if rgb.shape[2] == 3 else rgb[:, :, [2, 1, 0, 3]]
    assert cv2.imwrite(str(path), np.ascontiguousarray(bgr), params or [])


def exif_with(orientation: int, **tags: int | str) -> bytes:
    exif = Image.Exif()
    exif[0x0112] = orientation
    for tag, value in tags.items():
        exif[int(tag[1:])] = value
    return exif.tobytes()


def roundtrip(tmp_path: Path, picture: Picture, name: str, **kw) -> Picture:
    out = tmp_path / name
    write_image(out, picture, **kw)
    return read_image(out)


# ----------------------------------------------------------------------------- bit depth


@pytest.mark.parametrize("channels", [1, 3, 4])
def test_16bit_tiff_roundtrip_keeps_depth_values_and_compression(tmp_path, rng, channels):
    px = noise(rng, channels, np.uint16)
    src = tmp_path / "in.tif"
    if channels == 1:
        cv2.imwrite(str(src), px[:, :, 0], [cv2.IMWRITE_TIFF_COMPRESSION, 5])
    else:
        cv2_write(src, px, [cv2.IMWRITE_TIFF_COMPRESSION, 5])
    pic = read_image(src)
    assert pic.format == "tiff" and pic.pixels.dtype == np.uint16
    assert pic.pixels.shape == (H, W, channels)
    np.testing.assert_array_equal(pic.pixels, px)
    again = roundtrip(tmp_path, pic, "out.tif")
    np.testing.assert_array_equal(again.pixels, px)
    assert again.tiff_compression == "tiff_lzw"


@pytest.mark.parametrize("channels", [1, 3, 4])
def test_16bit_png_roundtrip(tmp_path, rng, channels):
    px = noise(rng, channels, np.uint16)
    src = tmp_path / "in.png"
    if channels == 1:
        cv2.imwrite(str(src), px[:, :, 0])
    else:
        cv2_write(src, px)
    pic = read_image(src)
    assert pic.pixels.dtype == np.uint16
    np.testing.assert_array_equal(pic.pixels, px)
    np.testing.assert_array_equal(roundtrip(tmp_path, pic, "out.png").pixels, px)


def test_16bit_to_jpeg_becomes_8bit_rgb(tmp_path, rng):
    px = noise(rng, 4, np.uint16)
    out = roundtrip(tmp_path, Picture(px, "png"), "out.jpg", format="jpeg")
    assert out.format == "jpeg" and out.pixels.dtype == np.uint8 and out.pixels.shape == (H, W, 3)


# ----------------------------------------------------------------------------- channels


@pytest.mark.parametrize("fmt,name", [("png", "a.png"), ("tiff", "a.tif"), ("webp", "a.webp")])
def test_rgba_alpha_bit_exact(tmp_path, rng, fmt, name):
    px = noise(rng, 4)
    src = tmp_path / f"src.{name}"
    Image.fromarray(px).save(src, format=fmt.upper(), lossless=True, exact=True)
    pic = read_image(src)
    assert pic.pixels.shape == (H, W, 4)
    np.testing.assert_array_equal(pic.pixels, px)
    np.testing.assert_array_equal(roundtrip(tmp_path, pic, name).pixels, px)


def test_16bit_rgba_alpha_bit_exact(tmp_path, rng):
    px = noise(rng, 4, np.uint16)
    out = roundtrip(tmp_path, Picture(px, "tiff"), "a.tif")
    np.testing.assert_array_equal(out.pixels[:, :, 3], px[:, :, 3])


@pytest.mark.parametrize("fmt,name", [("png", "g.png"), ("jpeg", "g.jpg"), ("tiff", "g.tif"),
                                      ("bmp", "g.bmp")])
def test_grayscale_stays_grayscale(tmp_path, rng, fmt, name):
    src = tmp_path / f"src.{name}"
    Image.fromarray(noise(rng, 1)[:, :, 0]).save(src, format=fmt.upper())
    pic = read_image(src)
    assert pic.pixels.shape == (H, W, 1)
    out = tmp_path / name
    write_image(out, pic)
    assert Image.open(out).mode == "L"


def test_gray_alpha_keeps_two_channels(tmp_path, rng):
    px = noise(rng, 2)
    src = tmp_path / "la.png"
    Image.fromarray(px).save(src)
    pic = read_image(src)
    assert pic.pixels.shape == (H, W, 2)
    np.testing.assert_array_equal(roundtrip(tmp_path, pic, "out.png").pixels, px)


@pytest.mark.parametrize("fmt,name", [("png", "x.png"), ("tiff", "x.tif"), ("bmp", "x.bmp")])
def test_lossless_formats_roundtrip_bit_exact(tmp_path, rng, fmt, name):
    src = tmp_path / f"src.{name}"
    Image.fromarray(noise(rng, 3)).save(src, format=fmt.upper())
    first = read_image(src)
    np.testing.assert_array_equal(roundtrip(tmp_path, first, name).pixels, first.pixels)


def test_lossless_webp_stays_lossless(tmp_path, rng):
    src = tmp_path / "src.webp"
    Image.fromarray(noise(rng, 3)).save(src, lossless=True)
    pic = read_image(src)
    assert pic.webp_lossless
    np.testing.assert_array_equal(roundtrip(tmp_path, pic, "x.webp").pixels, pic.pixels)


def test_palette_image_written_back_as_palette(tmp_path, rng):
    src = tmp_path / "p.png"
    Image.fromarray(noise(rng, 3)).quantize(16).save(src)
    pic = read_image(src)
    assert pic.pixels.shape == (H, W, 3) and pic.source_mode == "P"
    out = tmp_path / "out.png"
    write_image(out, pic)
    assert Image.open(out).mode == "P"
    np.testing.assert_array_equal(read_image(out).pixels, pic.pixels)


def test_one_bit_image_written_back_as_one_bit(tmp_path, rng):
    src = tmp_path / "b.png"
    Image.fromarray(noise(rng, 1)[:, :, 0] > 127).save(src)
    pic = read_image(src)
    assert pic.pixels.shape == (H, W, 1) and set(np.unique(pic.pixels)) <= {0, 255}
    out = tmp_path / "out.png"
    write_image(out, pic)
    assert Image.open(out).mode == "1"
    np.testing.assert_array_equal(read_image(out).pixels, pic.pixels)


# ----------------------------------------------------------------------------- orientation


def test_exif_rotated_jpeg_comes_back_upright_with_tag_reset(tmp_path, rng):
    stored = noise(rng, 3)
    src = tmp_path / "rot.jpg"
    Image.fromarray(stored).save(src, exif=exif_with(6, t271="Acme"), quality=95)
    raw = np.asarray(Image.open(src))  # same decoder, no orientation applied
    pic = read_image(src)
    assert pic.pixels.shape == (W, H, 3)
    np.testing.assert_array_equal(pic.pixels, np.rot90(raw, -1))
    out = tmp_path / "out.jpg"
    write_image(out, pic)
    written = Image.open(out).getexif()
    assert written.get(0x0112) == 1 and written.get(271) == "Acme"  # other tags survive
    assert read_image(out).pixels.shape == (W, H, 3)


@pytest.mark.parametrize("orientation", range(1, 9))
def test_all_orientations_match_pillow(tmp_path, rng, orientation):
    src = tmp_path / "o.png"
    Image.fromarray(noise(rng, 3)).save(src, exif=exif_with(orientation))
    expected = np.asarray(ImageOps.exif_transpose(Image.open(src)))
    np.testing.assert_array_equal(read_image(src).pixels, expected)


@pytest.mark.parametrize("orientation", [3, 6, 8])
def test_tiff_orientation_applied_once(tmp_path, rng, orientation):
    stored = noise(rng, 1, np.uint16)[:, :, 0]
    src = tmp_path / "o.tif"
    Image.fromarray(stored).save(src, tiffinfo={274: orientation})
    expected = {3: stored[::-1, ::-1], 6: np.rot90(stored, -1), 8: np.rot90(stored, 1)}
    np.testing.assert_array_equal(read_image(src).pixels[:, :, 0], expected[orientation])


# ----------------------------------------------------------------------------- metadata


@pytest.mark.parametrize("fmt,name", [("png", "i.png"), ("jpeg", "i.jpg"), ("webp", "i.webp"),
                                      ("tiff", "i.tif")])
def test_icc_profile_kept_8bit(tmp_path, rng, fmt, name):
    icc = srgb_icc()
    src = tmp_path / f"src.{name}"
    Image.fromarray(noise(rng, 3)).save(src, format=fmt.upper(), icc_profile=icc)
    pic = read_image(src)
    assert pic.icc == icc
    out = tmp_path / name
    write_image(out, pic)
    assert Image.open(out).info.get("icc_profile") == icc


@pytest.mark.parametrize("channels", [1, 3, 4])
def test_8bit_png_keeps_pixels_icc_exif_and_dpi(tmp_path, rng, channels):
    """8-bit PNGs are encoded by OpenCV (fast) with the metadata chunks spliced in."""
    src = tmp_path / "src.png"
    pixels = noise(rng, channels)
    Image.fromarray(pixels if channels > 1 else pixels[:, :, 0]).save(
        src, icc_profile=srgb_icc() if channels > 1 else None, exif=exif_with(1, t271="Acme"), dpi=(300, 300))
    pic = read_image(src)
    out = tmp_path / "out.png"
    write_image(out, pic)
    back = Image.open(out)
    assert np.array_equal(read_image(out).pixels, pic.pixels) and back.mode == Image.open(src).mode
    assert back.info.get("icc_profile") == (srgb_icc() if channels > 1 else None)
    assert back.getexif().get(271) == "Acme" and round(back.info["dpi"][0]) == 300


@pytest.mark.parametrize("fmt,name", [("png", "d.png"), ("tiff", "d.tif")])
def test_icc_and_dpi_kept_16bit(tmp_path, rng, fmt, name):
    icc = srgb_icc()
    pic = Picture(noise(rng, 3, np.uint16), fmt, icc=icc, dpi=(300.0, 300.0))
    back = roundtrip(tmp_path, pic, name)
    assert back.pixels.dtype == np.uint16
    assert back.icc == icc
    assert back.dpi is not None and round(back.dpi[0]) == 300


def test_jpeg_quality_changes_size(tmp_path, rng):
    pic = Picture(noise(rng, 3), "jpeg")
    low, high = tmp_path / "low.jpg", tmp_path / "high.jpg"
    write_image(low, pic, jpeg_quality=30)
    write_image(high, pic, jpeg_quality=95)
    assert low.stat().st_size < high.stat().st_size


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
def test_pixels_are_writable(tmp_path, rng, dtype):
    src = tmp_path / "w.png"
    write_image(src, Picture(noise(rng, 3, dtype), "png"))
    assert read_image(src).pixels.flags.writeable


def test_format_comes_from_content_not_extension(tmp_path, rng):
    src = tmp_path / "liar.jpg"
    Image.fromarray(noise(rng, 3)).save(src, format="PNG")
    assert read_image(src).format == "png"


# ----------------------------------------------------------------------------- bad input


def _png_header_only(width: int, height: int) -> bytes:
    """A tiny PNG whose header claims a gigantic size (its pixel data is empty)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = struct.pack(">I", zlib.crc32(kind + data))
        return struct.pack(">I", len(data)) + kind + data + crc

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b""))
            + chunk(b"IEND", b""))


def _jpeg_bytes(rng) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(noise(rng, 3)).save(buf, format="JPEG")
    return buf.getvalue()


@pytest.mark.parametrize("case", ["empty", "text", "truncated_jpeg", "corrupt_png",
                                  "truncated_16bit_png", "missing", "gif"])
def test_unusable_files_raise_image_error(tmp_path, rng, case):
    path = tmp_path / "bad.jpg"
    if case == "empty":
        path.write_bytes(b"")
    elif case == "text":
        path.write_text("this is not a photo\n")
    elif case == "truncated_jpeg":
        data = _jpeg_bytes(rng)
        path.write_bytes(data[: len(data) // 2])
    elif case == "corrupt_png":
        buf = io.BytesIO()
        Image.fromarray(noise(rng, 3)).save(buf, format="PNG")
        data = bytearray(buf.getvalue())
        data[60:200] = bytes(140)
        path.write_bytes(bytes(data))
    elif case == "truncated_16bit_png":
        ok, buf = cv2.imencode(".png", noise(rng, 3, np.uint16))
        path.write_bytes(buf.tobytes()[:-200])
    elif case == "gif":
        Image.fromarray(noise(rng, 3)).save(path, format="GIF")
    with pytest.raises(ImageError) as info:
        read_image(path)
    assert "\n" not in str(info.value) and str(info.value)


def test_huge_header_rejected_before_decoding(tmp_path):
    path = tmp_path / "huge.png"
    path.write_bytes(_png_header_only(100_000, 100_000))
    with pytest.raises(ImageError, match="too large"):
        read_image(path)


def test_max_pixels_limit(tmp_path, rng):
    path = tmp_path / "small.png"
    Image.fromarray(noise(rng, 3)).save(path)
    with pytest.raises(ImageError, match="too large"):
        read_image(path, max_pixels=H * W - 1)
    assert read_image(path, max_pixels=H * W).pixels.shape == (H, W, 3)


# ----------------------------------------------------------------------------- safety


def test_atomic_output_leaves_nothing_when_body_raises(tmp_path):
    final = tmp_path / "photo.png"
    with pytest.raises(RuntimeError), atomic_output(final) as tmp:
        tmp.write_bytes(b"partial")
        raise RuntimeError("killed")
    assert list(tmp_path.iterdir()) == []


def test_a_finished_write_removes_temps_a_killed_run_left_for_the_same_output(tmp_path):
    old = time.time() - 3600
    left = {name: tmp_path / name for name in (".photo.a1b2c3.tmp.png",  # killed run, this output
                                              ".photo.d4e5f6.tmp.png",  # a writer still at work
                                              ".photo.x.a1b2c3.tmp.png",  # output "photo.x.png"
                                              ".other.a1b2c3.tmp.png")}  # another output
    for name, path in left.items():
        path.write_bytes(b"partial")
        if name != ".photo.d4e5f6.tmp.png":
            os.utime(path, (old, old))
    with atomic_output(tmp_path / "photo.png") as tmp:
        tmp.write_bytes(b"done")
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        ["photo.png", ".photo.d4e5f6.tmp.png", ".photo.x.a1b2c3.tmp.png", ".other.a1b2c3.tmp.png"])


def test_atomic_output_replaces_and_names_temp_like_documented(tmp_path):
    final = tmp_path / "sub" / "photo.png"
    with atomic_output(final) as tmp:
        assert tmp.parent == final.parent and tmp.name.endswith(".tmp.png")
        assert tmp.name.startswith(".photo.") and is_temp_name(tmp.name)
        assert not final.exists()
        tmp.write_bytes(b"done")
    assert final.read_bytes() == b"done"
    assert [p.name for p in final.parent.iterdir()] == ["photo.png"]


def test_failed_write_keeps_previous_output(tmp_path, rng):
    final = tmp_path / "out.png"
    final.write_bytes(b"old")
    bad = Picture(np.zeros((4, 4, 3), np.float32), "png")
    with pytest.raises(ValueError):
        write_image(final, bad)
    assert final.read_bytes() == b"old" and len(list(tmp_path.iterdir())) == 1


def test_inputs_are_never_modified(tmp_path, rng):
    src = tmp_path / "in.jpg"
    Image.fromarray(noise(rng, 3)).save(src, exif=exif_with(6), icc_profile=srgb_icc())
    before = (src.read_bytes(), src.stat().st_mtime_ns)
    pic = read_image(src)
    read_mask(src, pic.size)
    write_image(tmp_path / "out.jpg", pic)
    assert (src.read_bytes(), src.stat().st_mtime_ns) == before


# ----------------------------------------------------------------------------- masks


def test_mask_size_mismatch_names_both_sizes(tmp_path):
    path = tmp_path / "m.png"
    Image.fromarray(np.zeros((10, 20), np.uint8)).save(path)
    with pytest.raises(ImageError, match=r"20x10.*30x40"):
        read_mask(path, (40, 30))


def test_mask_any_nonzero_channel(tmp_path):
    px = np.zeros((10, 20, 3), np.uint8)
    px[2, 3, 1] = 1
    path = tmp_path / "m.png"
    Image.fromarray(px).save(path)
    mask = read_mask(path, (10, 20))
    assert mask.dtype == bool and mask.sum() == 1 and mask[2, 3]


def test_mask_alpha_used_only_when_it_is_the_only_data(tmp_path):
    px = np.zeros((10, 20, 4), np.uint8)
    px[5, 6, 3] = 255  # black stroke on a transparent layer
    path = tmp_path / "m.png"
    Image.fromarray(px).save(path)
    assert read_mask(path, (10, 20)).sum() == 1
    px[..., 3] = 255  # fully opaque black: nothing to repair
    Image.fromarray(px).save(path)
    assert read_mask(path, (10, 20)).sum() == 0


def test_mask_orientation_applied(tmp_path):
    px = np.zeros((10, 20), np.uint8)
    px[0, 0] = 255
    path = tmp_path / "m.jpg"
    Image.fromarray(px).save(path, exif=exif_with(6), quality=100)
    mask = read_mask(path, (20, 10))
    assert mask[0, -1]
