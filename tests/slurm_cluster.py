"""A real one-node SLURM cluster with accounting, for the cluster tests, started from Debian's packages.

:func:`skip_reason` installs Debian's ``slurm-wlm``, ``slurmdbd``, ``munge`` and ``mariadb-server`` when
the tests run as root and ``CI`` or ``FVOS_TEST_SLURM`` is set (as :mod:`devtools_browser` gets Chromium),
and says why not otherwise. :func:`start_cluster` then starts, each with its configuration in a temporary
folder and on its own socket or free port: munge (authentication), MariaDB (the accounting database),
``slurmdbd`` (accounting: ``sacct``), ``slurmctld`` (the scheduler) and ``slurmd`` (the node: all of this
machine's CPUs, one partition, time limits enforced). Nothing is read from or written to ``/etc``: a
machine's own SLURM (a login node) is left alone, and the commands reach the test cluster through
``SLURM_CONF``. :meth:`Cluster.stop` ends exactly the processes started here, by process id, and their
jobs; a test process killed outright takes them down too (``PR_SET_PDEATHSIG``).
"""
from __future__ import annotations

import dataclasses
import os
import signal
import socket
import subprocess
import time
from pathlib import Path


OPT_IN = "FVOS_TEST_SLURM"
PACKAGES = ("slurm-wlm", "slurmdbd", "munge", "mariadb-server")
DAEMONS = ("/usr/sbin/munged", "/usr/sbin/mariadbd", "/usr/sbin/slurmdbd", "/usr/sbin/slurmctld", "/usr/sbin/slurmd")
CLUSTER_NAME = "fvostest"
PARTITION = "fvos"
_DB_PASSWORD = "fvos-test-only"


def skip_reason() -> str | None:
    """Why the cluster cannot be started here (None: it can), installing the packages where allowed."""
    opted_in = os.environ.get("CI") or os.environ.get(OPT_IN)
    if not opted_in or os.geteuid() != 0:
        return (f"SLURM tests skipped: run them as root with CI=1 or {OPT_IN}=1 (installs Debian's "
                f"{', '.join(PACKAGES)} and starts a one-node test cluster)")
    if not all(os.path.exists(daemon) for daemon in DAEMONS):
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        for command in (["apt-get", "update", "-q"], ["apt-get", "install", "-y", "-q", "--no-install-recommends",
                                                       *PACKAGES]):
            done = subprocess.run(command, capture_output=True, text=True, env=env)
            if done.returncode != 0:
                return f"SLURM tests skipped: {' '.join(command)} failed: {done.stderr.strip()[-300:]}"
    return None


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _wait_for(what: str, ready, timeout: float = 60.0, processes: tuple = ()) -> None:
    deadline = time.monotonic() + timeout
    while not ready():
        for process in processes:
            if process.poll() is not None:
                raise RuntimeError(f"{what}: {process.args[0]} exited with code {process.returncode}")
        if time.monotonic() > deadline:
            raise RuntimeError(f"{what} not ready within {timeout:.0f} s")
        time.sleep(0.2)


def _end_with_parent() -> None:
    """In a daemon, between fork and exec: SIGTERM when the test process dies, even by ``kill -9``, which
    runs no teardown (``prctl(PR_SET_PDEATHSIG)``)."""
    import ctypes

    ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)


@dataclasses.dataclass
class Cluster:
    """A running test cluster: its folder, the environment its commands need, and the daemons' processes."""
    folder: Path
    env: dict[str, str]
    partition: str
    cpus: int
    processes: list[subprocess.Popen] = dataclasses.field(default_factory=list)

    def run(self, *command: str, check: bool = True) -> str:
        """A SLURM command (``squeue``, ``scontrol``, ``sacct`` ...) against this cluster; its stdout."""
        done = subprocess.run(command, capture_output=True, text=True, env=self.env, timeout=60)
        if check and done.returncode != 0:
            raise RuntimeError(f"{' '.join(command)} failed ({done.returncode}): {done.stderr.strip()}")
        return done.stdout

    def state(self, job_id: str) -> str:
        """The job's state as accounting records it (``sacct``), e.g. RUNNING, CANCELLED, TIMEOUT."""
        lines = self.run("sacct", "-n", "-X", "-P", "-o", "State", "-j", str(job_id)).split()
        return lines[0].split()[0] if lines else "UNKNOWN"

    def wait_state(self, job_id: str, states: tuple[str, ...], timeout: float = 300.0) -> str:
        _wait_for(f"job {job_id} in {states}", lambda: self.state(job_id) in states, timeout)
        return self.state(job_id)

    def pids(self) -> list[int]:
        return [process.pid for process in self.processes]

    def stop(self) -> None:
        """Cancel every job of the cluster, then end the daemons started here (newest first), by pid."""
        if any(process.poll() is None for process in self.processes):
            subprocess.run(["scancel", "--partition", self.partition], env=self.env, capture_output=True, timeout=60)
            with_jobs = time.monotonic() + 30
            while time.monotonic() < with_jobs and self.run("squeue", "-h", check=False).strip():
                time.sleep(0.5)
        for process in reversed(self.processes):
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
                try:
                    process.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()


def start_cluster(folder: Path) -> Cluster:
    """Start munge, MariaDB, slurmdbd, slurmctld and slurmd, configured under ``folder``; returns the
    cluster once ``sinfo`` shows its node idle and accounting answers. On a failure, what was started is
    stopped again before the error is raised."""
    folder.mkdir(parents=True, exist_ok=True)
    host = socket.gethostname().split(".")[0]
    cpus = os.cpu_count() or 1
    ports = {name: _free_port() for name in ("mysql", "dbd", "ctld", "slurmd")}
    munge_socket = folder / "munge" / "munge.socket"
    conf = folder / "slurm.conf"
    env = {**os.environ, "SLURM_CONF": str(conf)}
    cluster = Cluster(folder=folder, env=env, partition=PARTITION, cpus=cpus)
    logs = folder / "logs"
    logs.mkdir(exist_ok=True)

    def daemon(command: list[str], name: str) -> subprocess.Popen:
        log = open(logs / f"{name}.out", "w")
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True,
                                   preexec_fn=_end_with_parent)
        cluster.processes.append(process)
        return process

    try:
        # munge: the key every daemon and command authenticates with
        (folder / "munge").mkdir()
        key = folder / "munge" / "munge.key"
        key.write_bytes(os.urandom(1024))
        key.chmod(0o400)
        munged = daemon(["/usr/sbin/munged", "--foreground", "--force", f"--socket={munge_socket}",
                         f"--key-file={key}", f"--pid-file={folder / 'munge' / 'munged.pid'}",
                         f"--log-file={logs / 'munged.log'}", f"--seed-file={folder / 'munge' / 'munged.seed'}"],
                        "munged")
        _wait_for("munged", munge_socket.exists, processes=(munged,))
        # MariaDB: slurmdbd's store, on a free port of 127.0.0.1 only
        data = folder / "mariadb"
        socket_path = folder / "mariadb.sock"
        subprocess.run(["mariadb-install-db", "--no-defaults", f"--datadir={data}", "--user=root",
                        "--auth-root-authentication-method=socket", "--skip-test-db"],
                       check=True, capture_output=True, env=env)
        mariadb = daemon(["/usr/sbin/mariadbd", "--no-defaults", f"--datadir={data}", f"--socket={socket_path}",
                          f"--port={ports['mysql']}", "--bind-address=127.0.0.1", "--user=root",
                          f"--pid-file={folder / 'mariadb.pid'}", "--skip-log-bin"], "mariadbd")
        _wait_for("MariaDB", socket_path.exists, processes=(mariadb,))
        sql = (f"CREATE USER 'slurm'@'127.0.0.1' IDENTIFIED BY '{_DB_PASSWORD}'; "
               "GRANT ALL ON slurm_acct_db.* TO 'slurm'@'127.0.0.1'; FLUSH PRIVILEGES;")
        subprocess.run(["mariadb", "--no-defaults", f"--socket={socket_path}", "-u", "root", "-e", sql],
                       check=True, capture_output=True, env=env)
        auth = f"AuthType=auth/munge\nAuthInfo=socket={munge_socket}\n"
        dbd_conf = folder / "slurmdbd.conf"  # slurmdbd looks for it beside SLURM_CONF
        dbd_conf.write_text(
            f"{auth}DbdHost=localhost\nDbdPort={ports['dbd']}\nSlurmUser=root\n"
            f"PidFile={folder / 'slurmdbd.pid'}\nLogFile={logs / 'slurmdbd.log'}\n"
            "StorageType=accounting_storage/mysql\nStorageHost=127.0.0.1\n"
            f"StoragePort={ports['mysql']}\nStorageUser=slurm\nStoragePass={_DB_PASSWORD}\n"
            "StorageLoc=slurm_acct_db\n")
        dbd_conf.chmod(0o600)  # slurmdbd refuses a readable one: it holds the database password
        state = folder / "state"
        conf.write_text(
            f"ClusterName={CLUSTER_NAME}\nSlurmctldHost={host}\nSlurmUser=root\n{auth}"
            f"SlurmctldPort={ports['ctld']}\nSlurmdPort={ports['slurmd']}\n"
            f"StateSaveLocation={state}\nSlurmdSpoolDir={folder / 'spool'}\n"
            f"SlurmctldPidFile={folder / 'slurmctld.pid'}\nSlurmdPidFile={folder / 'slurmd.pid'}\n"
            f"SlurmctldLogFile={logs / 'slurmctld.log'}\nSlurmdLogFile={logs / 'slurmd.log'}\n"
            "ProctrackType=proctrack/linuxproc\nTaskPlugin=task/none\nJobAcctGatherType=jobacct_gather/none\n"
            "SelectType=select/cons_tres\nSelectTypeParameters=CR_CPU\nMpiDefault=none\n"
            "AccountingStorageType=accounting_storage/slurmdbd\nAccountingStorageHost=localhost\n"
            f"AccountingStoragePort={ports['dbd']}\nAccountingStoragePass={munge_socket}\n"
            "JobRequeue=1\nKillWait=5\nMinJobAge=600\nInactiveLimit=0\nReturnToService=2\nOverTimeLimit=0\n"
            f"NodeName={host} CPUs={cpus} State=UNKNOWN\n"
            f"PartitionName={PARTITION} Nodes={host} Default=YES MaxTime=INFINITE State=UP\n")
        state.mkdir()
        (folder / "spool").mkdir()
        dbd = daemon(["/usr/sbin/slurmdbd", "-D"], "slurmdbd")
        _wait_for("slurmdbd", lambda: subprocess.run(["sacctmgr", "-n", "list", "cluster"], env=env,
                                                    capture_output=True).returncode == 0, processes=(dbd,))
        cluster.run("sacctmgr", "-i", "add", "cluster", CLUSTER_NAME)
        ctld = daemon(["/usr/sbin/slurmctld", "-D", "-i"], "slurmctld")
        node = daemon(["/usr/sbin/slurmd", "-D", "-N", host], "slurmd")
        _wait_for("the node", lambda: cluster.run("sinfo", "-h", "-o", "%t", check=False).strip() == "idle",
                  processes=(ctld, node))
        return cluster
    except BaseException:
        cluster.stop()
        raise

