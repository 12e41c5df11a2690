"""Multi-process training: a real 2-rank torchrun job on CPU (gloo), resumed by a single process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import torch
from click.testing import CliRunner
from conftest import EXAMPLES

from restore.cli import main
from restore.model.generator import GeneratorConfig
from restore.model.weights import load_generator
from restore.train import distributed
from restore.train.data import load_photos, sample_batch, step_rng

ROOT = Path(__file__).resolve().parents[1]
TORCHRUN_VARS = ("RANK", "LOCAL_RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT")


def test_each_rank_and_step_draws_its_own_batch_the_same_every_time():
    photos = load_photos(EXAMPLES / "originals")
    draw = lambda rank, step: sample_batch(photos, 2, 64, step_rng(7, rank, step))[0]  # noqa: E731
    assert np.array_equal(draw(1, 5), draw(1, 5))
    assert not np.array_equal(draw(0, 5), draw(1, 5))
    assert not np.array_equal(draw(0, 5), draw(0, 6))


def test_plain_run_has_no_process_group(monkeypatch):
    for var in TORCHRUN_VARS:
        monkeypatch.delenv(var, raising=False)
    assert distributed.launch_env() == distributed.LaunchEnv()
    assert distributed.local_device(torch.device("cuda")) == torch.device("cuda")  # unchanged
    assert distributed.init(torch.device("cpu")) is False
    assert distributed.is_main() and distributed.world_size() == 1


def test_torchrun_cuda_means_the_local_rank_gpu(monkeypatch):
    monkeypatch.setenv("WORLD_SIZE", "4")
    monkeypatch.setenv("RANK", "3")
    monkeypatch.setenv("LOCAL_RANK", "1")
    assert distributed.launch_env() == distributed.LaunchEnv(rank=3, local_rank=1, world_size=4)
    assert distributed.local_device(torch.device("cuda")) == torch.device("cuda", 1)
    assert distributed.local_device(torch.device("cuda:0")) == torch.device("cuda", 0)  # explicit wins
    assert distributed.local_device(torch.device("cpu")) == torch.device("cpu")


def _no_module_prefix(state: dict) -> bool:
    return not any(k.startswith("module.") for k in state)


def test_two_process_run_checkpoints_like_one_and_resumes_on_one(tmp_path, monkeypatch):
    out, work = tmp_path / "model.pt", tmp_path / "work"
    args = ["train", str(EXAMPLES / "originals"), "--out", str(out), "--work-dir", str(work),
            "--batch-size", "1", "--crop", "64", "--device", "cpu", "--base-channels", "8",
            "--blocks", "1", "--log-every", "1", "--sample-every", "2", "--checkpoint-minutes", "0",
            "--quiet"]
    env = {k: v for k, v in os.environ.items() if k not in TORCHRUN_VARS}
    env["OMP_NUM_THREADS"] = "1"
    run = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
                          "-m", "restore", *args, "--steps", "3", "--d-warmup", "1"],
                         cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]

    state = torch.load(work / "checkpoint.pt", weights_only=True)
    assert state["step"] == 3
    assert GeneratorConfig(**state["config"]) == GeneratorConfig(base_channels=8, blocks=1)
    for key in ("generator", "generator_ema", "discriminator"):
        assert _no_module_prefix(state[key]), key
    assert _no_module_prefix(torch.load(out, weights_only=True)["state_dict"])
    model = load_generator(out)
    assert torch.isfinite(model(torch.zeros(1, 3, 64, 64), torch.ones(1, 1, 64, 64))).all()
    assert (work / "samples" / "step0000002.png").exists()

    for var in TORCHRUN_VARS:
        monkeypatch.delenv(var, raising=False)
    result = CliRunner().invoke(main, [*args, "--steps", "5", "--resume"])
    assert result.exit_code == 0, result.output
    assert torch.load(work / "checkpoint.pt", weights_only=True)["step"] == 5
    lines = [json.loads(x) for x in (work / "metrics.jsonl").read_text().splitlines()]
    assert [x["step"] for x in lines] == [1, 2, 3, 4, 5]  # rank 0 alone logged, then the resume
    # The first step was the discriminator's alone (its generator pass without grad, under DDP):
    # no reconstruction loss; then the generator trained on both ranks.
    assert lines[0]["rec"] == 0 and all(x["rec"] > 0 for x in lines[1:])
