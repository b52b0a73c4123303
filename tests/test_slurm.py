"""The whole workflow on a real (one-node, localhost) SLURM cluster, through profiles/slurm.

The module starts its own cluster (tests/slurm_cluster.py: munged, slurmctld and slurmd
by hand, proctrack/linuxproc, task/none, select/cons_tres, no systemd, no slurmdbd) in a
temporary directory, and stops its daemons by pid and removes that directory at the end.
On it, `snakemake --workflow-profile` with a copy of profiles/slurm filled in for this
cluster runs the workflow on a small synthetic set (16 images at 32x32, two archs, one
epoch, the one variant `reference`), while a copy of that workspace runs locally
(`snakemake --cores 2`) beside it. Then:

- every job except the local rules `check_params` and `fetch` (they run on the login node by design) was
  one SLURM job: one submission per rule instance in the plugin's output, with its
  SLURM log, and the same job ids in SLURM's own records (`squeue --states=all`,
  whose comment names the rule instance, and jobcomp/filetxt), all COMPLETED;
- the outputs equal the local run's: the split byte for byte, the metrics exactly
  (CPU training is bit-identical for identical settings, tests/test_train.py), only
  the wall times differ;
- the train rule's `gpu=1` renders as `--gpus=1` in its sbatch call (the CPU run
  overrides it with `gpu: 0`; the check submits with the profile's gpu=1 and shows the
  call, which this GPU-less cluster then rejects).

When it runs: where the SLURM and munge programs are installed and the test runs as
root. Otherwise it skips and says why (plain `pytest` on a laptop). `.ci/run` installs
`slurm-wlm` and `munge` with apt and, when the programs are there, sets
UNETPP_REQUIRE_SLURM=1: then a missing program or a cluster that does not come up fails
the test instead of skipping it, so CI cannot pass without having run it.

Cost: about 220 CPU-seconds in all (every process of the module, SLURM jobs included),
mostly start-up: each SLURM job starts snakemake twice (the job, then the rule under
srun) before the rule's own command. Its wall time is set by the chain of eight SLURM
jobs one after another (ingest ... aggregate, compare_variants) and the plugin's status polling.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from slurm_cluster import ClusterError, LocalSlurmCluster, unavailable_reason
from workflow_helpers import (
    REPO,
    SNAKEMAKE,
    Job,
    missing_stage_commands,
    read_params,
    snakemake_plan,
    synth,
    tiny_workspace,
    tool_env,
)

pytestmark = [pytest.mark.slurm, pytest.mark.slow]

REQUIRED = os.environ.get("UNETPP_REQUIRE_SLURM", "") not in ("", "0")
ARCHS = ["unet", "nested_unet_ds"]
# The variant that runs (run_variants in params.yaml: the reference alone).
VARIANT = "reference"
# The plugin's status polling: N s between checks, 10 s more after each check where no job ended, back to N
# when one ends; a job is seen to end 6, 22 or 48 s after the previous one. A job here takes about 10-20 s
# on an idle 2-core machine (two snakemake start-ups and the command); the default N, 40 s, adds minutes.
STATUS_CHECK_SECONDS = 6
# Limit for one snakemake run: the whole module takes minutes; a run that hangs must not eat CI's 90.
TIMEOUT = 1800
# Rules declared `localrule: True`: they run where snakemake runs, not as SLURM jobs.
LOCAL_RULES = {"check_params", "fetch"}
# The plugin's line for each submission.
SUBMITTED = re.compile(r"Job (?P<job>\d+) has been submitted with SLURM jobid (?P<slurm_id>\d+) "
                       r"\(log: (?P<log>\S+)\)\.")


def skip_or_fail(reason: str) -> None:
    if REQUIRED:
        pytest.fail(f"UNETPP_REQUIRE_SLURM is set but {reason}", pytrace=False)
    pytest.skip(reason)


@pytest.fixture(scope="module")
def cluster() -> Iterator[LocalSlurmCluster]:
    reason = unavailable_reason()
    if reason:
        skip_or_fail(reason)
    missing = missing_stage_commands()
    if missing:
        pytest.skip(f"stage command(s) not written yet: {', '.join(missing)}")
    local = LocalSlurmCluster()
    try:
        local.start()
    except (ClusterError, OSError, subprocess.SubprocessError) as error:
        skip_or_fail(f"the local SLURM cluster did not start: {error}")
    try:
        with pytest.MonkeyPatch.context() as patch:
            # Every snakemake/sbatch/squeue below finds this cluster; jobs inherit it (--export=ALL).
            patch.setenv("SLURM_CONF", str(local.conf))
            patch.setenv("PATH", local.env()["PATH"])
            for name in [k for k in os.environ if k.startswith(("SLURM_", "SBATCH_", "SRUN_")) and k != "SLURM_CONF"]:
                patch.delenv(name)
            # Separate checkpoints per workspace (.checkpoints/ in each): no run resumes another's.
            patch.delenv("UNETPP_CHECKPOINT_DIR", raising=False)
            yield local
    finally:
        local.stop()
    assert not local.root.exists()


def slurm_profile(dest: Path, gpu: bool) -> Path:
    """profiles/slurm/config.yaml filled in for the local cluster, in `dest` (a workflow profile folder).

    Account: any name (without accounting nothing checks it). Partitions: the cluster's
    `cpu` and `gpu`. Runtime and memory: small enough for one node with two trainings at
    once. With gpu=False the train rule's gpu=1 is overridden (the node has no GPU).
    """
    profile = yaml.safe_load((REPO / "profiles/slurm/config.yaml").read_text())
    assert profile["executor"] == "slurm"
    defaults, train = profile["default-resources"], profile["set-resources"]["train"]
    assert defaults["slurm_account"].startswith("CHANGE_ME") and train["slurm_partition"].startswith("CHANGE_ME")
    defaults.update(slurm_account="unetpp_ci", slurm_partition="cpu", runtime=30, mem_mb=1000)
    train.update(slurm_partition="gpu", runtime=30, mem_mb=2000)
    if not gpu:
        train["gpu"] = 0
    text = yaml.safe_dump(profile, sort_keys=False)
    assert "CHANGE_ME" not in text, text
    dest.mkdir(parents=True)
    (dest / "config.yaml").write_text(text)
    return dest


def slurm_options() -> list[str]:
    """What a cluster without accounting needs on the command line (README, "On a SLURM cluster")."""
    return [
        # sacct (the plugin's default when installed) fails without slurmdbd, and the plugin would wait
        # forever; squeue shows finished jobs for MinJobAge (>= 3 x the first status check, or it uses sacct).
        "--slurm-status-command", "squeue",
        "--slurm-init-seconds-before-status-checks", str(STATUS_CHECK_SECONDS),
        "--seconds-between-status-checks", str(STATUS_CHECK_SECONDS),
        # The plugin deletes a successful job's SLURM log; keep them as evidence.
        "--slurm-keep-successful-logs",
        "--verbose",
    ]


def snakemake(args: list[str | Path], cwd: Path) -> subprocess.CompletedProcess[str]:
    """Run snakemake in `cwd`, stopped after TIMEOUT seconds (a run that never sees its jobs end waits forever)."""
    command = [str(SNAKEMAKE), *map(str, args)]
    try:
        return subprocess.run(command, cwd=cwd, env=tool_env(), capture_output=True, text=True, timeout=TIMEOUT)
    except subprocess.TimeoutExpired as error:
        output = "".join(part.decode(errors="replace") if isinstance(part, bytes) else part or ""
                         for part in (error.stdout, error.stderr))
        pytest.fail(f"{' '.join(command)} still running after {TIMEOUT} s in {cwd}:\n{output}", pytrace=False)


def workspace(dest: Path, raw_zip: Path) -> Path:
    """A copy of the workflow with the tiny settings of the workflow tests, two archs, the same data."""
    # layout nchw: no timing of both layouts (auto), the same kernels in both runs.
    project = tiny_workspace(dest, {"train": {"layout": "nchw"}, "runs": {"arch": ARCHS, "seed": [0]}})
    # Without .dvc/ the onsuccess hook records nothing: DVC is not what this test is about.
    shutil.rmtree(project / ".dvc")
    assert [variant["name"] for variant in read_params(project)["run_variants"]] == [VARIANT]
    shutil.copy2(raw_zip, project / read_params(project)["data"]["raw"])
    return project


def declared_local_rules(project: Path) -> set[str]:
    """The rules that declare `localrule: True` (they run in snakemake's own process, not as SLURM jobs)."""
    local = set()
    for path in (project / "workflow/rules").glob("*.smk"):
        for name, body in re.findall(r"^rule (\w+):\n((?:[ \t]+.*\n|\n)*)", path.read_text(), flags=re.MULTILINE):
            if re.search(r"^\s+localrule:\s*True\s*$", body, flags=re.MULTILINE):
                local.add(name)
    return local


@dataclass
class Runs:
    local: Path
    slurm: Path
    slurm_output: str
    plan: list[Job]
    local_rules: set[str]
    seconds: float


@pytest.fixture(scope="module")
def runs(cluster: LocalSlurmCluster, tmp_path_factory: pytest.TempPathFactory) -> Runs:
    base = tmp_path_factory.mktemp("slurm-workflow")
    raw_zip = base / "synthetic.zip"
    synth(base, raw_zip, 16, 0, "48x48", "48x64")
    local, slurm = workspace(base / "local", raw_zip), workspace(base / "slurm", raw_zip)
    profile = slurm_profile(base / "profile-cpu", gpu=False)
    plan, _ = snakemake_plan(slurm, "--workflow-profile", str(profile))
    local_rules = declared_local_rules(slurm)
    assert local_rules == LOCAL_RULES

    start = time.monotonic()
    # The local run uses the CPUs while the SLURM run mostly waits for job start-up and status checks.
    with (base / "local.out").open("w") as local_out:
        local_run = subprocess.Popen([str(SNAKEMAKE), "--cores", "2"], cwd=local, env=tool_env(),
                                     stdout=local_out, stderr=subprocess.STDOUT, text=True)
        try:
            result = snakemake(["--workflow-profile", profile, *slurm_options()], cwd=slurm)
            local_code = local_run.wait(timeout=TIMEOUT)
        finally:
            if local_run.poll() is None:
                local_run.kill()
                local_run.wait()
    seconds = time.monotonic() - start
    output = result.stdout + result.stderr
    assert result.returncode == 0, f"the SLURM run failed:\n{output}\n{cluster.logs()}"
    assert local_code == 0, f"the local run failed:\n{(base / 'local.out').read_text()}"
    return Runs(local, slurm, output, plan, local_rules, seconds)


def instance_comment(job: Job) -> str:
    """The sbatch --comment the plugin gives a job: `rule_train_wildcards_unet_0`, `rule_split`."""
    wildcards = "_".join(job.wildcards.values())
    return f"rule_{job.name}_wildcards_{wildcards}" if wildcards else f"rule_{job.name}"


def test_every_job_ran_as_one_slurm_job(runs: Runs, cluster: LocalSlurmCluster) -> None:
    remote = [job for job in runs.plan if job.name not in runs.local_rules]
    rules = {"ingest", "preprocess", "split", "train", "predict", "evaluate", "aggregate", "compare_variants"}
    assert {job.name for job in remote} == rules
    # One each of ingest, preprocess (the one size), split, aggregate (the one variant), compare_variants;
    # train, predict and evaluate per arch.
    assert len(remote) == 5 + 3 * len(ARCHS), [(job.name, job.wildcards) for job in remote]

    # The plugin's output: one submission per rule instance, each with a SLURM job id and log.
    submissions = [match.groupdict() for match in SUBMITTED.finditer(runs.slurm_output)]
    assert len(submissions) == len(remote), runs.slurm_output
    ids = [entry["slurm_id"] for entry in submissions]
    assert len(set(ids)) == len(ids)
    expected_logs = {(f"rule_{job.name}", "_".join(job.wildcards.values())) for job in remote}
    found = set()
    for entry in submissions:
        log = Path(entry["log"])
        assert log.name == f"{entry['slurm_id']}.log" and log.is_file(), entry  # kept: --slurm-keep-successful-logs
        assert log.is_relative_to(runs.slurm / ".snakemake/slurm_logs"), entry
        relative = log.relative_to(runs.slurm / ".snakemake/slurm_logs").parts
        found.add((relative[0], relative[1] if len(relative) == 3 else ""))
        # Inside the job, the jobstep executor ran the rule (its header and shell command are in the log).
        rule = relative[0].removeprefix("rule_")
        assert re.search(rf"^(local)?rule {rule}:$", log.read_text(), flags=re.MULTILINE), log.read_text()
    assert found == expected_logs, (found, expected_logs)
    # No rule ran in the main process except the local ones, which did.
    assert all(f"localrule {rule}:" in runs.slurm_output for rule in runs.local_rules), runs.slurm_output

    # SLURM's side: the jobs named with this run's id, one per rule instance (the plugin's --comment), completed.
    run_id = re.search(r"SLURM run ID: (\S+)", runs.slurm_output).group(1)
    history = cluster.queue_history(run_id)
    assert sorted(history) == sorted(ids), (history, ids)
    assert sorted(entry["comment"] for entry in history.values()) == sorted(instance_comment(job) for job in remote)
    assert {entry["state"] for entry in history.values()} == {"COMPLETED"}
    # The profile's partitions: train in `gpu` (set-resources), everything else in `cpu` (default-resources).
    for entry in history.values():
        assert entry["partition"] == ("gpu" if entry["comment"].startswith("rule_train_") else "cpu"), entry
    completed = cluster.completed_jobs()
    for slurm_id in ids:
        record = completed[slurm_id]
        assert (record["Name"], record["JobState"], record["ExitCode"]) == (run_id, "COMPLETED", "0:0"), record
        assert Path(record["WorkDir"]) == runs.slurm and record["NodeList"] == cluster.node, record
    # The CPU run asked for no GPU: the override `gpu: 0` left --gpus out of the train jobs' sbatch calls.
    calls = [line for line in runs.slurm_output.splitlines() if "sbatch call: " in line]
    assert len(calls) == len(remote)
    assert not [call for call in calls if "--gpus" in call]
    print(f"\nSLURM run {run_id}: {len(ids)} jobs {', '.join(ids)} in {runs.seconds:.0f} s (local run beside it)")


def without_timing(value: Any) -> Any:
    """A metrics document without the wall times (the only thing that differs between two identical runs)."""
    if isinstance(value, dict):
        return {key: without_timing(item) for key, item in value.items() if key not in ("train_seconds", "train_seconds_median_epoch")}
    return value


def history_without_seconds(path: Path) -> list[list[str]]:
    rows = [line.split(",") for line in path.read_text().splitlines()]
    column = rows[0].index("seconds")
    return [row[:column] + row[column + 1 :] for row in rows]


def test_outputs_equal_a_local_run(runs: Runs) -> None:
    local, slurm = runs.local, runs.slurm
    split = "data/processed/split.json"
    assert (slurm / split).read_bytes() == (local / split).read_bytes()
    assert json.loads((slurm / split).read_text())["val"]
    for arch in ARCHS:
        run_dir = f"results/{VARIANT}/runs/{arch}/seed0"
        assert json.loads((slurm / run_dir / "metrics.json").read_text()) == json.loads(
            (local / run_dir / "metrics.json").read_text()
        ), arch
        assert (slurm / run_dir / "per_image.csv").read_bytes() == (local / run_dir / "per_image.csv").read_bytes()
        history = f"models/{VARIANT}/{arch}/seed0/history.csv"
        assert history_without_seconds(slurm / history) == history_without_seconds(local / history), arch
    aggregate = f"results/variants/{VARIANT}/metrics.json"
    ours, theirs = (json.loads((root / aggregate).read_text()) for root in (slurm, local))
    assert without_timing(ours) == without_timing(theirs)
    assert set(ours) >= set(ARCHS)


def test_the_train_rules_gpu_renders_as_gpus_1(runs: Runs, cluster: LocalSlurmCluster, tmp_path: Path) -> None:
    """With the profile's own gpu=1 the train job's sbatch call asks for --gpus=1 (this cluster has none: rejected)."""
    project = tmp_path / "project"
    shutil.copytree(runs.slurm, project, symlinks=True)
    profile = slurm_profile(tmp_path / "profile-gpu", gpu=True)
    model = f"models/{VARIANT}/unet/seed0/model.pt"
    result = snakemake(["--workflow-profile", profile, *slurm_options(), "--force", model], cwd=project)
    output = result.stdout + result.stderr
    calls = [line.split("sbatch call: ", 1)[1] for line in output.splitlines() if "sbatch call: " in line]
    assert len(calls) == 1, output
    call = calls[0]
    comment = f"--comment rule_train_wildcards_{VARIANT}_unet_0"
    assert " --gpus=1" in call and " -p gpu" in call and comment in call, call
    assert " --cpus-per-task=1" in call and " -t 30" in call and " --mem 2000" in call, call
    # The cluster took it as a GPU request and refused it: no node here has a GPU.
    assert result.returncode != 0
    assert "Invalid generic resource (gres) specification" in output, output
    print(f"\ntrain's sbatch call: {call[:call.index(' --wrap=')]}")
