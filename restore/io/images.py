"""Format-faithful image reading and crash-safe writing.

Restoration must not quietly degrade a file in ways that have nothing to do with the damage being
repaired, so this module keeps bit depth, channels, ICC profile, EXIF, DPI and format-specific
choices (TIFF compression, lossless WebP, JPEG chroma subsampling) from read to write.

Decoding strategy: Pillow reads the metadata and the header (cheap, no pixel decode), which lets us
reject absurd sizes before allocating anything. 8-bit images are decoded by Pillow (it reports
truncated JPEG/PNG data, which OpenCV papers over with grey rows). PNG/TIFF with more than 8 bits
per sample are decoded by ``cv2.imdecode(..., IMREAD_UNCHANGED)`` because Pillow truncates 16-bit
RGB(A) to 8 bits. EXIF orientation is applied here, by us, in both paths.
"""

from __future__ import annotations

import glob
import io
import os
import re
import secrets
import struct
import threading
import time
import warnings
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, ImageCms

IMAGE_EXTENSIONS: frozenset[str] = frozenset(
    {".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".webp"}
)
FORMATS: tuple[str, ...] = ("png", "jpeg", "tiff", "bmp", "webp")
#: Extension -> format, for callers that force an output format from a suffix.
EXTENSION_FORMATS: dict[str, str] = {
    ".png": "png", ".jpg": "jpeg", ".jpeg": "jpeg", ".tif": "tiff", ".tiff": "tiff",
    ".bmp": "bmp", ".webp": "webp",
}
#: Format -> extension used when a forced output format needs a new suffix.
FORMAT_EXTENSIONS: dict[str, str] = {
    "png": ".png", "jpeg": ".jpg", "tiff": ".tif", "bmp": ".bmp", "webp": ".webp",
}
_FORMAT_ALIASES = {"jpg": "jpeg", "tif": "tiff", "mpo": "jpeg", "dib": "bmp"}
_PIL_FORMATS = {"PNG": "png", "JPEG": "jpeg", "MPO": "jpeg", "TIFF": "tiff", "BMP": "bmp",
                "DIB": "bmp", "WEBP": "webp"}

_ORIENTATION_TAG = 0x0112
_ICC_TAG = 34675
_EXIF_PREFIX = b"Exif\x00\x00"
_PNG_END = b"\x00\x00\x00\x00IEND\xaeB`\x82"
# Pillow TIFF compression names we can write again without loss, and their libtiff codes.
_TIFF_CODES = {"raw": 1, "tiff_lzw": 5, "tiff_adobe_deflate": 8, "tiff_deflate": 8,
               "packbits": 32773}
_BILEVEL_TIFF = {"group3", "group4", "tiff_ccitt", "tiff_raw_16"}
_TEMP_RE = re.compile(r"^\..+\.[0-9a-f]{6}\.tmp(\.[^.]+)?$")
_PIL_LIMIT_LOCK = threading.Lock()


class ImageError(Exception):
    """One-line, user-facing reason a file can't be used (the caller adds the path)."""


@dataclass
class Picture:
    """Decoded pixels plus everything needed to write the file back faithfully.

    ``pixels`` is H x W x C, RGB(A) order, uint8 or uint16, already upright. C is 1 (grey),
    2 (grey + alpha), 3 (RGB) or 4 (RGBA). Palette images are expanded to RGB/RGBA, 1-bit to
    0/255 grey and CMYK to RGB; ``source_mode`` records that so writes can go back (see
    :func:`write_image`). ``exif`` is raw EXIF (``Exif\\0\\0`` + TIFF block) with Orientation
    already reset to 1; TIFF inputs keep their tags in the TIFF structure, so it is None there.
    """

    pixels: np.ndarray
    format: str
    icc: bytes | None = None
    exif: bytes | None = None
    source_mode: str | None = None  # Pillow mode before conversion: "P", "PA", "1", "CMYK"
    dpi: tuple[float, float] | None = None
    tiff_compression: str | None = None  # Pillow name, e.g. "tiff_lzw"
    webp_lossless: bool = False
    jpeg_subsampling: int | None = None  # 0 = 4:4:4, 1 = 4:2:2, 2 = 4:2:0

    @property
    def size(self) -> tuple[int, int]:
        """(height, width), the shape masks must match."""
        return int(self.pixels.shape[0]), int(self.pixels.shape[1])


def normalize_format(name: str) -> str:
    """Map "JPG", ".tif", "jpeg" ... to one of FORMATS; ValueError for anything else."""
    key = name.lower().lstrip(".")
    key = _FORMAT_ALIASES.get(key, key)
    if key not in FORMATS:
        raise ValueError(f"unsupported image format {name!r} (use one of {', '.join(FORMATS)})")
    return key


def is_temp_name(name: str) -> bool:
    """True for the hidden temp names atomic_output creates, so discovery can skip them."""
    return bool(_TEMP_RE.match(name))


# --------------------------------------------------------------------------- atomic writes


@contextmanager
def atomic_output(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temp path beside ``path``; on success fsync it and rename it onto ``path``.

    A run killed at any moment leaves either the old file or the complete new one under the final
    name, never a truncated one. The temp name is ``.NAME.<hex>.tmp.EXT`` so encoders that pick a
    codec from the extension still work. Missing parent folders are created. On any exception
    (including KeyboardInterrupt) the temp file is removed and the exception propagates.
    """
    final = Path(path)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = _create_temp(final)
    try:
        yield tmp
        fd = os.open(tmp, os.O_RDWR)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, final)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _fsync_dir(final.parent)
    _remove_stale_temps(final)


STALE_TEMP_SECONDS = 600.0


def _remove_stale_temps(final: Path) -> None:
    """Delete temp files for ``final`` that a killed run left behind (SIGKILL runs no cleanup).

    Only temps of this very output name, and only ones untouched for ``STALE_TEMP_SECONDS``: a
    live writer keeps its temp's mtime fresh, and the output they were for now exists complete.
    """
    now = time.time()
    for other in final.parent.glob(f".{glob.escape(final.stem)}.??????.tmp{glob.escape(final.suffix)}"):
        if not is_temp_name(other.name):  # the six characters must be the ``<hex>`` slot
            continue
        try:
            if now - other.stat().st_mtime > STALE_TEMP_SECONDS:
                other.unlink()
        except OSError:
            pass  # gone already, or not ours to remove: never fail a finished write over it


def _create_temp(final: Path) -> Path:
    """Exclusively create an empty temp file; os.open honours the umask, unlike mkstemp."""
    for _ in range(100):
        tmp = final.with_name(f".{final.stem}.{secrets.token_hex(3)}.tmp{final.suffix}")
        try:
            os.close(os.open(tmp, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o666))
        except FileExistsError:
            continue
        return tmp
    raise FileExistsError(f"could not create a temp file next to {final}")


def _fsync_dir(folder: Path) -> None:
    """Persist the rename itself (POSIX); best effort where directories can't be opened."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


# --------------------------------------------------------------------------- reading


def read_image(path: str | os.PathLike[str], *, max_pixels: int = 250_000_000) -> Picture:
    """Decode ``path`` upright with its metadata; ImageError for anything unusable.

    Only the first frame/page of animated or multi-page files is read. The file is only ever
    opened for reading.
    """
    path = Path(path)
    try:
        if path.stat().st_size == 0:
            raise ImageError("empty file (0 bytes)")
    except FileNotFoundError:
        raise ImageError("file not found") from None
    except OSError as exc:
        raise ImageError(f"cannot read file: {exc.strerror or exc}") from None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # odd-but-readable files: not the user's concern
            with _pillow_open(path) as im:
                return _decode(path, im, max_pixels)
    except ImageError:
        raise
    except MemoryError:
        raise ImageError("not enough memory to decode this image") from None
    except Exception as exc:  # decoders raise many types; all mean "bad file"
        raise ImageError(f"corrupt or truncated image data ({_short(exc)})") from None


def read_mask(path: str | os.PathLike[str], shape: tuple[int, int]) -> np.ndarray:
    """Read a repair mask as bool H x W (True = repair); never resized to fit.

    Any non-zero value in any colour channel marks a pixel. Alpha is ignored unless the colour
    channels are all zero and alpha varies (black strokes painted on a transparent layer); then
    non-zero alpha marks the pixels.
    """
    try:
        picture = read_image(path)
    except ImageError as exc:
        raise ImageError(f"mask {Path(path).name}: {exc}") from None
    px = picture.pixels
    has_alpha = px.shape[2] in (2, 4)
    colour = px[..., :-1] if has_alpha else px
    mask = np.any(colour != 0, axis=2)
    if has_alpha and not mask.any():
        alpha = px[..., -1]
        if alpha.min() != alpha.max():
            mask = alpha != 0
    if mask.shape != tuple(shape):
        mh, mw = mask.shape
        h, w = shape
        raise ImageError(
            f"mask {Path(path).name} is {mw}x{mh} but the image is {w}x{h} (width x height); "
            "masks are never resized"
        )
    return mask


@contextmanager
def _pillow_open(path: Path | io.BytesIO) -> Iterator[Image.Image]:
    """Open lazily with Pillow's own bomb check lifted: we enforce max_pixels ourselves."""
    with _PIL_LIMIT_LOCK:
        saved = Image.MAX_IMAGE_PIXELS
        Image.MAX_IMAGE_PIXELS = None
        try:
            im = Image.open(path)
        except Image.DecompressionBombError:
            raise ImageError("image too large") from None
        except Image.UnidentifiedImageError:
            raise ImageError("not a recognised image file") from None
        except OSError as exc:
            raise ImageError(f"cannot read file: {exc.strerror or _short(exc)}") from None
        finally:
            Image.MAX_IMAGE_PIXELS = saved
    with im:
        yield im


def _decode(path: Path, im: Image.Image, max_pixels: int) -> Picture:
    fmt = _PIL_FORMATS.get(im.format or "")
    if fmt is None:
        raise ImageError(f"unsupported image format {im.format or 'unknown'}")
    w, h = im.size
    if w <= 0 or h <= 0:
        raise ImageError(f"invalid image size {w}x{h}")
    if w * h > max_pixels:
        raise ImageError(f"image too large: {w}x{h} pixels (limit {max_pixels:,})")
    info = im.info
    source_mode = None
    tiff_orientation = int(im.tag_v2.get(274, 1) or 1) if fmt == "tiff" else 1
    if fmt in ("png", "tiff") and _is_deep(im):
        pixels = _decode_cv2(path, fmt, im)
    elif tiff_orientation != 1:
        # Pillow's TIFF handling of the Orientation tag varies by version (and mis-decodes some
        # cases), so decode a copy with the tag neutralised and orient the pixels ourselves.
        with _pillow_open(io.BytesIO(_tiff_set_orientation(path.read_bytes()))) as stored:
            pixels, source_mode, extra = _decode_pillow(stored)
        info = {**im.info, **extra}
    else:
        pixels, source_mode, extra = _decode_pillow(im)
        info = {**im.info, **extra}  # PNG may reveal late chunks only after load()
    exif = _normalize_exif(info.get("exif"))
    if fmt == "tiff":
        orientation = tiff_orientation if 1 <= tiff_orientation <= 8 else 1
    else:
        orientation = _tiff_get_orientation(exif[6:]) if exif else 1
    if exif:
        exif = _EXIF_PREFIX + _tiff_set_orientation(exif[6:])
    return Picture(
        pixels=_apply_orientation(pixels, orientation),
        format=fmt,
        icc=info.get("icc_profile") or None,
        exif=exif,
        source_mode=source_mode,
        dpi=_dpi(info.get("dpi")),
        tiff_compression=info.get("compression") if fmt == "tiff" else None,
        webp_lossless=fmt == "webp" and _webp_is_lossless(path),
        jpeg_subsampling=_jpeg_subsampling(im) if fmt == "jpeg" else None,
    )


def _is_deep(im: Image.Image) -> bool:
    """True when samples have more than 8 bits (Pillow would truncate them)."""
    if im.mode in ("I", "F") or im.mode.startswith("I;16"):
        return True
    for tile in im.tile:
        args = tile[3]
        rawmode = args[0] if isinstance(args, tuple) and args else args
        if isinstance(rawmode, str) and ("16" in rawmode or "32" in rawmode):
            return True
    return False


def _decode_pillow(im: Image.Image) -> tuple[np.ndarray, str | None, dict]:
    """8-bit path; returns pixels, the source mode if converted, and info to override."""
    im.load()
    mode, extra = im.mode, {}
    if mode in ("L", "LA", "RGB", "RGBA"):
        out, source_mode = im, None
    elif mode == "1":
        out, source_mode = im.convert("L"), mode
    elif mode in ("P", "PA"):
        rgba = mode == "PA" or "transparency" in im.info
        out, source_mode = im.convert("RGBA" if rgba else "RGB"), mode
    elif mode == "CMYK":
        out, icc = _cmyk_to_rgb(im, im.info.get("icc_profile"))
        source_mode, extra = mode, {"icc_profile": icc}
    elif mode in ("YCbCr", "RGBX", "RGBa", "La"):
        out, source_mode = im.convert("RGBA" if mode in ("RGBa", "La") else "RGB"), mode
    else:
        raise ImageError(f"unsupported pixel format {mode}")
    arr = np.array(out)  # a writable copy: callers repair pixels in place
    if arr.ndim == 2:
        arr = arr[:, :, None]
    return arr, source_mode, extra


def _cmyk_to_rgb(im: Image.Image, icc: bytes | None) -> tuple[Image.Image, bytes | None]:
    """Colour-manage CMYK through its profile when it has one; a CMYK ICC can't tag RGB data."""
    if icc:
        try:
            srgb = ImageCms.createProfile("sRGB")
            src = ImageCms.ImageCmsProfile(io.BytesIO(icc))
            out = ImageCms.profileToProfile(im, src, srgb, outputMode="RGB")
            if out is not None:
                return out, ImageCms.ImageCmsProfile(srgb).tobytes()
        except (ImageCms.PyCMSError, OSError, ValueError):
            pass
    return im.convert("RGB"), None


def _decode_cv2(path: Path, fmt: str, im: Image.Image) -> np.ndarray:
    """Deep PNG/TIFF path; keeps uint16 and alpha, orientation left to us."""
    data = bytearray(path.read_bytes())
    if fmt == "png" and _PNG_END not in data[-4096:] and _PNG_END not in data:
        raise ImageError("truncated PNG (no end marker)")  # before libpng prints to stderr
    if fmt == "tiff":
        # OpenCV versions differ on whether (and how well) they honour the TIFF Orientation tag;
        # neutralise it in our in-memory copy so orientation is applied exactly once, by us.
        data = _tiff_set_orientation(data)
    with _quiet_cv2():
        try:
            arr = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
        except cv2.error:
            arr = None
    if arr is None or arr.size == 0:
        raise ImageError("corrupt or truncated image data")
    if arr.dtype not in (np.uint8, np.uint16):
        raise ImageError(f"unsupported sample type {arr.dtype} (only 8- and 16-bit)")
    if sorted(arr.shape[:2]) != sorted(im.size):  # Pillow may report TIFF sizes transposed
        raise ImageError("decoded size disagrees with the header (corrupt file?)")
    if arr.ndim == 2:
        return arr[:, :, None]
    if arr.shape[2] == 3:
        arr = arr[:, :, ::-1]
    elif arr.shape[2] == 4:
        arr = arr[:, :, [2, 1, 0, 3]]
        if im.mode == "LA":  # libpng expands grey+alpha to RGBA; restore the 2-channel form
            arr = arr[:, :, [0, 3]]
    return np.ascontiguousarray(arr)


@contextmanager
def _quiet_cv2() -> Iterator[None]:
    """Silence OpenCV's stderr chatter on bad files; we report failures as ImageError."""
    logging = getattr(getattr(cv2, "utils", None), "logging", None)
    if logging is None:
        yield
        return
    saved = logging.getLogLevel()
    logging.setLogLevel(logging.LOG_LEVEL_SILENT)
    try:
        yield
    finally:
        logging.setLogLevel(saved)


def _apply_orientation(px: np.ndarray, orientation: int) -> np.ndarray:
    """Make pixels upright for EXIF orientation 1..8 (same result as ImageOps.exif_transpose)."""
    ops = {
        2: lambda a: a[:, ::-1],
        3: lambda a: a[::-1, ::-1],
        4: lambda a: a[::-1],
        5: lambda a: a.transpose(1, 0, 2),
        6: lambda a: np.rot90(a, -1),
        7: lambda a: a[::-1, ::-1].transpose(1, 0, 2),
        8: lambda a: np.rot90(a, 1),
    }
    op = ops.get(orientation)
    return px if op is None else np.ascontiguousarray(op(px))


def _normalize_exif(raw: bytes | None) -> bytes | None:
    if not raw:
        return None
    if raw.startswith(_EXIF_PREFIX):
        return bytes(raw)
    if raw[:4] in (b"II*\x00", b"MM\x00*"):
        return _EXIF_PREFIX + bytes(raw)
    return None


def _dpi(value: object) -> tuple[float, float] | None:
    try:
        x, y = (float(v) for v in value)  # type: ignore[union-attr]
    except (TypeError, ValueError):
        return None
    return (x, y) if x > 0 and y > 0 else None


def _jpeg_subsampling(im: Image.Image) -> int | None:
    from PIL import JpegImagePlugin

    try:
        value = JpegImagePlugin.get_sampling(im)
    except Exception:  # best effort metadata
        return None
    return value if value in (0, 1, 2) else None


def _webp_is_lossless(path: Path) -> bool:
    """Walk the RIFF chunks to the first bitstream chunk: VP8L is lossless, "VP8 " lossy."""
    try:
        with open(path, "rb") as f:
            if f.read(12)[8:12] != b"WEBP":
                return False
            while True:
                head = f.read(8)
                if len(head) < 8:
                    return False
                kind, size = head[:4], struct.unpack("<I", head[4:])[0]
                if kind in (b"VP8L", b"VP8 "):
                    return kind == b"VP8L"
                f.seek(size + (size & 1), os.SEEK_CUR)
    except OSError:
        return False


def _short(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return (text[0] if text else type(exc).__name__)[:120]


# --------------------------------------------------------------------------- TIFF/EXIF bytes


def _tiff_ifd0(buf: bytes | bytearray) -> tuple[str, int] | None:
    """Byte order and first-IFD offset of a classic TIFF block, or None."""
    if buf[:4] == b"II*\x00":
        order = "<"
    elif buf[:4] == b"MM\x00*":
        order = ">"
    else:
        return None
    return order, struct.unpack(order + "I", bytes(buf[4:8]))[0]


def _tiff_find(buf: bytes | bytearray, tag: int) -> tuple[str, int, int] | None:
    """(byte order, entry position, field type) of ``tag`` in IFD0, or None."""
    try:
        head = _tiff_ifd0(buf)
        if head is None:
            return None
        order, off = head
        (count,) = struct.unpack(order + "H", bytes(buf[off:off + 2]))
        for i in range(count):
            pos = off + 2 + 12 * i
            t, typ = struct.unpack(order + "HH", bytes(buf[pos:pos + 4]))
            if t == tag:
                return order, pos, typ
    except struct.error:
        return None
    return None


def _tiff_get_orientation(buf: bytes | bytearray) -> int:
    found = _tiff_find(buf, _ORIENTATION_TAG)
    if found is None:
        return 1
    order, pos, typ = found
    fmt = {3: "H", 4: "I"}.get(typ)
    if fmt is None:
        return 1
    try:
        (value,) = struct.unpack_from(order + fmt, bytes(buf[pos + 8:pos + 12]))
    except struct.error:
        return 1
    return value if 1 <= value <= 8 else 1


def _tiff_set_orientation(buf: bytes | bytearray) -> bytearray:
    """Copy with IFD0's Orientation set to 1 in place; every other byte is left untouched."""
    out = bytearray(buf)
    found = _tiff_find(out, _ORIENTATION_TAG)
    if found is not None:
        order, pos, typ = found
        if typ == 3:
            out[pos + 8:pos + 10] = struct.pack(order + "H", 1)
        elif typ == 4:
            out[pos + 8:pos + 12] = struct.pack(order + "I", 1)
    return out


def _tiff_add_icc(data: bytes, icc: bytes) -> bytes:
    """Attach an ICC profile (tag 34675) to a classic TIFF by appending a rewritten IFD0.

    The old IFD and all strip data stay where they are, so every existing offset stays valid.
    """
    head = _tiff_ifd0(data)
    if head is None:
        return data
    order, off = head
    (count,) = struct.unpack(order + "H", data[off:off + 2])
    entries = [data[off + 2 + 12 * i: off + 14 + 12 * i] for i in range(count)]
    next_ifd = data[off + 2 + 12 * count: off + 6 + 12 * count]
    entries = [e for e in entries if struct.unpack(order + "H", e[:2])[0] != _ICC_TAG]
    out = bytearray(data)
    out += b"\x00" * (len(out) & 1)
    icc_at = len(out)
    out += icc
    out += b"\x00" * (len(out) & 1)
    entries.append(struct.pack(order + "HHII", _ICC_TAG, 7, len(icc), icc_at))
    entries.sort(key=lambda e: struct.unpack(order + "H", e[:2])[0])
    ifd_at = len(out)
    out += struct.pack(order + "H", len(entries)) + b"".join(entries) + next_ifd
    out[4:8] = struct.pack(order + "I", ifd_at)
    return bytes(out)


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    body = kind + data
    return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))


def _png_add_chunks(png: bytes, picture: Picture) -> bytes:
    """Insert iCCP/eXIf/pHYs right after IHDR of an encoder's PNG (OpenCV writes none)."""
    chunks = []
    if picture.icc:
        chunks.append(_png_chunk(b"iCCP", b"ICC Profile\x00\x00" + zlib.compress(picture.icc)))
    if picture.exif:
        chunks.append(_png_chunk(b"eXIf", picture.exif.removeprefix(_EXIF_PREFIX)))
    if picture.dpi:
        ppm = [round(v / 0.0254) for v in picture.dpi]
        chunks.append(_png_chunk(b"pHYs", struct.pack(">IIB", ppm[0], ppm[1], 1)))
    if not chunks or png[12:16] != b"IHDR":
        return png
    return png[:33] + b"".join(chunks) + png[33:]


# --------------------------------------------------------------------------- writing


def write_image(
    path: str | os.PathLike[str],
    picture: Picture,
    *,
    format: str | None = None,
    jpeg_quality: int = 95,
) -> None:
    """Encode ``picture`` (as its own format unless ``format`` is given) and write atomically.

    The format comes from ``picture.format``/``format``, never from the path's extension.
    Conversions when the target can't hold the data: 16-bit -> 8-bit for JPEG/WebP/BMP; alpha
    dropped for JPEG/BMP; grey -> RGB(A) for WebP; grey+alpha 16-bit is written as RGBA 16-bit
    (OpenCV can't write two channels). ``jpeg_quality`` also sets lossy WebP quality.
    1-bit sources go back to 1-bit PNG/TIFF/BMP (threshold 128); palette sources go back to a
    palette when the result still has <= 256 colours, else full colour. CMYK sources are
    written as RGB; an ICC profile that no longer fits the channels (grey vs colour) is dropped.
    Metadata: ICC on every format; EXIF on PNG/JPEG/WebP (not TIFF); DPI on PNG/JPEG/TIFF/BMP.
    16-bit files and 8-bit PNGs are encoded by OpenCV and the ICC profile (for PNG also EXIF and
    DPI) is spliced into the bytes afterwards, so deep scans keep their colour space. TIFF keeps a
    lossless input compression, otherwise uses LZW. WebP stays lossless if the source was.
    """
    fmt = normalize_format(format or picture.format)
    px = picture.pixels
    if px.ndim == 2:
        px = px[:, :, None]
    if px.ndim != 3 or px.shape[2] not in (1, 2, 3, 4) or px.dtype not in (np.uint8, np.uint16):
        raise ValueError(f"pixels must be HxWxC uint8/uint16 with C in 1..4, got "
                         f"{px.shape} {px.dtype}")
    if fmt in ("jpeg", "bmp") and px.shape[2] in (2, 4):
        px = px[:, :, :-1]
    if fmt in ("jpeg", "bmp", "webp") and px.dtype == np.uint16:
        px = _to_uint8(px)
    if px.dtype == np.uint16 or (fmt == "png" and px.shape[2] != 2 and picture.source_mode not in ("1", "P")):
        # OpenCV: 16-bit, and 8-bit PNG, which it encodes ~15x faster than Pillow's defaults (a 24 MP
        # scan: 0.7 s against 11 s) at about the same size.
        data = _encode_cv2(fmt, px, picture)
    else:
        data = _encode_pillow(fmt, px, picture, jpeg_quality)
    with atomic_output(path) as tmp:
        tmp.write_bytes(data)


def _icc_for(channels: int, icc: bytes | None) -> bytes | None:
    """Drop a grey profile on colour data (or vice versa) after a forced channel change."""
    if not icc or len(icc) < 20:
        return icc or None
    space = icc[16:20]
    colour = channels >= 3
    if (colour and space == b"GRAY") or (not colour and space == b"RGB "):
        return None
    return icc


def _to_uint8(px: np.ndarray) -> np.ndarray:
    return ((px.astype(np.uint32) * 255 + 32767) // 65535).astype(np.uint8)


def _encode_cv2(fmt: str, px: np.ndarray, picture: Picture) -> bytes:
    if px.shape[2] == 2:
        px = px[:, :, [0, 0, 0, 1]]
    if px.shape[2] == 3:
        bgr = px[:, :, ::-1]
    elif px.shape[2] == 4:
        bgr = px[:, :, [2, 1, 0, 3]]
    else:
        bgr = px[:, :, 0]
    bgr = np.ascontiguousarray(bgr)
    picture = replace(picture, icc=_icc_for(px.shape[2], picture.icc))
    if fmt == "png":
        ok, buf = cv2.imencode(".png", bgr)
        if not ok:
            raise ImageError("PNG encoder failed")
        return _png_add_chunks(buf.tobytes(), picture)
    code = _TIFF_CODES.get(picture.tiff_compression or "", 5)
    params = [cv2.IMWRITE_TIFF_COMPRESSION, code]
    if picture.dpi:
        params += [cv2.IMWRITE_TIFF_RESUNIT, 2, cv2.IMWRITE_TIFF_XDPI, round(picture.dpi[0]),
                   cv2.IMWRITE_TIFF_YDPI, round(picture.dpi[1])]
    with _quiet_cv2():
        ok, buf = cv2.imencode(".tiff", bgr, params)
    if not ok:
        raise ImageError("TIFF encoder failed")
    data = buf.tobytes()
    return _tiff_add_icc(data, picture.icc) if picture.icc else data


def _encode_pillow(fmt: str, px: np.ndarray, picture: Picture, jpeg_quality: int) -> bytes:
    im = _pillow_image(fmt, px, picture)
    opts: dict[str, object] = {}
    if fmt == "webp" and im.mode in ("L", "LA"):  # WebP has no grey mode
        im = im.convert("RGBA" if im.mode == "LA" else "RGB")
    icc = _icc_for(len(im.getbands()), picture.icc)
    if icc:
        opts["icc_profile"] = icc
    if picture.exif and fmt in ("png", "jpeg", "webp"):
        opts["exif"] = picture.exif
    if picture.dpi and fmt != "webp":
        opts["dpi"] = picture.dpi
    if fmt == "jpeg":
        opts["quality"] = int(jpeg_quality)
        if picture.jpeg_subsampling is not None:
            opts["subsampling"] = picture.jpeg_subsampling
    elif fmt == "webp":
        opts.update(lossless=picture.webp_lossless, quality=int(jpeg_quality), exact=True)
    elif fmt == "tiff":
        opts["compression"] = _tiff_compression(picture.tiff_compression, im.mode)
    buf = io.BytesIO()
    im.save(buf, format=fmt.upper(), **opts)
    return buf.getvalue()


def _pillow_image(fmt: str, px: np.ndarray, picture: Picture) -> Image.Image:
    """Build the Pillow image, going back to 1-bit/palette where the source was and it fits."""
    lossless = fmt in ("png", "tiff", "bmp")
    if px.shape[2] == 1:
        grey = px[:, :, 0]
        if picture.source_mode == "1" and lossless:
            return Image.fromarray(grey >= 128)
        return Image.fromarray(grey)
    if picture.source_mode == "P" and lossless and px.shape[2] == 3:
        paletted = _to_palette(px)
        if paletted is not None:
            return paletted
    return Image.fromarray(np.ascontiguousarray(px))


def _to_palette(px: np.ndarray) -> Image.Image | None:
    """Exact palette image if there are at most 256 distinct colours, else None."""
    r, g, b = (px[:, :, i].astype(np.uint32) for i in range(3))
    keys = (r << 16) | (g << 8) | b
    colours, index = np.unique(keys.ravel(), return_inverse=True)
    if len(colours) > 256:
        return None
    h, w = keys.shape
    im = Image.frombytes("P", (w, h), index.astype(np.uint8).tobytes())
    rgb = np.stack([(colours >> 16) & 255, (colours >> 8) & 255, colours & 255], axis=1)
    im.putpalette(rgb.astype(np.uint8).tobytes())
    return im


def _tiff_compression(name: str | None, mode: str) -> str:
    if name in _TIFF_CODES or (name in _BILEVEL_TIFF and mode == "1"):
        return name  # type: ignore[return-value]
    return "tiff_lzw"
