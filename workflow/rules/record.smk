"""Keep dvc.lock in step with what Snakemake just built (one record, two tools).

Snakemake remembers its runs in .snakemake/, DVC in dvc.lock. After a
successful run every job of the DAG is up to date, so the matching DVC stages
(`rule`, or `rule@arch-seed` for the per-run ones) are committed with
`dvc commit -f`; `dvc status` is then clean and `dvc metrics diff` compares
branches. Never run snakemake and dvc at the same time: they share no lock.
"""

import shutil
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path


def dvc_stage_name(job) -> str:
    """The dvc.yaml stage of a Snakemake job: `train@unet-0` for the (arch, seed) matrix stages."""
    keys = [job.wildcards.get(name) for name in ("arch", "seed")]
    item = "-".join(str(key) for key in keys if key is not None)
    return f"{job.rule.name}@{item}" if item else job.rule.name


def find_dvc() -> str | None:
    """dvc from PATH, else the one installed beside the Python running Snakemake."""
    beside = Path(sys.executable).parent / "dvc"
    return shutil.which("dvc") or (str(beside) if beside.exists() else None)


def record_in_dvc(workflow, logfile: str) -> None:
    """Run `dvc commit -f` on the stages of this run's DAG; append what happened to `logfile`."""
    log = Path(logfile)
    log.parent.mkdir(parents=True, exist_ok=True)

    def note(message: str) -> None:
        stamp = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
        with log.open("a") as handle:
            handle.write(f"{stamp} {message}\n")
        print(f"dvc record: {message}", file=sys.stderr)

    if not Path(".dvc").is_dir():
        note("no .dvc/ here; dvc.lock not updated")
        return
    settings = workflow.dag_settings
    if settings.until or settings.omit_from:
        note(
            "--until/--omit-from leave jobs unchecked; dvc.lock not updated "
            "(run `dvc commit -f STAGE` for the stages you know are current)"
        )
        return
    stages = sorted(
        {dvc_stage_name(job) for job in workflow.dag.jobs if job.rule.name != "all"}
    )
    if not stages:
        note("no jobs in this run; dvc.lock not updated")
        return
    dvc = find_dvc()
    if dvc is None:
        note("dvc not found on PATH; dvc.lock not updated")
        return
    result = subprocess.run(
        [dvc, "commit", "--force", "--quiet", *stages],
        capture_output=True,
        text=True,
    )
    if result.returncode == 0:
        note(f"dvc commit -f {' '.join(stages)}: done")
    else:
        note(
            f"dvc commit -f {' '.join(stages)} failed (exit {result.returncode}): "
            f"{result.stderr.strip() or result.stdout.strip()}; dvc.lock is stale, "
            "fix the cause and run `dvc commit -f`"
        )
