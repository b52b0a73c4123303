"""The GPU lease, run with a pretend GPU count on CPU: real processes, real flocks.

Each holder is a subprocess that leases one of COUNT pretend GPUs, prints the
index and holds the lease until its stdin closes (or it is killed).
"""

from __future__ import annotations

import os
import select
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner

from unetpp.commands.options import gpu_lease_dir_option
from unetpp.errors import UnetppError
from unetpp.training import gpu_lease
from unetpp.training.gpu_lease import LEASE_DIR_ENV, choose_device, gpu_record, why_not_lease

pytestmark = pytest.mark.skipif(gpu_lease.fcntl is None, reason="flock is POSIX-only")

HOLDER = """
import sys
from pathlib import Path
from unetpp.training.gpu_lease import acquire
index, fd = acquire(int(sys.argv[1]), Path(sys.argv[2]), poll_seconds=0.05, status_seconds=0.2)
print(index, flush=True)
sys.stdin.read()  # hold the lease until the test closes stdin
"""


def start_holder(count: int, lock_dir: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(count), str(lock_dir)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )


def leased_index(holder: subprocess.Popen[str], timeout: float = 20.0) -> int | None:
    """The index the holder printed, or None if it printed nothing within `timeout` seconds."""
    ready, _, _ = select.select([holder.stdout], [], [], timeout)
    if not ready:
        return None
    return int(holder.stdout.readline())


def release(holder: subprocess.Popen[str]) -> None:
    holder.stdin.close()
    holder.wait(timeout=20)


@pytest.fixture()
def holders():
    started: list[subprocess.Popen[str]] = []
    yield started
    for holder in started:
        if holder.poll() is None:
            holder.kill()
        holder.wait(timeout=20)


def test_concurrent_processes_get_distinct_gpus(tmp_path: Path, holders: list) -> None:
    holders.extend(start_holder(3, tmp_path) for _ in range(3))  # started together, racing for GPU 0 first
    assert sorted(leased_index(h) for h in holders) == [0, 1, 2]


def test_a_killed_holders_gpu_becomes_free(tmp_path: Path, holders: list) -> None:
    first, second = start_holder(2, tmp_path), start_holder(2, tmp_path)
    holders.extend([first, second])
    killed_index, kept_index = leased_index(first), leased_index(second)
    assert {killed_index, kept_index} == {0, 1}
    first.send_signal(signal.SIGKILL)  # no cleanup runs: only the kernel dropping the flock frees the GPU
    first.wait(timeout=20)
    newcomer = start_holder(2, tmp_path)
    holders.append(newcomer)
    assert leased_index(newcomer) == killed_index
    late = start_holder(2, tmp_path)  # the survivor and the newcomer hold both: this one waits
    holders.append(late)
    assert leased_index(late, timeout=0.5) is None


def test_a_full_house_waits_then_gets_the_freed_gpu(tmp_path: Path, holders: list) -> None:
    first, second = start_holder(2, tmp_path), start_holder(2, tmp_path)
    holders.extend([first, second])
    index_of = {leased_index(first): first, leased_index(second): second}
    assert set(index_of) == {0, 1}
    waiter = start_holder(2, tmp_path)
    holders.append(waiter)
    assert leased_index(waiter, timeout=1.0) is None  # both leased: it waits instead of doubling up
    release(index_of[1])
    assert leased_index(waiter) == 1
    release(waiter)
    stderr = waiter.stderr.read()
    assert "all 2 GPUs are leased by other unetpp jobs" in stderr
    assert "GPU 0: pid" in stderr  # the message names who holds them
    assert "still waiting for a free GPU" in stderr  # the status line repeats while it waits
    assert "GPU 1 is free, leased after waiting" in stderr


@pytest.mark.parametrize(
    ("device", "count", "environ", "reason"),
    [
        ("cpu", 4, {}, "--device cpu chosen explicitly"),
        ("cuda:1", 4, {}, "--device cuda:1 chosen explicitly"),
        ("mps", 0, {}, "--device mps chosen explicitly"),
        ("auto", 4, {"CUDA_VISIBLE_DEVICES": "2,3"}, "CUDA_VISIBLE_DEVICES is set ('2,3')"),
        ("cuda", 4, {"SLURM_JOB_GPUS": "1"}, "SLURM_JOB_GPUS is set ('1')"),
        ("auto", 4, {"SLURM_STEP_GPUS": "0"}, "SLURM_STEP_GPUS is set ('0')"),
        ("auto", 1, {}, "1 GPU(s) on this machine"),
        ("auto", 0, {}, "0 GPU(s) on this machine"),
        ("auto", 2, {"SLURM_JOB_ID": "7"}, None),  # a SLURM job without a GPU assignment may lease
        ("cuda", 2, {}, None),
    ],
)
def test_why_not_lease(device: str, count: int, environ: dict, reason: str | None) -> None:
    assert why_not_lease(device, count, environ) == reason


@pytest.mark.parametrize(
    ("device", "count", "environ"),
    [("cpu", 4, {}), ("cuda:1", 4, {}), ("auto", 4, {"CUDA_VISIBLE_DEVICES": "1"}), ("auto", 1, {}), ("auto", 0, {})],
)
def test_no_lease_leaves_device_and_disk_alone(tmp_path: Path, device: str, count: int, environ: dict) -> None:
    folder = tmp_path / "leases"
    choice = choose_device(device, folder, count, environ)
    assert (choice.device, choice.leased, choice.index) == (device, False, None)
    assert not folder.exists()


def test_choose_device_leases_in_process(tmp_path: Path) -> None:
    first = choose_device("auto", tmp_path, 2, {}, poll_seconds=0.01)
    second = choose_device("cuda", tmp_path, 2, {}, poll_seconds=0.01)  # another open file: another lease
    assert (first.device, first.leased, first.lock_file) == ("cuda:0", True, str(tmp_path / "gpu0.lock"))
    assert (second.device, second.index) == ("cuda:1", 1)
    assert (tmp_path / "gpu1.lock").read_text().split()[0] == str(os.getpid())
    os.close(first.fd)  # ending the lease frees the GPU for the next one
    third = choose_device("auto", tmp_path, 2, {}, poll_seconds=0.01)
    assert third.device == "cuda:0"
    os.close(second.fd)
    os.close(third.fd)


def test_lease_gpu_with_two_pretend_gpus_sets_the_current_device(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                 capfd: pytest.CaptureFixture[str]) -> None:
    current: list[int] = []
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    monkeypatch.setattr(torch.cuda, "set_device", current.append)
    monkeypatch.setattr(gpu_lease, "_choice", None)
    for name in gpu_lease.ASSIGNMENT_VARS:
        monkeypatch.delenv(name, raising=False)
    choice = gpu_lease.lease_gpu("auto", tmp_path)
    assert (choice.device, choice.leased, current) == ("cuda:0", True, [0])
    assert "unetpp: leased GPU 0 of 2 for this process" in capfd.readouterr().err
    assert gpu_record(torch.device(choice.device))["leased"] is True
    os.close(choice.fd)


def test_lease_gpu_keeps_a_users_visible_devices(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    monkeypatch.setattr(gpu_lease, "_choice", None)
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "1")
    choice = gpu_lease.lease_gpu("auto", tmp_path / "leases")
    assert (choice.device, choice.leased, choice.reason) == ("auto", False, "CUDA_VISIBLE_DEVICES is set ('1')")
    assert not (tmp_path / "leases").exists()


def test_a_planted_symlink_is_refused_not_written_through(tmp_path: Path) -> None:
    victim = tmp_path / "precious.txt"
    victim.write_text("keep me")
    folder = tmp_path / "leases"
    folder.mkdir()
    (folder / "gpu0.lock").symlink_to(victim)
    with pytest.raises(UnetppError, match="a symlink is refused"):
        choose_device("auto", folder, 2, {})
    assert victim.read_text() == "keep me"


def test_gpu_record_only_for_cuda(monkeypatch: pytest.MonkeyPatch) -> None:
    assert gpu_record(torch.device("cpu")) is None
    leased = gpu_lease.GpuChoice("cuda:3", True, "leased GPU 3 of 4", 3, "/tmp/x/gpu3.lock")
    monkeypatch.setattr(gpu_lease, "_choice", leased)
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    assert gpu_record(torch.device("cuda:3")) == {
        "index": 3, "cuda_visible_devices": None, "leased": True, "reason": "leased GPU 3 of 4",
        "lock_file": "/tmp/x/gpu3.lock",
    }


def test_lease_dir_option_reads_the_documented_variable(tmp_path: Path) -> None:
    import click

    @click.command()
    @gpu_lease_dir_option
    def show(gpu_lease_dir: Path | None) -> None:
        click.echo(str(gpu_lease_dir))

    result = CliRunner().invoke(show, [], env={LEASE_DIR_ENV: str(tmp_path)})
    assert result.output.strip() == str(tmp_path)
    assert LEASE_DIR_ENV in CliRunner().invoke(show, ["--help"]).output
