"""SIGTERM as a request to save and stop, and the exit code that says so.

Schedulers preempt a job by sending SIGTERM and, a grace period later,
SIGKILL (Slurm's ``KillWait``/``GraceTime``, torchrun's shutdown timeout,
Kubernetes' ``terminationGracePeriodSeconds``). :class:`SigtermFlag` turns
the signal into a flag that training checks between iterations;
:class:`~mmkr.engine.PreemptibleCheckpointHook` then writes a checkpoint and
raises :class:`Preempted`, which ends the process with
:data:`PREEMPTED_EXIT_CODE`.
"""
import atexit
import multiprocessing
import os
import signal
from typing import Callable, Optional

import torch
from mmengine.dist import all_reduce, get_world_size

# EX_TEMPFAIL of sysexits.h, "temporary failure; the user is invited to
# retry": a requeue script tells a preempted run (75: requeue it, it resumes
# with --resume) from a failed one (any other non-zero code).
PREEMPTED_EXIT_CODE = 75

# tools/dist_train.sh and tools/slurm_train.sh set this: their launchers
# report a worker that stops early in their own way (torchrun exits with 1),
# so the workers also leave the checkpoint's path in this file and the
# scripts turn that into PREEMPTED_EXIT_CODE.
PREEMPTED_FILE_ENV = 'MMKR_PREEMPTED_FILE'


class Preempted(SystemExit):
    """Training stopped on SIGTERM after ``checkpoint`` was complete.

    A ``SystemExit``: uncaught, it ends the process with
    :data:`PREEMPTED_EXIT_CODE` and no traceback; ``except Exception`` in
    between does not swallow it.
    """

    def __init__(self, checkpoint: str):
        super().__init__(PREEMPTED_EXIT_CODE)
        self.checkpoint = checkpoint


class SigtermFlag:
    """Records SIGTERM instead of dying from it.

    The handler only sets a flag: Python runs it between bytecodes of the
    main thread, possibly in the middle of an optimizer step, where nothing
    else may happen. DataLoader workers need :class:`IgnoreSigtermInWorker`.
    """

    def __init__(self):
        self.received = False
        self._previous = None

    def _handle(self, signum, frame) -> None:
        self.received = True

    def install(self) -> None:
        """Handle SIGTERM from now on. Raises ValueError outside the main
        thread, where Python cannot handle signals."""
        self._previous = signal.signal(signal.SIGTERM, self._handle)

    def uninstall(self) -> None:
        """Give SIGTERM back to the handler :meth:`install` replaced."""
        if self._previous is not None:
            signal.signal(signal.SIGTERM, self._previous)
            self._previous = None

    def received_by_any_rank(self) -> bool:
        """Whether any process of the job has received SIGTERM.

        Every rank must call it at the same iteration: the ranks receive
        the signal at slightly different moments, and all of them must stop
        after the same iteration, or the ones still training wait forever
        for the others in their next all-reduce.
        """
        if get_world_size() == 1:
            return self.received
        flag = torch.tensor([int(self.received)])
        all_reduce(flag, op='max')
        return bool(flag.item())


class IgnoreSigtermInWorker:
    """A DataLoader ``worker_init_fn``: the worker ignores SIGTERM while its
    main process runs, then ``init_fn`` (the one it replaces, if any) runs.

    PyTorch's workers die on SIGTERM (a C handler re-raises it), and the
    main process then fails with "DataLoader worker ... is killed by signal:
    Terminated" before it can save; Slurm sends SIGTERM to every process of
    the job. Once the main process exits, SIGTERM ends the worker again:
    Python's exit stops the remaining workers with SIGTERM and waits for
    them, and a worker that exits with status 0 then, rather than dying by
    the signal, leaves the main process no "killed by signal" error to
    raise at exit (a main process killed outright leaves workers that exit
    on their own).
    """

    def __init__(self, init_fn: Optional[Callable[[int], None]]):
        self.init_fn = init_fn
        self.main_exiting = multiprocessing.Event()
        # atexit runs the last registered first: this before
        # multiprocessing's own exit function, which terminates the workers
        atexit.register(self.main_exiting.set)

    def __call__(self, worker_id: int) -> None:
        signal.signal(signal.SIGTERM, self._on_sigterm)
        if self.init_fn is not None:
            self.init_fn(worker_id)

    def _on_sigterm(self, signum, frame) -> None:
        if self.main_exiting.is_set():
            os._exit(0)


def record_preemption(checkpoint: str) -> None:
    """Tell tools/dist_train.sh (through :data:`PREEMPTED_FILE_ENV`) that
    this process was preempted after ``checkpoint`` was written."""
    path: Optional[str] = os.environ.get(PREEMPTED_FILE_ENV)
    if path:
        with open(path, 'w') as f:
            f.write(checkpoint + '\n')
