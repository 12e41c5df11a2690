"""Which clips a ``restore video`` run processes and where each output goes (pure path logic).

Inputs are video files, folders of numbered frames (a sequence), or folders holding either,
walked recursively. Outputs go beside the input with ``.restored`` before the suffix, or under
``-o``: when a single clip or sequence is named, ``-o`` is the output itself (a video if its
suffix is a video type, else a folder of frames); otherwise it is a folder the inputs are
mirrored into. Our own ``*.restored*`` outputs and hidden temp files are never picked up, so a
rerun resumes instead of repairing its own results.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from restore.io.discover import UsageError, select_shard
from restore.io.images import IMAGE_EXTENSIONS, is_temp_name
from restore.video.reader import VIDEO_EXTENSIONS

SUFFIX = ".restored"
KINDS = ("video", "frames")


@dataclass(frozen=True)
class VideoJob:
    """One clip or frame sequence to restore."""

    source: Path
    kind: str  # "video" (a file) or "frames" (a folder of numbered frames)
    relative: Path  # mirrored under -o; also how --masks and --save-masks folders are matched
    output: Path
    output_kind: str  # "video" or "frames"
    named: bool = False  # the only input, named itself: -o, --masks and --save-masks are its own paths


def is_video(path: Path) -> bool:
    return path.suffix.lower() in VIDEO_EXTENSIONS


def _is_ours(name: str) -> bool:
    """Our outputs (clip.restored.mp4, reel.restored/) and temp files: never inputs."""
    stem = name[: -len(Path(name).suffix)] if Path(name).suffix else name
    return name.startswith(".") or is_temp_name(name) or stem.endswith(SUFFIX) or name.endswith(SUFFIX)


def _frame_count(folder: Path) -> int:
    try:
        return sum(1 for p in folder.iterdir() if p.is_file() and not _is_ours(p.name)
                   and p.suffix.lower() in IMAGE_EXTENSIONS)
    except OSError:
        return 0


def _walk(root: Path, skip: Sequence[Path]) -> list[tuple[Path, str]]:
    """(path, kind) for every clip and every folder of 2+ frames under ``root``."""
    found: list[tuple[Path, str]] = []
    for dirpath, dirnames, filenames in os.walk(root):
        here = Path(dirpath)
        dirnames[:] = sorted(d for d in dirnames if not _is_ours(d) and (here / d).resolve() not in skip)
        if _frame_count(here) >= 2:
            found.append((here, "frames"))
        found += [(here / n, "video") for n in sorted(filenames) if is_video(Path(n)) and not _is_ours(n)]
    return found


def _beside(source: Path, kind: str, output_kind: str) -> Path:
    if output_kind == "frames":
        return source.with_name((source.stem if kind == "video" else source.name) + SUFFIX)
    if kind == "video":
        return source.with_name(source.stem + SUFFIX + source.suffix)
    return source.with_name(source.name + SUFFIX + ".mp4")


def _under(out: Path, rel: Path, kind: str, output_kind: str) -> Path:
    if output_kind == "frames":
        return out / (rel.with_suffix("") if kind == "video" else rel)
    return out / (rel if kind == "video" else rel.with_name(rel.name + ".mp4"))


def plan_video_jobs(specs: Sequence[str], output: Path | None = None, to: str | None = None,
                    shard: str | None = None, exclude: Sequence[Path] = ()) -> list[VideoJob]:
    """Find inputs, choose outputs, refuse collisions, keep this shard's share; UsageError on bad input."""
    if to is not None and to not in KINDS:
        raise UsageError(f"--to must be one of {', '.join(KINDS)}")
    if not specs:
        raise UsageError("name at least one video, frame folder or folder of videos")
    skip = [p.resolve() for p in [*(exclude or []), *([output] if output is not None else [])]]
    items: list[tuple[Path, str, Path]] = []  # (source, kind, relative)
    single = False
    for spec in specs:
        path = Path(spec)
        if path.is_file():
            if not is_video(path):
                known = ", ".join(sorted(VIDEO_EXTENSIONS))
                raise UsageError(f"not a video file: {spec} (expected one of {known})")
            items.append((path, "video", Path(path.name)))
            single = len(specs) == 1
        elif path.is_dir():
            found = _walk(path, skip)
            if not found:
                raise UsageError(f"no videos or numbered frames found in {spec}")
            for source, kind in found:
                rel = Path(path.resolve().name) if source == path else source.relative_to(path)
                items.append((source, kind, rel))
            single = len(specs) == 1 and found == [(path, "frames")]
        else:
            raise UsageError(f"no such file or folder: {spec}")
    jobs = []
    for source, kind, rel in items:
        if single and output is not None:
            output_kind = "video" if is_video(output) else "frames"
            if to is not None and to != output_kind:
                raise UsageError(f"-o {output} is a {output_kind} path but --to {to} was asked for")
            target = output
        else:
            output_kind = to or kind
            if output is not None and is_video(output):
                raise UsageError(f"-o {output} names one video but several inputs were found; give a folder")
            target = _under(output, rel, kind, output_kind) if output is not None else _beside(source, kind,
                                                                                                 output_kind)
        jobs.append(VideoJob(source, kind, rel, target, output_kind, single))
    _check_collisions(jobs)
    return select_shard(jobs, shard)


def _check_collisions(jobs: Sequence[VideoJob]) -> None:
    sources = {os.path.normcase(str(j.source.resolve())): j.source for j in jobs}
    claimed: dict[str, VideoJob] = {}
    for job in jobs:
        key = os.path.normcase(str(job.output.resolve()))
        if key in sources:
            raise UsageError(f"output {job.output} would overwrite input {sources[key]}")
        if key in claimed:
            raise UsageError(f"{claimed[key].source} and {job.source} would both be written to {job.output}")
        claimed[key] = job
