"""Frames in, one at a time: video files through ffmpeg, image sequences through ``read_image``.

ffmpeg (the binary that imageio-ffmpeg ships) decodes in its own process and pipes raw RGB
frames, so memory holds one frame whatever the clip's length, and decoding runs on another core
while we compute. We start the process ourselves rather than through ``imageio_ffmpeg.read_frames``
because we need ffmpeg's error lines and exit status: a truncated or partly corrupt file is
repaired as far as it decodes, and the caller turns ``FrameReader.warnings`` into a clear message.

Frames come upright (ffmpeg applies the display rotation), so masks are drawn on the picture as
players show it; the writer puts the rotation back.
"""

from __future__ import annotations

import re
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import imageio_ffmpeg
import numpy as np

from restore.io.images import IMAGE_EXTENSIONS, ImageError, Picture, read_image

VIDEO_EXTENSIONS: frozenset[str] = frozenset({
    ".mp4", ".m4v", ".mov", ".mkv", ".avi", ".webm", ".mpg", ".mpeg", ".ts", ".mts", ".m2ts",
    ".wmv", ".flv", ".3gp", ".ogv", ".dv",
})
MAX_WARNING_LINES = 20  # ffmpeg can print one error per damaged packet; keep the first few
# Frame rates that headers print rounded (29.97) but that are exact fractions (30000/1001).
_NTSC_RATES = [Fraction(n * 1000, 1001) for n in (24, 30, 48, 60, 120, 240)]
_STREAM_RE = re.compile(r"^\s*Stream #\d+:\d+.*?: (Video|Audio|Subtitle|Data): (.*)$")
_SIZE_RE = re.compile(r"(?:^|[ ,])(\d{1,6})x(\d{1,6})(?:[ ,\[]|$)")
_FPS_RE = re.compile(r"([\d.]+)(k?) (fps|tbr)")
_DURATION_RE = re.compile(r"Duration: (\d+):(\d\d):(\d\d(?:\.\d+)?)")
_ROTATION_RE = re.compile(r"rotation of (-?[\d.]+) degrees")
_DIGITS_RE = re.compile(r"(\d+)")
_ADDRESS_RE = re.compile(r"^\[(?:in#\d+/?)?([^\]@]*?)\s*@ 0x[0-9a-f]+\]\s*")


class VideoError(Exception):
    """One-line, user-facing reason a clip can't be used (the caller adds the path)."""


def ffmpeg_exe() -> str:
    """The ffmpeg binary that imageio-ffmpeg provides (or IMAGEIO_FFMPEG_EXE names)."""
    return imageio_ffmpeg.get_ffmpeg_exe()


@dataclass(frozen=True)
class VideoInfo:
    """What we need to know about a clip before decoding it."""

    path: Path
    width: int  # of the frames we get, upright (as displayed)
    height: int
    fps: Fraction
    duration: float  # seconds, from the container (0 when unknown)
    rotation: int  # display rotation, degrees counter-clockwise (ffmpeg's -display_rotation)
    has_audio: bool
    pix_fmt: str
    codec: str

    @property
    def expected_frames(self) -> int | None:
        """Frame count the header promises; only for progress and truncation warnings."""
        return round(self.duration * float(self.fps)) if self.duration > 0 and self.fps > 0 else None


@dataclass(frozen=True)
class SequenceInfo:
    """A folder of numbered frames (a scanned reel, an image sequence)."""

    path: Path
    files: tuple[Path, ...]
    width: int
    height: int

    @property
    def expected_frames(self) -> int:
        return len(self.files)


def natural_key(path: Path) -> tuple:
    """frame2.png before frame10.png: digits compare as numbers."""
    return tuple(int(part) if part.isdigit() else part.lower() for part in _DIGITS_RE.split(path.name))


def list_frames(folder: Path) -> list[Path]:
    """Image files directly in ``folder`` in frame order; hidden and temp files are skipped."""
    return sorted((p for p in folder.iterdir()
                   if p.is_file() and not p.name.startswith(".") and p.suffix.lower() in IMAGE_EXTENSIONS),
                  key=natural_key)


def probe_sequence(folder: Path) -> SequenceInfo:
    files = list_frames(folder)
    if not files:
        raise VideoError("no image files in the folder")
    try:
        first = read_image(files[0])
    except ImageError as exc:
        raise VideoError(f"{files[0].name}: {exc}") from None
    height, width = first.size
    return SequenceInfo(folder, tuple(files), width, height)


def read_sequence(info: SequenceInfo) -> Iterator[Picture]:
    """Each frame with its metadata (kept for the write); all frames must share one size."""
    for path in info.files:
        try:
            picture = read_image(path)
        except ImageError as exc:
            raise VideoError(f"{path.name}: {exc}") from None
        if picture.size != (info.height, info.width):
            raise VideoError(f"{path.name} is {picture.size[1]}x{picture.size[0]}, the first frame is "
                             f"{info.width}x{info.height}; every frame must have the same size")
        yield picture


def _snap_rate(value: float) -> Fraction:
    """Header rates are printed to two decimals; recover the exact fraction behind common ones."""
    for rate in _NTSC_RATES:
        if abs(float(rate) - value) < 0.006:
            return rate
    if abs(value - round(value)) < 0.006:
        return Fraction(round(value))
    return Fraction(value).limit_denominator(1001)


def _packet_rate(path: Path) -> Fraction | None:
    """Exact frame rate from the first packets' durations (a stream copy, no decoding)."""
    cmd = [ffmpeg_exe(), "-nostdin", "-v", "error", "-i", str(path), "-map", "0:v:0", "-c", "copy",
           "-frames:v", "120", "-f", "framecrc", "-"]
    try:
        text = subprocess.run(cmd, capture_output=True, text=True, timeout=60, errors="replace").stdout
    except (OSError, subprocess.TimeoutExpired):
        return None
    tb = re.search(r"#tb 0: (\d+)/(\d+)", text)
    durations = [int(line.split(",")[3]) for line in text.splitlines()
                 if line.startswith("0,") and len(line.split(",")) > 4]
    durations = [d for d in durations if d > 0]
    if not tb or len(durations) < 2:
        return None
    values, counts = np.unique(durations, return_counts=True)
    duration = int(values[np.argmax(counts)])  # the common packet duration, ignoring the odd last one
    return Fraction(int(tb.group(2)), int(tb.group(1)) * duration)


def probe_video(path: Path) -> VideoInfo:
    """Parse ffmpeg's description of the file: size, rate, duration, rotation, audio."""
    try:
        result = subprocess.run([ffmpeg_exe(), "-hide_banner", "-nostdin", "-i", str(path)],
                                capture_output=True, text=True, timeout=120, errors="replace")
    except subprocess.TimeoutExpired:
        raise VideoError("ffmpeg took more than 2 minutes to open the file") from None
    lines = result.stderr.splitlines()
    video = audio = None
    rotation = 0.0
    for i, line in enumerate(lines):
        match = _STREAM_RE.match(line)
        if not match:
            continue
        if match.group(1) == "Video" and video is None and "attached pic" not in line:
            video = match.group(2)
            for extra in lines[i + 1:]:
                if _STREAM_RE.match(extra):
                    break
                found = _ROTATION_RE.search(extra)
                if found:
                    rotation = float(found.group(1))
        elif match.group(1) == "Audio":
            audio = audio or match.group(2)
    if video is None:
        if any(_STREAM_RE.match(line) for line in lines):
            raise VideoError("the file has no video stream")
        reasons = [_tidy(ln) for ln in lines if ln.strip() and "At least one output file" not in ln]
        reason = reasons[0] if reasons else "unknown reason"
        if "moov atom not found" in result.stderr:
            reason += " (an MP4 whose index, written last, is missing: the recording or copy was cut short)"
        raise VideoError(f"ffmpeg cannot open it: {reason}")
    size = _SIZE_RE.search(video)
    if not size:
        raise VideoError(f"cannot read the frame size from ffmpeg's description: {video}")
    width, height = int(size.group(1)), int(size.group(2))
    if width == 0 or height == 0:
        raise VideoError("the video stream has no frame size (damaged header?)")
    turn = round(rotation / 90) % 4
    if turn % 2:
        width, height = height, width
    fps = Fraction(0)
    found = _FPS_RE.search(video)
    if found:
        value = float(found.group(1)) * (1000 if found.group(2) else 1)
        fps = _snap_rate(value)
    exact = _packet_rate(path)
    if exact is not None and (fps == 0 or abs(float(exact) / float(fps) - 1) < 0.01):
        fps = exact  # the header rounds (30.02); packets say 90000/2998
    if fps <= 0:
        raise VideoError("cannot tell the frame rate")
    duration = 0.0
    found = _DURATION_RE.search(result.stderr)
    if found:
        duration = int(found.group(1)) * 3600 + int(found.group(2)) * 60 + float(found.group(3))
    parts = [p.strip() for p in re.split(r",\s*(?![^()]*\))", video)]
    codec = parts[0].split(" ")[0] if parts else "?"
    pix_fmt = parts[1].split("(")[0] if len(parts) > 1 else "?"
    return VideoInfo(path=path, width=width, height=height, fps=fps, duration=duration,
                     rotation=int(round(rotation)), has_audio=audio is not None, pix_fmt=pix_fmt, codec=codec)


@dataclass
class FrameReader:
    """Iterate over a clip's frames (H x W x 3 uint8 RGB, upright); collects ffmpeg's complaints.

    After the loop, ``count`` is the number of frames decoded and ``warnings`` says what went
    wrong, if anything: ffmpeg's error lines, and a shortfall against the header's promise.
    """

    info: VideoInfo
    limit: int | None = None  # stop after this many frames (the overlay warm-up reads a few)
    count: int = 0
    warnings: list[str] = field(default_factory=list)
    _errors: list[str] = field(default_factory=list)
    _error_total: int = 0

    def __iter__(self) -> Iterator[np.ndarray]:
        info = self.info
        cmd = [ffmpeg_exe(), "-nostdin", "-v", "error", "-i", str(info.path), "-map", "0:v:0",
               "-fps_mode", "passthrough", "-f", "rawvideo", "-pix_fmt", "rgb24"]
        if self.limit is not None:
            cmd += ["-frames:v", str(self.limit)]
        process = subprocess.Popen(cmd + ["-"], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                   stderr=subprocess.PIPE, bufsize=0)
        stderr = threading.Thread(target=self._collect, args=(process,), daemon=True)
        stderr.start()
        size = info.width * info.height * 3
        finished = False
        try:
            assert process.stdout is not None
            while True:
                data = _read_exactly(process.stdout, size)
                if len(data) < size:
                    if data:
                        self._errors.append("the last frame is incomplete")
                    break
                self.count += 1
                yield np.frombuffer(data, np.uint8).reshape(info.height, info.width, 3)
            finished = True
        finally:
            if not finished and process.poll() is None:
                process.kill()  # the consumer stopped early (error, Ctrl-C, limit): don't wait
            process.wait()
            stderr.join(timeout=5)
        self._summarise(process.returncode)

    def _collect(self, process: subprocess.Popen) -> None:
        assert process.stderr is not None
        for raw in process.stderr:
            line = raw.decode("utf-8", "replace").strip()
            if line:
                self._error_total += 1
                if len(self._errors) < MAX_WARNING_LINES:
                    self._errors.append(_tidy(line))

    def _summarise(self, returncode: int | None) -> None:
        if self.limit is not None:
            return
        if self._errors:
            more = f" (and {self._error_total - len(self._errors)} more)" if self._error_total > len(
                self._errors) else ""
            self.warnings.append(f"ffmpeg reported {self._error_total} decoding problem(s), first: "
                                 f"{self._errors[0]}{more}; repaired what decodes")
        elif returncode:
            self.warnings.append(f"ffmpeg stopped with status {returncode}; repaired what decodes")
        expected = self.info.expected_frames
        if expected and self.count < expected - max(2, expected // 50):
            self.warnings.append(f"decoded {self.count} frames but the header promises about {expected}: "
                                 "the file looks truncated; the output ends where the input stops decoding")


def _tidy(line: str) -> str:
    """ffmpeg's line without the object address: "[h264 @ 0x55...] x" -> "h264: x"."""
    return _ADDRESS_RE.sub(lambda m: f"{m.group(1)}: " if m.group(1) else "", line.strip())


def _read_exactly(stream, size: int) -> bytes:
    chunks, got = [], 0
    while got < size:
        chunk = stream.read(size - got)
        if not chunk:
            break
        chunks.append(chunk)
        got += len(chunk)
    return b"".join(chunks)
