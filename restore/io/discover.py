"""Decide which files a run processes, where each output goes and which mask belongs to it.

Everything here is pure path logic (no decoding) so a large batch can be planned, sharded across
machines and checked for output collisions before any pixel is touched.
"""

from __future__ import annotations

import glob
import hashlib
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from restore.io.images import (
    EXTENSION_FORMATS,
    FORMAT_EXTENSIONS,
    IMAGE_EXTENSIONS,
    is_temp_name,
    normalize_format,
)
from restore.io.shards import ShardError, parse_shard

T = TypeVar("T")


class UsageError(Exception):
    """Bad command-line arguments; the CLI prints the message and exits with status 2."""


@dataclass(frozen=True)
class Job:
    """One image to restore."""

    source: Path  # input image
    relative: Path  # path relative to the input root, mirrored under OUT
    output: Path  # OUT / relative, suffix changed if an output format was forced
    mask: Path | None  # matched mask file, or None (the detector makes one)


def plan_jobs(
    spec: str,
    out_dir: str | os.PathLike[str],
    *,
    masks: str | os.PathLike[str] | None = None,
    output_format: str | None = None,
    shard: str | None = None,
) -> list[Job]:
    """Find inputs, match masks, map outputs, refuse collisions, then keep this shard's jobs.

    Collisions are checked over the whole set (not just the shard) so two machines can never be
    told to write the same file, and no output may land on any input.
    """
    out = Path(out_dir)
    mask_path = Path(masks) if masks is not None else None
    if mask_path is not None and not mask_path.exists():
        raise UsageError(f"mask path not found: {mask_path}")
    fmt = _output_format(output_format)
    inputs = find_inputs(spec, out, exclude=[mask_path] if mask_path is not None else [])
    mask_for = match_masks(inputs, mask_path)
    jobs = [
        Job(source, rel, out / _output_relative(rel, fmt), mask_for[source])
        for source, rel in inputs
    ]
    _check_collisions(jobs)
    return select_shard(jobs, shard)


def find_inputs(
    spec: str, out_dir: Path | None, exclude: Sequence[Path] = ()
) -> list[tuple[Path, Path]]:
    """(source, relative) pairs sorted by relative path, for a file, a folder or a glob.

    Folders are walked recursively; globs use ``glob.glob(recursive=True)`` and paths are
    relative to the pattern's non-magic prefix (matched folders are walked too). Only
    IMAGE_EXTENSIONS count (any case). Hidden files/folders (including atomic_output's temp
    files and macOS ``._`` files) are skipped in walks. ``out_dir`` and each ``exclude`` path
    are skipped when they lie inside the input root; being the root itself is a UsageError.
    """
    path = Path(spec)
    if path.is_file():
        if path.suffix.lower() not in IMAGE_EXTENSIONS:
            raise UsageError(f"not a supported image type: {spec} (expected one of "
                             f"{', '.join(sorted(IMAGE_EXTENSIONS))})")
        found = [] if is_temp_name(path.name) else [(path, Path(path.name))]
    elif path.is_dir():
        skip = _skip_list(path, out_dir, exclude)
        found = [(p, p.relative_to(path)) for p in _walk(path, skip)]
    elif glob.has_magic(spec):
        found = _glob_inputs(spec, out_dir, exclude)
    else:
        raise UsageError(f"no such file or folder: {spec}")
    if not found:
        raise UsageError(f"no images found in {spec}")
    unique = {_key(p): (p, rel) for p, rel in found}
    return sorted(unique.values(), key=lambda item: item[1].parts)


def match_masks(
    inputs: Sequence[tuple[Path, Path]], masks: Path | None
) -> dict[Path, Path | None]:
    """Mask for each source: one file for all, or the same relative folder + stem in a folder.

    In a mask folder any image extension matches (``in/a/b.jpg`` <- ``masks/a/b.png``); two
    candidates for one image is a UsageError rather than a silent pick.
    """
    if masks is None:
        return {source: None for source, _ in inputs}
    if masks.is_file():
        if masks.suffix.lower() not in IMAGE_EXTENSIONS:
            raise UsageError(f"mask is not a supported image type: {masks}")
        return {source: masks for source, _ in inputs}
    if not masks.is_dir():
        raise UsageError(f"mask path not found: {masks}")
    index: dict[tuple[str, str], list[Path]] = {}
    for path in _walk(masks, []):
        rel = path.relative_to(masks)
        index.setdefault((rel.parent.as_posix(), rel.stem), []).append(path)
    result: dict[Path, Path | None] = {}
    for source, rel in inputs:
        found = sorted(index.get((rel.parent.as_posix(), rel.stem), []))
        if len(found) > 1:
            names = ", ".join(str(p) for p in found)
            raise UsageError(f"several masks match {rel}: {names}; keep only one")
        result[source] = found[0] if found else None
    return result


def select_shard(items: Sequence[T], shard: str | None) -> list[T]:
    """Keep the items of shard K of N, in their original order.

    Membership depends only on a SHA-1 of each item's relative path (a Job's ``relative``, the
    second element of a (source, relative) pair, or the item itself), so it is the same on every
    machine, independent of listing order, and a file never changes shard when others are
    added. The N shards partition the set exactly (sizes are balanced only statistically).
    """
    if shard is None:
        return list(items)
    try:
        k, n = parse_shard(shard)
    except ShardError as exc:
        raise UsageError(str(exc)) from None
    return [item for item in items if _shard_of(_shard_key(item), n) == k - 1]


def _shard_key(item: object) -> str:
    key = getattr(item, "relative", None)
    if key is None:
        key = item[1] if isinstance(item, tuple) else item
    return Path(key).as_posix() if isinstance(key, (str, os.PathLike)) else str(key)


def _shard_of(key: str, n: int) -> int:
    digest = hashlib.sha1(key.encode("utf-8", "surrogateescape")).digest()
    return int.from_bytes(digest[:8], "big") % n


def _output_format(name: str | None) -> str | None:
    if name is None:
        return None
    try:
        return normalize_format(name)
    except ValueError as exc:
        raise UsageError(str(exc)) from None


def _output_relative(rel: Path, fmt: str | None) -> Path:
    """Keep the suffix when it already names the forced format (.jpeg stays .jpeg)."""
    if fmt is None or EXTENSION_FORMATS.get(rel.suffix.lower()) == fmt:
        return rel
    return rel.with_suffix(FORMAT_EXTENSIONS[fmt])


def _check_collisions(jobs: Sequence[Job]) -> None:
    sources = {_key(job.source): job.source for job in jobs}
    claimed: dict[str, Job] = {}
    for job in jobs:
        key = _key(job.output)
        if key in sources:
            raise UsageError(f"output {job.output} would overwrite input {sources[key]}")
        if key in claimed:
            raise UsageError(f"{claimed[key].source} and {job.source} would both be written "
                             f"to {job.output}")
        claimed[key] = job


def _key(path: Path) -> str:
    """Comparable identity of a path (follows symlinks, case-folds where the OS does)."""
    return os.path.normcase(str(path.resolve()))


def _skip_list(root: Path, out_dir: Path | None, exclude: Sequence[Path]) -> list[Path]:
    """Resolved paths inside ``root`` to skip; the root itself may not be excluded."""
    root_r = root.resolve()
    skip = []
    for name, path in [("output folder", out_dir)] + [("excluded path", p) for p in exclude]:
        if path is None:
            continue
        resolved = path.resolve()
        if resolved == root_r:
            raise UsageError(f"the {name} {path} is the input folder itself; use another folder")
        if resolved.is_relative_to(root_r):
            skip.append(resolved)
    return skip


def _is_skipped(path: Path, skip: Sequence[Path]) -> bool:
    if not skip:
        return False
    resolved = path.resolve()
    return any(resolved == s or resolved.is_relative_to(s) for s in skip)


def _is_candidate(name: str) -> bool:
    return (
        not name.startswith(".")
        and not is_temp_name(name)
        and Path(name).suffix.lower() in IMAGE_EXTENSIONS
    )


def _walk(root: Path, skip: Sequence[Path]) -> Iterator[Path]:
    """Image files under ``root``, not descending into hidden or skipped folders."""
    for dirpath, dirnames, filenames in os.walk(root):
        here = Path(dirpath)
        dirnames[:] = sorted(
            d for d in dirnames if not d.startswith(".") and not _is_skipped(here / d, skip)
        )
        for name in sorted(filenames):
            if _is_candidate(name) and not _is_skipped(here / name, skip):
                yield here / name


def _glob_inputs(spec: str, out_dir: Path | None, exclude: Sequence[Path]) -> list[
    tuple[Path, Path]
]:
    parts = Path(spec).parts
    fixed = next(i for i, part in enumerate(parts) if glob.has_magic(part))
    prefix = Path(*parts[:fixed]) if fixed else Path(".")
    base = Path(os.path.normpath(os.path.abspath(prefix)))
    skip = _skip_list(prefix, out_dir, exclude) if prefix.is_dir() else []
    found: list[tuple[Path, Path]] = []
    for match in sorted(glob.glob(spec, recursive=True)):
        path = Path(match)
        if path.is_dir():
            candidates = list(_walk(path, skip))
        elif path.is_file() and _is_candidate(path.name) and not _is_skipped(path, skip):
            candidates = [path]
        else:
            continue
        for candidate in candidates:
            absolute = Path(os.path.normpath(os.path.abspath(candidate)))
            try:
                rel = absolute.relative_to(base)
            except ValueError:
                raise UsageError(f"{candidate} lies outside {prefix}; can't mirror it into the "
                                 "output folder") from None
            found.append((candidate, rel))
    return found
