"""Input discovery, output mapping, mask matching and sharding (pure path logic)."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from restore.io.discover import (
    Job,
    UsageError,
    find_inputs,
    match_masks,
    plan_jobs,
    select_shard,
)


def touch(root: Path, *names: str) -> None:
    for name in names:
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"x")


def rels(pairs) -> list[str]:
    return [rel.as_posix() for _, rel in pairs]


def test_folder_is_walked_recursively_sorted_and_filtered(tmp_path):
    src = tmp_path / "in"
    touch(src, "b.JPG", "a.png", "sub/c.tiff", "sub/deep/d.webp", "notes.txt", "e.gif",
          ".hidden.jpg", "._a.jpg", ".cache/x.png", ".a.1f2e3d.tmp.png")
    assert rels(find_inputs(str(src), None)) == [
        "a.png", "b.JPG", "sub/c.tiff", "sub/deep/d.webp"]
    source, rel = find_inputs(str(src), None)[0]
    assert source == src / "a.png" and rel == Path("a.png")


def test_single_file_spec(tmp_path):
    touch(tmp_path, "photo.jpeg")
    assert find_inputs(str(tmp_path / "photo.jpeg"), None) == [
        (tmp_path / "photo.jpeg", Path("photo.jpeg"))]
    touch(tmp_path, "doc.pdf")
    with pytest.raises(UsageError, match="not a supported image"):
        find_inputs(str(tmp_path / "doc.pdf"), None)


def test_nothing_found_or_missing_is_usage_error(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(UsageError, match="no images"):
        find_inputs(str(tmp_path / "empty"), None)
    with pytest.raises(UsageError, match="no such"):
        find_inputs(str(tmp_path / "nope"), None)
    with pytest.raises(UsageError, match="no images"):
        find_inputs(str(tmp_path / "*.jpg"), None)


def test_out_inside_in_is_skipped(tmp_path):
    src = tmp_path / "in"
    touch(src, "a.jpg", "out/a.jpg", "out/sub/b.png")
    assert rels(find_inputs(str(src), src / "out")) == ["a.jpg"]
    jobs = plan_jobs(str(src), src / "out")
    assert [j.output for j in jobs] == [src / "out" / "a.jpg"]


def test_out_equal_to_in_is_refused(tmp_path):
    touch(tmp_path, "a.jpg")
    with pytest.raises(UsageError, match="input folder"):
        plan_jobs(str(tmp_path), tmp_path)


def test_in_inside_out_is_not_skipped(tmp_path):
    touch(tmp_path, "out/in/a.jpg")
    assert rels(find_inputs(str(tmp_path / "out" / "in"), tmp_path / "out")) == ["a.jpg"]


def test_glob_relative_to_non_magic_prefix(tmp_path):
    src = tmp_path / "in"
    touch(src, "2020/a.jpg", "2020/x/b.jpg", "2021/c.jpg", "2021/d.png", "e.jpg", "f.txt")
    pairs = find_inputs(str(src / "**" / "*.jpg"), None)
    assert rels(pairs) == ["2020/a.jpg", "2020/x/b.jpg", "2021/c.jpg", "e.jpg"]
    assert pairs[0][0] == src / "2020" / "a.jpg"
    assert rels(find_inputs(str(src / "*"), None)) == [  # matched folders are walked
        "2020/a.jpg", "2020/x/b.jpg", "2021/c.jpg", "2021/d.png", "e.jpg"]
    assert rels(find_inputs(str(src / "202*" / "*.png"), None)) == ["2021/d.png"]
    assert rels(find_inputs(str(src / "2020*"), None)) == ["2020/a.jpg", "2020/x/b.jpg"]


def test_mask_matching_by_stem_any_extension(tmp_path):
    src, masks = tmp_path / "in", tmp_path / "masks"
    touch(src, "a/b.jpg", "c.tif", "d.png")
    touch(masks, "a/b.png", "c.bmp", "b.png", "readme.txt")
    inputs = find_inputs(str(src), None)
    found = match_masks(inputs, masks)
    assert found == {src / "a/b.jpg": masks / "a/b.png", src / "c.tif": masks / "c.bmp",
                     src / "d.png": None}


def test_single_mask_file_for_all(tmp_path):
    touch(tmp_path, "in/a.jpg", "in/b.jpg", "m.png")
    found = match_masks(find_inputs(str(tmp_path / "in"), None), tmp_path / "m.png")
    assert set(found.values()) == {tmp_path / "m.png"}


def test_ambiguous_masks_are_usage_error(tmp_path):
    touch(tmp_path, "in/a.jpg", "masks/a.png", "masks/a.bmp")
    with pytest.raises(UsageError, match="several masks"):
        match_masks(find_inputs(str(tmp_path / "in"), None), tmp_path / "masks")


def test_masks_folder_inside_input_is_not_input(tmp_path):
    src = tmp_path / "in"
    touch(src, "a.jpg", "masks/a.png", "out/z.jpg")
    jobs = plan_jobs(str(src), src / "out", masks=src / "masks")
    expected = Job(src / "a.jpg", Path("a.jpg"), src / "out" / "a.jpg", src / "masks" / "a.png")
    assert jobs == [expected]


def test_forced_output_format_changes_suffix(tmp_path):
    touch(tmp_path, "in/a.png", "in/s/b.jpeg", "in/c.TIF")
    out = tmp_path / "out"
    jobs = plan_jobs(str(tmp_path / "in"), out, output_format="JPG")
    assert [j.output for j in jobs] == [out / "a.jpg", out / "c.jpg", out / "s" / "b.jpeg"]
    with pytest.raises(UsageError, match="unsupported image format"):
        plan_jobs(str(tmp_path / "in"), out, output_format="gif")


def test_output_collisions_are_refused(tmp_path):
    touch(tmp_path, "in/a.png", "in/a.jpg")
    with pytest.raises(UsageError, match="both be written"):
        plan_jobs(str(tmp_path / "in"), tmp_path / "out", output_format="png")
    touch(tmp_path, "x.jpg")
    with pytest.raises(UsageError, match="overwrite input"):
        plan_jobs(str(tmp_path / "x.jpg"), tmp_path)


def _relatives(n: int) -> list[Path]:
    return [Path(f"dir{i % 7}") / f"img{i}.jpg" for i in range(n)]


def test_shards_partition_exactly_and_ignore_order():
    items = [(Path("/in") / r, r) for r in _relatives(200)]
    shuffled = items[:]
    random.Random(0).shuffle(shuffled)
    parts = [select_shard(items, f"{k}/4") for k in range(1, 5)]
    assert sorted(x for p in parts for x in p) == sorted(items)  # each item exactly once
    assert all(parts)
    for k in range(1, 5):
        assert sorted(select_shard(shuffled, f"{k}/4")) == sorted(parts[k - 1])
        assert select_shard(items, f"{k}/4") == parts[k - 1]  # deterministic, order kept


def test_shard_membership_stable_when_files_are_added():
    base = [(Path(r), r) for r in _relatives(50)]
    more = base + [(Path(r), r) for r in _relatives(80)[50:]]
    first = select_shard(base, "2/3")
    assert [x for x in select_shard(more, "2/3") if x in base] == first


def test_shard_works_on_jobs_and_none_means_all(tmp_path):
    touch(tmp_path, *[f"in/{i}.png" for i in range(20)])
    jobs = plan_jobs(str(tmp_path / "in"), tmp_path / "out")
    split = [plan_jobs(str(tmp_path / "in"), tmp_path / "out", shard=f"{k}/3") for k in (1, 2, 3)]
    assert sorted(j.source for s in split for j in s) == sorted(j.source for j in jobs)
    assert select_shard(jobs, None) == jobs


@pytest.mark.parametrize("bad", ["0/3", "4/3", "1/0", "1-3", "a/b", "", "1/3/5"])
def test_bad_shard_syntax(bad):
    with pytest.raises(UsageError, match="K/N"):
        select_shard([1, 2, 3], bad)


def test_relative_glob_and_out_inside_glob_root(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    touch(tmp_path, "in/a.jpg", "in/out/a.jpg", "top.jpg")
    assert find_inputs("in/**/*.jpg", Path("in/out")) == [(Path("in/a.jpg"), Path("a.jpg"))]
    assert find_inputs("*.jpg", None) == [(Path("top.jpg"), Path("top.jpg"))]
