"""--shard auto: the slice comes from a SLURM job array or a Kubernetes Indexed Job, and the
cluster examples in examples/cluster/ split a folder with each file done exactly once."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
from click.testing import CliRunner
from conftest import EXAMPLES

from restore.cli import main
from restore.io.discover import UsageError, select_shard
from restore.io.shards import ShardError, parse_shard

CLUSTER = EXAMPLES / "cluster"
JOB_VARIABLES = ("SLURM_ARRAY_TASK_ID", "SLURM_ARRAY_TASK_COUNT", "SLURM_ARRAY_TASK_MIN",
                 "SLURM_ARRAY_TASK_STEP", "JOB_COMPLETION_INDEX", "RESTORE_SHARDS")


@pytest.fixture(autouse=True)
def no_job_array(monkeypatch):
    for name in JOB_VARIABLES:
        monkeypatch.delenv(name, raising=False)


def slurm(task: int, count: int, low: int = 1, step: int = 1) -> dict[str, str]:
    return {"SLURM_ARRAY_TASK_ID": str(task), "SLURM_ARRAY_TASK_COUNT": str(count),
            "SLURM_ARRAY_TASK_MIN": str(low), "SLURM_ARRAY_TASK_STEP": str(step)}


def test_slurm_array_tasks_number_the_slices_from_one_whatever_the_array_range():
    assert [parse_shard("auto", slurm(t, 4)) for t in (1, 2, 3, 4)] == [(k, 4) for k in (1, 2, 3, 4)]
    assert [parse_shard("auto", slurm(t, 3, low=0)) for t in (0, 1, 2)] == [(1, 3), (2, 3), (3, 3)]
    # sbatch --array=10-16:3 runs tasks 10, 13 and 16
    stepped = [parse_shard("auto", slurm(t, 3, low=10, step=3)) for t in (10, 13, 16)]
    assert stepped == [(1, 3), (2, 3), (3, 3)]


def test_kubernetes_index_needs_the_count_from_the_flag_or_the_environment():
    env = {"JOB_COMPLETION_INDEX": "2"}
    assert parse_shard("auto/5", env) == (3, 5)
    assert parse_shard("auto", {**env, "RESTORE_SHARDS": "4"}) == (3, 4)
    with pytest.raises(ShardError, match="auto/N"):
        parse_shard("auto", env)
    with pytest.raises(ShardError, match="no slice 6 of 5"):
        parse_shard("auto/5", {"JOB_COMPLETION_INDEX": "5"})


@pytest.mark.parametrize("env", [{}, {"SLURM_ARRAY_TASK_ID": "x", "SLURM_ARRAY_TASK_COUNT": "2"},
                                 {"SLURM_ARRAY_TASK_ID": "3", "SLURM_ARRAY_TASK_COUNT": "2"}])
def test_auto_without_a_usable_job_array_says_what_it_looked_for(env):
    with pytest.raises(ShardError) as info:
        parse_shard("auto", env)
    if not env:
        assert "SLURM_ARRAY_TASK_ID" in str(info.value) and "JOB_COMPLETION_INDEX" in str(info.value)


def test_auto_slices_partition_the_inputs_like_explicit_ones(monkeypatch):
    items = [f"dir{i % 7}/photo{i}.jpg" for i in range(200)]
    for task in (1, 2, 3):
        for name, value in slurm(task, 3).items():
            monkeypatch.setenv(name, value)
        assert select_shard(items, "auto") == select_shard(items, f"{task}/3")


def test_cli_auto_outside_a_job_array_is_a_usage_error(tmp_path):
    result = CliRunner().invoke(main, ["detect", str(EXAMPLES / "originals"), str(tmp_path / "out"),
                                       "--shard", "auto", "-q"])
    assert result.exit_code == 2 and "job array" in result.output
    assert not (tmp_path / "out").exists()
    with pytest.raises(UsageError):
        select_shard([1], "auto")


def _archive(root: Path, count: int = 5) -> list[str]:
    rng = np.random.default_rng(0)
    names = []
    for i in range(count):
        name = f"box{i % 2}/scan{i}.png"
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(root / name), rng.integers(0, 255, (40, 56, 3), dtype=np.uint8))
        names.append(name)
    return names


def _env(extra: dict[str, str]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in JOB_VARIABLES}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"  # this install's restore
    return {**env, **extra}


def _reports(folder: Path) -> list[dict]:
    return [json.loads(line) for path in sorted(folder.glob("shard-*.jsonl")) for line in path.open()]


def test_the_sbatch_example_splits_a_folder_with_each_file_done_once(tmp_path):
    names = _archive(tmp_path / "scans")
    out = tmp_path / "repaired"
    for task in (1, 2):
        subprocess.run(["bash", str(CLUSTER / "restore-array.sbatch"), str(tmp_path / "scans"), str(out)],
                       env=_env(slurm(task, 2)), check=True, timeout=300)
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*.png")) == sorted(names)
    done = _reports(Path(f"{out}.reports"))  # the README's merge: the shards' lines, concatenated
    assert sorted(Path(r["path"]).relative_to(tmp_path / "scans").as_posix() for r in done) == sorted(names)
    assert {r["status"] for r in done} == {"ok"}


def test_the_indexed_job_example_runs_one_slice_of_as_many_as_it_has_completions(tmp_path):
    manifest = (CLUSTER / "restore-indexed-job.yaml").read_text()
    completions = int(re.search(r"^\s*completions:\s*(\d+)", manifest, re.M).group(1))
    assert "completionMode: Indexed" in manifest
    command = re.search(r"^\s*- (restore images .*)$", manifest, re.M).group(1)
    assert f"--shard auto/{completions}" in command
    names = _archive(tmp_path / "scans", count=12)
    for index in range(completions):  # every pod's slice is planned; none is empty and none overlap
        env = {"JOB_COMPLETION_INDEX": str(index)}
        assert parse_shard(f"auto/{completions}", env) == (index + 1, completions)
    index = next(i for i in range(completions) if select_shard(names, f"{i + 1}/{completions}"))
    subprocess.run(["sh", "-c", command.replace("/data/", f"{tmp_path}/")],
                   env=_env({"JOB_COMPLETION_INDEX": str(index)}), check=True, timeout=300)
    out = tmp_path / "repaired"
    written = sorted(p.relative_to(out).as_posix() for p in out.rglob("*.png"))
    assert written == select_shard(sorted(names), f"{index + 1}/{completions}")
    assert len(_reports(tmp_path / "repaired.reports")) == len(written)
