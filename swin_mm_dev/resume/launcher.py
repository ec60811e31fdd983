"""A training process stops when the launcher that started it is gone.

torchrun starts each worker in a session of its own, so killing the launcher's process
group (a lost job step, ``kill -9 -PGID``) leaves the workers training and writing
checkpoints into the work dir, racing the run that resumes there. On Linux a worker
asks the kernel for SIGKILL when its parent dies (``PR_SET_PDEATHSIG``) and then checks
that its parent is still the launcher (swin_mm_dev.launch, behind tools/dist_*.sh): one that died
before the request was made would never send the signal.
"""
import ctypes
import os
import signal
import sys

from swin_mm_dev.launch import LAUNCHER_PID  # absolute: tests load this file alone

_PR_SET_PDEATHSIG = 1  # <linux/prctl.h>


def _parent_of(pid: int) -> int:
    try:
        with open(f'/proc/{pid}/stat') as stat:
            return int(stat.read().rsplit(')', 1)[1].split()[1])
    except (OSError, IndexError, ValueError):
        return -1


def die_with_launcher() -> bool:
    """Arrange to be killed with the launcher; exit now if it is already gone. Returns
    whether the kernel will do it (False off Linux or outside tools/_dist_launch.sh).

    The launcher is this process's parent (torchrun, when the script execs it) or its
    grandparent (a script that runs torchrun as a child)."""
    launcher = os.environ.get(LAUNCHER_PID)
    if not launcher or not sys.platform.startswith('linux'):
        return False
    prctl = getattr(ctypes.CDLL(None, use_errno=True), 'prctl', None)
    if prctl is None or prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) != 0:
        return False
    if int(launcher) not in (os.getppid(), _parent_of(os.getppid())):
        print(f'error: the launcher (process {launcher}) that started this worker is gone; '
              'stopping', file=sys.stderr)
        os._exit(1)
    return True
