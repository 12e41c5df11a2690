"""Rebuild tests/data/tiny.mp4: a 1.2 s pan over examples/originals/lanterns.jpg with a tone.

128x96, 25 fps, 30 frames, H.264 + AAC, ~13 KB. Synthesised rather than cut from a clip so its
licence is the photo's (BSD-2-clause, see examples/LICENSES.tsv). Run from the repository root:

    python tests/data/make_tiny.py
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import cv2
import imageio_ffmpeg
import numpy as np

ROOT = Path(__file__).resolve().parents[2]
SIZE, FRAMES, FPS = (128, 96), 30, 25


def main() -> None:
    photo = cv2.cvtColor(cv2.imread(str(ROOT / "examples" / "originals" / "lanterns.jpg")), cv2.COLOR_BGR2RGB)
    photo = cv2.resize(photo, (480, 320), interpolation=cv2.INTER_AREA)
    w, h = SIZE
    frames = []
    for i in range(FRAMES):
        x, y = 4 * i, 40 + i  # a slow diagonal pan: every part is seen in several frames
        frames.append(np.ascontiguousarray(photo[y:y + h * 2, x:x + w * 2][::2, ::2]))
    out = ROOT / "tests" / "data" / "tiny.mp4"
    cmd = [imageio_ffmpeg.get_ffmpeg_exe(), "-v", "error", "-y", "-f", "rawvideo", "-pix_fmt", "rgb24",
           "-s", f"{w}x{h}", "-r", str(FPS), "-i", "-", "-f", "lavfi", "-i",
           f"sine=frequency=440:sample_rate=16000:duration={FRAMES / FPS}", "-map", "0:v", "-map", "1:a",
           "-c:v", "libx264", "-crf", "28", "-preset", "veryslow", "-pix_fmt", "yuv420p",
           "-c:a", "aac", "-b:a", "12k", "-ac", "1", "-map_metadata", "-1", "-fflags", "+bitexact",
           "-movflags", "+faststart", str(out)]
    subprocess.run(cmd, input=b"".join(f.tobytes() for f in frames), check=True)
    print(out, out.stat().st_size, "bytes")


if __name__ == "__main__":
    main()
