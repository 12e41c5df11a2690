"""Frames out, one at a time: an ffmpeg encoder process, or a folder of numbered frames.

Both write under a hidden temporary name beside the final one and rename only when the last
frame is in and the encoder said it succeeded, so a run killed part-way (or a full disk) never
leaves a broken file under the final name. The encoder is fed from a small queue on its own
thread, so encoding overlaps the repair of the next frames; memory stays at a few frames.

The audio stream is copied from the source unchanged (``-c:a copy``), with the container's
metadata; the picture is turned back to the source's stored orientation and the display
rotation is set again, so a phone clip shot upright plays upright, as it did.
"""

from __future__ import annotations

import os
import queue
import secrets
import shutil
import subprocess
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from fractions import Fraction
from pathlib import Path

import numpy as np

from restore.io.images import Picture, write_image
from restore.video.reader import VideoError, ffmpeg_exe

DEFAULT_CRF = 18  # visually lossless for H.264; restoration should not add visible loss
_CRF_CODECS = {"libx264": (0, 51), "libx264rgb": (0, 51), "libx265": (0, 51), "libvpx-vp9": (0, 63),
               "libaom-av1": (0, 63), "libsvtav1": (0, 63)}
_DEFAULT_CODECS = {".webm": "libvpx-vp9", ".ogv": "libtheora", ".wmv": "msmpeg4", ".flv": "flv"}


def default_codec(path: Path) -> str:
    """H.264 unless the container can't hold it."""
    return _DEFAULT_CODECS.get(path.suffix.lower(), "libx264")


def output_pix_fmt(width: int, height: int, source_pix_fmt: str | None) -> str:
    """4:2:0 for compatibility; 4:4:4 when the source had full chroma or the size is odd."""
    if width % 2 or height % 2 or (source_pix_fmt or "").startswith(("yuv444", "gbr", "rgb", "bgr")):
        return "yuv444p"
    return "yuv420p"


def _stored(frame: np.ndarray, rotation: int) -> np.ndarray:
    """Upright picture -> the stored orientation whose display rotation is ``rotation``."""
    turn = round(rotation / 90) % 4
    return np.ascontiguousarray(np.rot90(frame, -turn)) if turn else frame


class VideoWriter:
    """Encode RGB frames (H x W x 3 uint8, upright) to ``path`` with ffmpeg; raises VideoError on failure.

    ``grey``: frames are H x W uint8 (masks): a third of the bytes through the pipe, and with
    ``lossless`` x264's fastest preset, since a mask video is for checking, not for keeping small."""

    def __init__(self, path: Path, width: int, height: int, fps: Fraction, *, codec: str | None = None,
                 crf: int | None = DEFAULT_CRF, pix_fmt: str | None = None, rotation: int = 0,
                 audio_from: Path | None = None, lossless: bool = False, grey: bool = False) -> None:
        self.path, self.rotation = Path(path), rotation
        turn = round(rotation / 90) % 4
        stored_w, stored_h = (height, width) if turn % 2 else (width, height)
        codec = codec or default_codec(self.path)
        cmd = [ffmpeg_exe(), "-nostdin", "-y", "-v", "error", "-f", "rawvideo",
               "-pix_fmt", "gray" if grey else "rgb24", "-s", f"{stored_w}x{stored_h}", "-r", str(fps)]
        if rotation:
            cmd += ["-display_rotation", str(rotation), "-noautorotate"]  # keep it as metadata
        cmd += ["-i", "-"]
        if audio_from is not None:
            cmd += ["-i", str(audio_from), "-map", "0:v:0", "-map", "1:a?", "-c:a", "copy",
                    "-map_metadata", "1"]
        cmd += ["-c:v", codec, "-pix_fmt", pix_fmt or output_pix_fmt(stored_w, stored_h, None)]
        if lossless and codec.startswith("libx264"):
            cmd += ["-qp", "0"] + (["-preset", "ultrafast"] if grey else [])
        elif crf is not None and codec in _CRF_CODECS:
            low, high = _CRF_CODECS[codec]
            cmd += ["-crf", str(min(max(crf, low), high))] + (["-b:v", "0"] if "vpx" in codec else [])
        cmd += ["-fps_mode", "passthrough", "-f", _muxer(self.path), str(self.path)]
        self._stderr = tempfile.TemporaryFile()
        try:
            self._process = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                                             stderr=self._stderr)
        except OSError as exc:
            self._stderr.close()
            raise VideoError(f"cannot start ffmpeg: {exc}") from None
        self._queue: queue.Queue[np.ndarray | None] = queue.Queue(maxsize=4)
        self._failure: BaseException | None = None
        self._thread = threading.Thread(target=self._feed, name="restore-encode", daemon=True)
        self._thread.start()
        self.frames = 0

    def _feed(self) -> None:
        stdin = self._process.stdin
        assert stdin is not None
        try:
            while (frame := self._queue.get()) is not None:
                if self._failure is None:
                    stdin.write(memoryview(frame).cast("B"))
        except (BrokenPipeError, OSError) as exc:
            self._failure = exc
            while self._queue.get() is not None:  # keep draining so write() never blocks forever
                pass
        finally:
            try:
                stdin.close()
            except OSError:
                pass

    def write(self, frame: np.ndarray) -> None:
        if self._failure is not None:
            raise VideoError(self._error_text("ffmpeg stopped accepting frames"))
        self._queue.put(np.ascontiguousarray(_stored(frame, self.rotation)))
        self.frames += 1

    def close(self) -> None:
        """Finish the file; VideoError if ffmpeg did not succeed."""
        self._queue.put(None)
        self._thread.join()
        code = self._process.wait()
        try:
            if code != 0 or self._failure is not None:
                raise VideoError(self._error_text(f"ffmpeg failed (status {code})"))
        finally:
            self._stderr.close()

    def abort(self) -> None:
        """Stop at once (an error elsewhere); the caller deletes the temp file."""
        self._failure = self._failure or VideoError("aborted")
        if self._process.poll() is None:
            self._process.kill()
        self._queue.put(None)
        self._thread.join(timeout=10)
        self._process.wait()
        self._stderr.close()

    def _error_text(self, prefix: str) -> str:
        self._stderr.seek(0)
        text = self._stderr.read().decode("utf-8", "replace").strip().splitlines()
        return prefix + (f": {' / '.join(text[-3:])}" if text else "")


def _muxer(path: Path) -> str:
    """Pick the container from the final suffix, since temp names end in .tmp.EXT anyway."""
    return {".mp4": "mp4", ".m4v": "mp4", ".mov": "mov", ".mkv": "matroska", ".webm": "webm",
            ".avi": "avi", ".ts": "mpegts", ".mts": "mpegts", ".m2ts": "mpegts", ".mpg": "mpeg",
            ".mpeg": "mpeg", ".wmv": "asf", ".flv": "flv", ".3gp": "3gp", ".ogv": "ogg",
            ".dv": "dv"}.get(path.suffix.lower(), "mp4")


class FramesWriter:
    """Write frames into a folder: each with its source frame's name and format, or NNNNNN.png."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.frames = 0

    def write(self, frame: np.ndarray, picture: Picture | None = None, name: str | None = None) -> None:
        self.frames += 1
        if picture is None:
            picture = Picture(pixels=frame, format="png")
            name = f"{self.frames:06d}.png"
        else:
            picture = replace(picture, pixels=frame)
        write_image(self.folder / (name or f"{self.frames:06d}.png"), picture)


@contextmanager
def atomic_folder(final: Path) -> Iterator[Path]:
    """Like ``atomic_output`` for a folder of frames: build ``.NAME.<hex>.tmp``, then rename it.

    An existing folder (``--overwrite``) is moved aside first and deleted after the rename, so the
    final name always holds one complete set of frames.
    """
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = final.with_name(f".{final.name}.{secrets.token_hex(3)}.tmp")
    tmp.mkdir()
    try:
        yield tmp
        old = None
        if final.exists():
            old = final.with_name(f".{final.name}.{secrets.token_hex(3)}.tmp")
            os.replace(final, old)
        os.replace(tmp, final)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
