"""Shared by the workflow tests: copy the workflow files, ask both tools for their plan.

Snakemake's plan comes from `snakemake --dry-run --printshellcmds` (its rendered
jobs); DVC's from `dvc.repo.Repo(...).index.stages` (dvc.yaml rendered by DVC's
own parser from params.yaml). The executables are taken from the directory of
the running Python, never from PATH.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
SNAKEMAKE = BIN / "snakemake"
DVC = BIN / "dvc"
GIT = shutil.which("git")
STAGE_COMMANDS = ("synth", "check_params", "fetch", "ingest", "preprocess", "split", "train", "predict", "evaluate", "aggregate",
                  "compare_variants")
# The settings every workflow test runs with: a whole pipeline in about a minute of CPU.
TINY: dict[str, dict[str, Any]] = {
    "preprocess": {"workers": 1},
    # Synthetic data: not the release of data.content_sha256.
    "data": {"workers": 1, "content_sha256": "any"},
    "split": {"val_fraction": 0.25},
    "train": {"epochs": 1, "patience": 1, "threads": 1, "device": "cpu", "precision": "fp32"},
    "predict": {"batch_size": 4, "device": "cpu", "precision": "fp32"},
    "evaluate": {"batch_size": 4},
}
# What a test project's .gitignore must hold for this layout (DVC adds its cached outputs itself).
GITIGNORE = ".snakemake/\n/logs/\n/data/raw/\n/.checkpoints/\n"
# What a copy of the project needs to run or plan the workflow.
WORKFLOW_FILES = (
    "Snakefile",
    "workflow",
    "dvc.yaml",
    "params.yaml",
    "profiles",
    "environment.yml",
    ".dvcignore",
    ".dvc/config",
    ".dvc/.gitignore",
    # Every stage depends on its modules under src/unetpp (CODE in workflow/rules/common.smk).
    "src",
)
# `... > LOG 2>&1` at the end of every Snakemake shell command; DVC prints to the terminal instead.
LOG_REDIRECT = re.compile(r"\s*>\s*(?P<log>\S+)\s+2>&1\s*$")


def tool_env() -> dict[str, str]:
    """The environment for snakemake/dvc/unetpp subprocesses: this venv's bin first."""
    env = dict(os.environ)
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    env["DVC_NO_ANALYTICS"] = "1"
    return env


def run(args: list[str | os.PathLike[str]], cwd: Path, check: bool = True) -> subprocess.CompletedProcess[str]:
    """Run a tool in `cwd`; on failure show its whole output in the assertion message."""
    result = subprocess.run([str(a) for a in args], cwd=cwd, env=tool_env(), capture_output=True, text=True)
    if check and result.returncode != 0:
        raise AssertionError(
            f"{' '.join(map(str, args))} exited {result.returncode} in {cwd}\n"
            f"--- stdout\n{result.stdout}\n--- stderr\n{result.stderr}"
        )
    return result


def missing_stage_commands() -> list[str]:
    """Stage commands without a module yet (the workflow tests skip until every stage exists)."""
    return [name for name in STAGE_COMMANDS if importlib.util.find_spec(f"unetpp.commands.{name}") is None]


def read_params(project: Path) -> dict[str, Any]:
    return yaml.safe_load((project / "params.yaml").read_text())


def write_params(project: Path, params: dict[str, Any]) -> None:
    (project / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))


def git(project: Path, *args: str) -> str:
    """git in `project` with a fixed identity (commits need one; CI machines have none)."""
    assert GIT is not None
    identity = ["-c", "user.name=workflow test", "-c", "user.email=workflow-test@example.invalid"]
    return run([GIT, *identity, *args], cwd=project).stdout


def dvc_changed(project: Path) -> set[str]:
    """The stages `dvc status` reports as changed."""
    return set(json.loads(run([DVC, "status", "--json"], cwd=project).stdout or "{}"))


def synth(cwd: Path, out: Path, n: int, seed: int, *sizes: str) -> None:
    """`unetpp synth`: a synthetic set in the Kaggle layout (a zip, or a folder if `out` has no .zip)."""
    run([BIN / "unetpp", "synth", "--n", str(n), "--seed", str(seed), *(f"--size={s}" for s in sizes), "--out", out],
        cwd=cwd)


def tiny_workspace(dest: Path, *overrides: dict[str, dict[str, Any]]) -> Path:
    """A copy of the workflow in `dest` with TINY, then each of `overrides`, merged into params.yaml per section.

    The folder for `data.raw` exists; the data itself is the caller's.
    """
    project = copy_workflow(dest)
    params = read_params(project)
    tiny_variants(params)
    for settings in (TINY, *overrides):
        for section, values in settings.items():
            params.setdefault(section, {}).update(values)
    write_params(project, params)
    (project / params["data"]["raw"]).parent.mkdir(parents=True)
    return project


# The tiny sizes of the declared variants: 96 (the reference's) -> 32, anything else -> 48.
TINY_SIZES = {96: 32}


def tiny_variants(params: dict[str, Any]) -> None:
    """Every declared variant at a tiny size with batch 4 (in place: run_variants' aliases follow)."""
    for variant in params["variants"].values():
        variant["size"] = TINY_SIZES.get(variant["size"], 48)
        variant["batch_size"] = 4
    set_run_variants(params, [variant["name"] for variant in params["run_variants"]])


def set_run_variants(params: dict[str, Any], names: Sequence[str]) -> None:
    """Run the declared variants `names` (run_variants aliases them), with preprocess.sizes to match."""
    params["run_variants"] = [params["variants"][name] for name in names]
    params["preprocess"]["sizes"] = list(dict.fromkeys(params["variants"][name]["size"] for name in names))


def copy_workflow(dest: Path) -> Path:
    """Copy the workflow files of the repository into `dest` (created)."""
    dest.mkdir(parents=True, exist_ok=True)
    for name in WORKFLOW_FILES:
        source = REPO / name
        if source.is_dir():
            shutil.copytree(source, dest / name, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
        elif source.exists():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, dest / name)
    return dest


@dataclass
class Job:
    """One rendered job: of a Snakemake dry run, or one DVC stage."""

    name: str
    command: str
    inputs: frozenset[str]
    outputs: frozenset[str]
    param_keys: frozenset[str] = frozenset()
    gpu: int = 0
    log: str | None = None
    benchmark: str | None = None
    threads: int | None = None
    wildcards: dict[str, str] = field(default_factory=dict)


def dvc_stage_name(job: Job, test_sets: Sequence[str] = (), variants: Sequence[str] = ("reference",)) -> str:
    """The DVC stage of a Snakemake job, as the onsuccess hook names it (workflow/rules/record.smk).

    `train@variant0-unet-0`, by the variant's index in `variants` (run_variants' names in
    params.yaml's order); a test set's job `predict_test@set0-variant0-unet-0`, by the set's index
    in `test_sets` (test.sets' names in params.yaml's order); `preprocess@96`.
    """
    keys = [job.wildcards[key] for key in ("size", "arch", "seed") if key in job.wildcards]
    if "variant" in job.wildcards:
        keys.insert(0, f"variant{list(variants).index(job.wildcards['variant'])}")
    if "set" in job.wildcards:
        keys.insert(0, f"set{list(test_sets).index(job.wildcards['set'])}")
    item = "-".join(keys)
    return f"{job.name}@{item}" if item else job.name


def declared_variants(project: Path) -> list[str]:
    """The names of run_variants in project/params.yaml, in order."""
    params = yaml.safe_load((project / "params.yaml").read_text())
    return [variant["name"] for variant in params["run_variants"]]


def declared_test_sets(project: Path) -> list[str]:
    """The names of test.sets in project/params.yaml, in order."""
    import yaml

    params = yaml.safe_load((project / "params.yaml").read_text())
    return [test_set["name"] for test_set in params["test"]["sets"]]


def _split_list(value: str) -> list[str]:
    return [part.strip() for part in value.split(",") if part.strip()]


def parse_dry_run(text: str) -> list[Job]:
    """The jobs of `snakemake -n -p` output (rule `all`, which has no command, left out)."""
    jobs: list[Job] = []
    current: dict[str, str] | None = None

    def finish() -> None:
        if current is None or current["rule"] == "all":
            return
        if "command" not in current:
            raise AssertionError(f"no shell command printed for rule {current['rule']}:\n{text}")
        wildcards = dict(item.split("=", 1) for item in _split_list(current.get("wildcards", "")))
        resources = dict(item.split("=", 1) for item in _split_list(current.get("resources", "")))
        jobs.append(
            Job(
                name=current["rule"],
                command=current["command"],
                inputs=frozenset(_split_list(current.get("input", ""))),
                outputs=frozenset(_split_list(current.get("output", ""))),
                gpu=int(resources.get("gpu", 0)),
                log=current.get("log"),
                benchmark=current.get("benchmark"),
                threads=int(current["threads"]) if "threads" in current else None,
                wildcards=wildcards,
            )
        )

    for line in text.splitlines():
        header = re.match(r"^(?:local)?rule (\w+):$", line)
        if header:
            finish()
            current = {"rule": header.group(1)}
        elif current is not None and line.startswith("Shell command: "):
            current["command"] = line[len("Shell command: ") :]
        elif current is not None and re.match(r"^    \w[\w ]*: ", line):
            key, value = line.strip().split(": ", 1)
            current[key] = value
    finish()
    if not jobs:
        raise AssertionError(f"no jobs found in the dry-run output:\n{text}")
    return jobs


def snakemake_plan(project: Path, *extra: str) -> tuple[list[Job], str]:
    """The jobs Snakemake would run in `project` (and its whole output)."""
    result = run([SNAKEMAKE, "--dry-run", "--printshellcmds", *extra], cwd=project)
    output = result.stdout + result.stderr
    if "Nothing to be done" in output:
        return [], output
    return parse_dry_run(output), output


def dvc_stages(project: Path) -> list[Job]:
    """dvc.yaml's stages as rendered by DVC from params.yaml (project holds a copy of .dvc/)."""
    from dvc.dependency.param import ParamsDependency
    from dvc.repo import Repo

    with Repo(str(project), config={"core": {"no_scm": True}}) as repo:
        stages = []
        for stage in repo.index.stages:
            params = [key for dep in stage.deps if isinstance(dep, ParamsDependency) for key in (dep.params or [])]
            files = [dep.def_path for dep in stage.deps if not isinstance(dep, ParamsDependency)]
            meta = stage.meta or {}
            stages.append(
                Job(
                    name=stage.name,
                    command=stage.cmd if isinstance(stage.cmd, str) else " && ".join(stage.cmd),
                    inputs=frozenset(files),
                    outputs=frozenset(out.def_path for out in stage.outs),
                    param_keys=frozenset(params),
                    gpu=int(meta.get("resources", {}).get("gpu", 0)),
                )
            )
        return expand_directory_deps(stages)


def expand_directory_deps(stages: list[Job]) -> list[Job]:
    """Each dep that is a folder holding other stages' outputs, replaced by those outputs.

    dvc.yaml's aggregate depends on the folders models/ and results/runs/ (a list of
    runs cannot be expanded into deps); DVC orders and reruns it by every stage output
    inside them, which is what the Snakefile lists file by file.
    """
    produced = {path for stage in stages for path in stage.outputs}
    expanded = []
    for stage in stages:
        inputs: set[str] = set()
        for dep in stage.inputs:
            inside = {path for path in produced if path.startswith(dep.rstrip("/") + "/")}
            inputs |= inside or {dep}
        expanded.append(replace(stage, inputs=frozenset(inputs)))
    return expanded


def normalise_command(command: str) -> tuple[str, str | None]:
    """(command without the trailing log redirection, with single spaces; the log path or None)."""
    match = LOG_REDIRECT.search(command)
    log = match.group("log") if match else None
    if match:
        command = command[: match.start()]
    return " ".join(command.split()), log


def command_tokens(command: str) -> list[str]:
    return shlex.split(normalise_command(command)[0])
