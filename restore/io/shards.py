"""``--shard K/N`` and ``--shard auto``: which slice of a batch this process takes.

``auto`` reads the slice from the job array that started the process, so a cluster splits an
archive with no coordination beyond the array itself: a SLURM job array (``sbatch --array``) or a
Kubernetes Indexed Job (whose completion count is not in the pod's environment, so N comes from
``--shard auto/N`` or ``RESTORE_SHARDS``).
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping

_K_OF_N = re.compile(r"^\s*(\d+)\s*/\s*(\d+)\s*$")
_AUTO = re.compile(r"^\s*auto\s*(?:/\s*(\d+)\s*)?$")
COUNT_VARIABLE = "RESTORE_SHARDS"


class ShardError(ValueError):
    """A --shard value (or the job array behind ``auto``) that names no valid slice."""


def parse_shard(shard: str, env: Mapping[str, str] | None = None) -> tuple[int, int]:
    """"K/N", "auto" or "auto/N" -> (K, N) with 1 <= K <= N; ShardError otherwise."""
    auto = _AUTO.match(shard)
    if auto:
        k, n = _from_job_array(auto.group(1), os.environ if env is None else env)
    else:
        match = _K_OF_N.match(shard)
        if not match:
            raise ShardError(f"--shard must be K/N (e.g. 2/8), auto or auto/N, got {shard!r}")
        k, n = int(match.group(1)), int(match.group(2))
    if not 1 <= k <= n:
        raise ShardError(f"--shard {shard}: there is no slice {k} of {n} (K/N needs 1 <= K <= N)")
    return k, n


def _from_job_array(count: str | None, env: Mapping[str, str]) -> tuple[int, int]:
    """(K, N) from SLURM's or Kubernetes' variables; N given after ``auto/`` wins over the environment's."""
    try:
        if "SLURM_ARRAY_TASK_ID" in env:
            # Task ids run MIN, MIN+STEP, ... (sbatch --array=MIN-MAX:STEP); K counts them from 1.
            task = int(env["SLURM_ARRAY_TASK_ID"])
            low = int(env.get("SLURM_ARRAY_TASK_MIN", "0"))
            step = int(env.get("SLURM_ARRAY_TASK_STEP", "1") or 1)
            total = count or env.get("SLURM_ARRAY_TASK_COUNT")
            if total is None:
                raise ShardError("--shard auto: SLURM_ARRAY_TASK_COUNT is not set; give --shard auto/N")
            if (task - low) % step:
                raise ShardError(f"--shard auto: SLURM array task {task} is not MIN + a multiple of STEP")
            return (task - low) // step + 1, int(total)
        if "JOB_COMPLETION_INDEX" in env:
            total = count or env.get(COUNT_VARIABLE)
            if total is None:
                raise ShardError("--shard auto in a Kubernetes Indexed Job needs N: --shard auto/N (the "
                                 f"Job's completions) or the {COUNT_VARIABLE} environment variable")
            return int(env["JOB_COMPLETION_INDEX"]) + 1, int(total)
    except ValueError as exc:
        if isinstance(exc, ShardError):
            raise
        raise ShardError(f"--shard auto: a job-array variable is not a number ({exc})") from None
    raise ShardError("--shard auto found no job array: run it as a SLURM array task (sbatch --array; "
                     "SLURM_ARRAY_TASK_ID and SLURM_ARRAY_TASK_COUNT) or in a Kubernetes Indexed Job "
                     f"(JOB_COMPLETION_INDEX, with N from --shard auto/N or {COUNT_VARIABLE}); "
                     "elsewhere give --shard K/N")
