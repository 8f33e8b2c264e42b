"""Jobs a step submitted (SLURM through submitit, or submitit's local executor): their state now, and the
words that name one, which a waiting pipeline reads back.

A job is ``{"executor": "slurm" | "local", "job_id": str, "log": path}``. Its state is asked of the scheduler
each time it is needed: submitit's own view is cached for minutes.
"""
from __future__ import annotations

import os
import re
import subprocess

#: SLURM states (``squeue``/``sacct``) of a job that has not ended
ALIVE_STATES = ("PENDING", "RUNNING", "REQUEUED", "CONFIGURING", "COMPLETING", "SUSPENDED", "RESIZING",
                "REQUEUE_HOLD", "REQUEUE_FED", "STAGE_OUT", "SIGNALING")
#: how a job is named in messages (:func:`describe`), read back by :func:`named_in`
_NAMED = re.compile(r"\b(slurm|local) job (\S+) \(follow it: tail -f ")


def describe(job: dict) -> str:
    """``slurm job 42 (follow it: tail -f LOG)``."""
    return f"{job['executor']} job {job['job_id']} (follow it: tail -f {job['log']})"


def named_in(text: str) -> dict | None:
    """The job a message names (:func:`describe`), as ``{"executor", "job_id"}``; None when it names none."""
    found = _NAMED.search(text)
    return {"executor": found[1], "job_id": found[2]} if found else None


def state(job: dict) -> str:
    """The job's state now: a SLURM job's as the scheduler reports it (:func:`slurm_state`); a local job
    RUNNING while its controller process lives (its id is the pid), else ENDED."""
    if job["executor"] != "local":
        return slurm_state(job["job_id"])
    try:
        os.kill(int(job["job_id"]), 0)
        with open(f"/proc/{job['job_id']}/stat") as stat:  # a zombie has ended
            alive = stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except ProcessLookupError:
        alive = False
    except PermissionError:  # alive, another user's
        alive = True
    return "RUNNING" if alive else "ENDED"


def slurm_state(job_id: str) -> str:
    """A SLURM job's state now: the scheduler's (``squeue``) while it knows the job, then accounting's
    (``sacct``); UNKNOWN when neither does."""
    for command in (["squeue", "-h", "-j", str(job_id), "-o", "%T"],
                    ["sacct", "-X", "-n", "-P", "-o", "State", "-j", str(job_id)]):
        done = subprocess.run(command, capture_output=True, text=True)
        if done.returncode == 0 and done.stdout.split():
            return done.stdout.split()[0]  # "CANCELLED by 0" -> CANCELLED
    return "UNKNOWN"


def cancel(job_id: str) -> None:
    """``scancel`` a SLURM job (one already ended is left as it is)."""
    subprocess.run(["scancel", str(job_id)], capture_output=True, text=True)
