"""torchrun for tools/dist_train.sh and dist_test.sh: arguments checked before anything
starts, a free port on one node, and a failed run summed up in one line per problem.

    python -m swin_mm_dev.launch tools/train.py NUM_PROCESSES CONFIG [train.py options]
    python -m swin_mm_dev.launch tools/test.py NUM_PROCESSES CONFIG CHECKPOINT [options]

Multi-node runs set NNODES, NODE_RANK, MASTER_ADDR and PORT as with torchrun. A single
node (NNODES unset or 1) without PORT takes a port the system hands out (torchrun's
standalone rendezvous), so two runs on one machine do not clash.

Errors: each worker reports its one-line errors (:func:`report_error`) into a directory
the launcher made; when workers fail, the launcher prints each distinct line once,
instead of one copy per process followed by torchrun's traceback, and exits with 2 as
the tools do. A worker that crashed some other way has already printed its traceback;
the launcher adds one line naming it and exits with 1.
"""
import logging
import os
import re
import shutil
import signal
import sys
import tempfile
from typing import List, Optional

ERROR_DIR_ENV = 'SWIN_MM_ERROR_DIR'
LAUNCHER_PID = 'SWIN_MM_LAUNCHER_PID'  # workers stop when this process is gone
USAGE = {'train.py': 'tools/dist_train.sh CONFIG NUM_PROCESSES [train.py options]',
         'test.py': 'tools/dist_test.sh CONFIG CHECKPOINT NUM_PROCESSES [test.py options]'}


class LaunchError(ValueError):
    """Launcher arguments or environment that cannot start a run."""


def report_error(line: str) -> None:
    """A worker's one-line error: to the launcher's directory when there is one (the
    launcher prints it once for all processes), else to stderr."""
    directory = os.environ.get(ERROR_DIR_ENV)
    if not directory or not os.path.isdir(directory):
        print(line, file=sys.stderr)
        return
    rank = os.environ.get('RANK', os.environ.get('LOCAL_RANK', '0'))
    with open(os.path.join(directory, f'rank{rank}.partial'), 'w') as file:
        file.write(line.rstrip('\n') + '\n')
    os.replace(os.path.join(directory, f'rank{rank}.partial'),
               os.path.join(directory, f'rank{rank}.txt'))


def reported_errors(directory: str) -> dict:
    """rank -> the line that worker reported."""
    lines = {}
    for name in os.listdir(directory):
        match = re.fullmatch(r'rank(\d+)\.txt', name)
        if match:
            with open(os.path.join(directory, name)) as file:
                lines[int(match.group(1))] = file.read().strip()
    return lines


def _positive_count(text: str, script: str) -> int:
    if not re.fullmatch(r'[1-9][0-9]*', text):
        raise LaunchError(f'expected NUM_PROCESSES, a whole number of processes per node '
                          f'of at least 1, found {text!r} (usage: {USAGE[script]})')
    return int(text)


def torchrun_arguments(tool: str, count: int, script_args: List[str]) -> List[str]:
    """torchrun's arguments: standalone rendezvous on one node without PORT, else the
    static one from NNODES, NODE_RANK, MASTER_ADDR and PORT (default 29500)."""
    nodes = os.environ.get('NNODES', '1')
    if not re.fullmatch(r'[1-9][0-9]*', nodes):
        raise LaunchError(f'expected NNODES, a whole number of nodes, found {nodes!r}')
    if nodes == '1' and not os.environ.get('PORT'):
        where = ['--standalone']
    else:
        where = [f'--nnodes={nodes}', f'--node_rank={os.environ.get("NODE_RANK", "0")}',
                 f'--master_addr={os.environ.get("MASTER_ADDR", "127.0.0.1")}',
                 f'--master_port={os.environ.get("PORT", "29500")}']
    return [*where, f'--nproc_per_node={count}', tool, *script_args, '--launcher', 'pytorch']


def _quiet_torchrun_logs() -> None:
    """torchrun's agent logs each failure and each worker it stops (WARNING and ERROR
    records of loggers it creates at import, each with its own level); the summary here
    replaces them."""
    for name in list(logging.root.manager.loggerDict):
        if name.startswith('torch.distributed'):
            logging.getLogger(name).setLevel(logging.CRITICAL)


def _failure_summary(failures: dict, lines: dict) -> int:
    """Print what the failed workers said (each line once) or how they ended; the exit
    status: 2 when every failure was a one-line error, else 1."""
    printed = []
    for rank in sorted(lines):
        if lines[rank] not in printed:
            printed.append(lines[rank])
            print(lines[rank], file=sys.stderr)
    status = 2
    for rank, failure in sorted(failures.items()):
        if rank in lines:
            continue
        status = 1
        code = failure.exitcode
        how = (f'was killed by {signal.Signals(-code).name}' if code < 0
               else f'exited with status {code}')
        print(f'error: process {rank} {how} (its output is above)', file=sys.stderr)
    return status


def main(argv: Optional[List[str]] = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) < 2 or os.path.basename(argv[0]) not in USAGE:
        print('usage: python -m swin_mm_dev.launch tools/{train,test}.py NUM_PROCESSES '
              'TOOL_ARGS...', file=sys.stderr)
        return 2
    tool, count_text, script_args = argv[0], argv[1], argv[2:]
    try:
        count = _positive_count(count_text, os.path.basename(tool))
        arguments = torchrun_arguments(tool, count, script_args)
    except LaunchError as err:
        print(f'error: {err}', file=sys.stderr)
        return 2
    if count > 1:
        # torchrun's and mmengine's own defaults, set here so that they do not warn.
        for variable in ('OMP_NUM_THREADS', 'MKL_NUM_THREADS'):
            os.environ.setdefault(variable, '1')
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.run import parse_args, run
    _quiet_torchrun_logs()
    directory = tempfile.mkdtemp(prefix='swin_mm_errors.')
    os.environ[ERROR_DIR_ENV] = directory
    os.environ[LAUNCHER_PID] = str(os.getpid())  # workers stop if this process dies
    try:
        run(parse_args(arguments))
        return 0
    except ChildFailedError as err:
        return _failure_summary(err.failures, reported_errors(directory))
    except Exception as err:  # the launcher's own rendezvous and network errors
        message = (str(err).strip().splitlines() or [type(err).__name__])[0]
        if 'EADDRINUSE' in str(err) or 'address already in use' in str(err).lower():
            message = (f'port {os.environ.get("PORT", "29500")} is in use (another run?): '
                       f'choose another PORT, or on one node leave PORT unset to take a '
                       f'free one')
        print(f'error: {message}', file=sys.stderr)
        return 2
    finally:
        shutil.rmtree(directory, ignore_errors=True)


if __name__ == '__main__':
    sys.exit(main())
