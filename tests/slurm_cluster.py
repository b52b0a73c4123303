"""A throw-away one-node SLURM cluster on localhost, for tests (tests/test_slurm.py).

`LocalSlurmCluster` writes everything it needs (slurm.conf, munge key and socket,
state, spool, logs, the job-completion record) into one new temporary directory,
starts munged, slurmctld and slurmd by hand (in the foreground, as child
processes: no systemd, no slurmdbd), waits until the node is idle, and on `stop()`
cancels what is still queued, stops the three daemons by their pids and removes
the directory. Nothing outside that directory is written or read, except the
installed binaries: the daemons listen on free ports chosen at start, and every
SLURM command finds this cluster through `SLURM_CONF` in `env()` (munge through
`AuthInfo=socket=...` in slurm.conf), so a SLURM installation on the machine is
left alone.

The cluster: proctrack/linuxproc, task/none, select/cons_tres with CR_Core_Memory
(a job gets the cores and memory it asks for), the node's real CPUs and memory
(from `slurmd -C`), two partitions on the one node (`cpu`, the default, and `gpu`,
without GPUs), no accounting (accounting_storage/none, so `sacct` has nothing),
jobcomp/filetxt (one line per finished job in `jobcomp.txt`) and MinJobAge=3600
DefMemPerCPU=500
(`squeue --states=all` keeps finished jobs for 5 minutes).

Also usable by hand: `python tests/slurm_cluster.py` starts one, prints what to export
(SLURM_CONF, and PATH with the srun wrapper), and stops it on Enter.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

DAEMONS = ("munged", "slurmctld", "slurmd")
CLIENTS = ("sbatch", "squeue", "scontrol", "sinfo", "scancel", "srun")
CLUSTER_NAME = "unetpp-test"


def missing_binaries() -> list[str]:
    """The SLURM and munge programs the cluster needs that are not installed."""
    search = os.pathsep.join([os.environ.get("PATH", ""), "/usr/sbin", "/usr/local/sbin", "/sbin"])
    return [name for name in DAEMONS + CLIENTS if shutil.which(name, path=search) is None]


def find(name: str) -> str:
    search = os.pathsep.join([os.environ.get("PATH", ""), "/usr/sbin", "/usr/local/sbin", "/sbin"])
    path = shutil.which(name, path=search)
    if path is None:
        raise FileNotFoundError(name)
    return path


def unavailable_reason() -> str | None:
    """Why no cluster can be started here (None when it can be tried)."""
    if not sys.platform.startswith("linux"):
        return f"a local SLURM cluster needs Linux (this is {sys.platform})"
    missing = missing_binaries()
    if missing:
        return (
            f"SLURM is not installed ({', '.join(missing)} not found); on Debian/Ubuntu: "
            "apt-get install slurm-wlm munge (what .ci/run does)"
        )
    if os.geteuid() != 0:
        return "starting slurmd needs root (it runs each job as the user who submitted it); CI runs as root"
    return None


def free_ports(count: int) -> list[int]:
    """`count` distinct TCP ports that nothing listens on now (the OS picks them)."""
    sockets, ports = [], []
    try:
        for _ in range(count):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.bind(("", 0))
            sockets.append(sock)
            ports.append(sock.getsockname()[1])
    finally:
        for sock in sockets:
            sock.close()
    return ports


def node_hardware() -> str:
    """The node line of `slurmd -C` without its NodeName: CPUs=... RealMemory=... (what slurmd will report)."""
    out = subprocess.run([find("slurmd"), "-C"], capture_output=True, text=True, check=True).stdout
    line = next(line for line in out.splitlines() if line.startswith("NodeName="))
    return " ".join(field for field in line.split() if not field.startswith("NodeName="))


class ClusterError(RuntimeError):
    """The cluster did not come up; the message holds the daemons' log tails."""


class LocalSlurmCluster:
    def __init__(self, prefix: str = "unetpp-slurm-") -> None:
        # A short path under /tmp: the munge socket's path must fit in 108 bytes.
        self.root = Path(tempfile.mkdtemp(prefix=prefix, dir="/tmp" if Path("/tmp").is_dir() else None))
        self.node = socket.gethostname().split(".")[0]
        self.conf = self.root / "slurm.conf"
        self.jobcomp = self.root / "jobcomp.txt"
        self.munge_socket = self.root / "munge.socket"
        # Put first on PATH by env(): holds the srun wrapper (see write_config).
        self.bin = self.root / "bin"
        self.processes: dict[str, subprocess.Popen[bytes]] = {}
        self.ports: tuple[int, int] = (0, 0)

    # -- environment ---------------------------------------------------------------------------
    def env(self, base: dict[str, str] | None = None) -> dict[str, str]:
        """`base` (default os.environ) pointed at this cluster: SLURM_CONF set, `bin` first on PATH,
        inherited SLURM_* job variables dropped."""
        source = os.environ if base is None else base
        env = {k: v for k, v in source.items() if not k.startswith(("SLURM_", "SBATCH_", "SRUN_"))}
        env["SLURM_CONF"] = str(self.conf)
        env["PATH"] = f"{self.bin}{os.pathsep}{env.get('PATH', '')}"
        return env

    def command(self, *args: str, check: bool = True, timeout: float = 30) -> subprocess.CompletedProcess[str]:
        """Run a SLURM client command (sinfo, squeue, ...) against this cluster."""
        return subprocess.run([find(args[0]), *args[1:]], env=self.env(), capture_output=True, text=True,
                              check=check, timeout=timeout)

    # -- start ---------------------------------------------------------------------------------
    def write_config(self) -> None:
        for name in ("state", "spool", "munge"):
            (self.root / name).mkdir(mode=0o700)
        key = self.root / "munge" / "munge.key"
        key.write_bytes(os.urandom(1024))
        key.chmod(0o400)
        self.ports = tuple(free_ports(2))  # type: ignore[assignment]
        root = self.root
        (root / "plugstack.conf").write_text("")
        # Inside a job the jobstep plugin calls `srun` with every SLURM_* variable removed, SLURM_CONF too
        # (snakemake-executor-plugin-slurm issue #164); a real cluster's slurm.conf is found at
        # /etc/slurm or configless, this one's only through SLURM_CONF: give srun it back.
        (root / "bin").mkdir()
        wrapper = root / "bin" / "srun"
        wrapper.write_text(f'#!/bin/sh\nSLURM_CONF="{self.conf}" exec "{find("srun")}" "$@"\n')
        wrapper.chmod(0o755)
        self.conf.write_text(
            f"""# Written by tests/slurm_cluster.py: a one-node cluster on localhost, removed after the test.
ClusterName={CLUSTER_NAME}
SlurmctldHost={self.node}(127.0.0.1)
SlurmctldPort={self.ports[0]}
SlurmdPort={self.ports[1]}
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket={self.munge_socket}
StateSaveLocation={root}/state
SlurmdSpoolDir={root}/spool
SlurmctldPidFile={root}/slurmctld.pid
SlurmdPidFile={root}/slurmd.pid
SlurmctldLogFile={root}/slurmctld.log
SlurmdLogFile={root}/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
PlugStackConfig={root}/plugstack.conf
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
SchedulerType=sched/backfill
MpiDefault=none
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/filetxt
JobCompLoc={self.jobcomp}
MinJobAge=3600
DefMemPerCPU=500
ReturnToService=2
SlurmdTimeout=60
InactiveLimit=0
KillWait=5
NodeName={self.node} NodeAddr=127.0.0.1 {node_hardware()} State=UNKNOWN
PartitionName=cpu Nodes={self.node} Default=YES MaxTime=INFINITE State=UP
PartitionName=gpu Nodes={self.node} MaxTime=INFINITE State=UP
"""
        )

    def _spawn(self, name: str, args: list[str]) -> None:
        log = (self.root / f"{name}.stdout").open("wb")
        self.processes[name] = subprocess.Popen(
            [find(name), *args], env=self.env(), stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
            cwd=self.root, start_new_session=True,
        )
        log.close()

    def _wait(self, what: str, ready, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for name, process in self.processes.items():
                if process.poll() is not None:
                    raise ClusterError(
                        f"{name} exited with {process.returncode} while waiting for {what}\n{self.logs()}"
                    )
            if ready():
                return
            time.sleep(0.25)
        raise ClusterError(f"timed out after {timeout:.0f} s waiting for {what}\n{self.logs()}")

    def start(self, timeout: float = 60) -> LocalSlurmCluster:
        """Write the configuration, start munged, slurmctld and slurmd, wait until the node is idle."""
        try:
            self.write_config()
            munge = self.root / "munge"
            self._spawn("munged", ["--foreground", "--force", f"--socket={self.munge_socket}",
                                   f"--key-file={munge / 'munge.key'}", f"--pid-file={munge / 'munged.pid'}",
                                   f"--log-file={munge / 'munged.log'}", f"--seed-file={munge / 'munged.seed'}"])
            self._wait("munged's socket", self.munge_socket.exists, timeout)
            self._spawn("slurmctld", ["-D", "-c", "-i", "-f", str(self.conf)])
            self._wait("slurmctld", lambda: self.command("scontrol", "ping", check=False).stdout.count("UP") > 0,
                       timeout)
            self._spawn("slurmd", ["-D", "-N", self.node, "-f", str(self.conf)])
            self._wait(f"node {self.node} to be idle", self._node_idle, timeout)
        except BaseException:
            self.stop()
            raise
        return self

    def _node_idle(self) -> bool:
        result = self.command("sinfo", "--noheader", "--nodes", self.node, "--format=%t", check=False)
        return result.returncode == 0 and "idle" in result.stdout.split()

    # -- inspect -------------------------------------------------------------------------------
    def logs(self, lines: int = 25) -> str:
        """The last lines of every daemon log, for error messages."""
        parts = []
        # The daemons run in the foreground: their .stdout files hold everything they logged, from the start.
        for path in sorted(self.root.glob("*.stdout")):
            text = path.read_text(errors="replace").splitlines()[-lines:]
            parts.append(f"--- {path.name} (last {len(text)} lines)\n" + "\n".join(text))
        return "\n".join(parts)

    def completed_jobs(self) -> dict[str, dict[str, str]]:
        """jobcomp/filetxt's record of every finished job: {job id: {"JobState": ..., "Name": ..., ...}}."""
        jobs = {}
        if self.jobcomp.exists():
            for line in self.jobcomp.read_text().splitlines():
                fields = dict(re.findall(r"(\w+)=(\S*)", line))
                if "JobId" in fields:
                    jobs[fields["JobId"]] = fields
        return jobs

    def queue_history(self, name: str) -> dict[str, dict[str, str]]:
        """`squeue --states=all` for the jobs named `name`: {job id: {"state", "comment", "partition"}}.

        Finished jobs stay in it for MinJobAge (3600 s here).
        """
        out = self.command("squeue", "--states=all", "--noheader", f"--name={name}", "--format=%i|%T|%P|%k").stdout
        jobs = {}
        for line in out.splitlines():
            job_id, state, partition, comment = line.strip().split("|", 3)
            jobs[job_id] = {"state": state, "partition": partition, "comment": comment}
        return jobs

    # -- stop ----------------------------------------------------------------------------------
    def stop(self) -> None:
        """Cancel what is still queued or running, stop the daemons by pid, remove the directory."""
        if self.processes.get("slurmctld") and self.processes["slurmctld"].poll() is None:
            try:
                self.command("scancel", "--full", "--user", str(os.geteuid()),
                             check=False, timeout=15)
                deadline = time.monotonic() + 20
                while time.monotonic() < deadline and self.command(
                    "squeue", "--noheader", "--states=PENDING,RUNNING,COMPLETING,CONFIGURING", check=False, timeout=15
                ).stdout.strip():
                    time.sleep(0.5)
            except (subprocess.SubprocessError, OSError):
                pass
        for name in reversed(DAEMONS):  # slurmd, slurmctld, munged
            process = self.processes.pop(name, None)
            if process is None or process.poll() is not None:
                continue
            os.kill(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.kill(process.pid, signal.SIGKILL)
                process.wait(timeout=10)
        shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> LocalSlurmCluster:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


if __name__ == "__main__":
    reason = unavailable_reason()
    if reason:
        sys.exit(reason)
    with LocalSlurmCluster() as cluster:
        # The srun wrapper first on PATH: jobs of the snakemake plugin need it (see write_config).
        print(f"export SLURM_CONF={cluster.conf} PATH={cluster.bin}:$PATH")
        print(cluster.command("sinfo").stdout)
        input("Enter stops the cluster and removes its files. ")
