"""Measured execution-path choice for dynamic convolutions.

A dynamic conv can run one function by several exact paths whose speed
depends on the device: per-sample kernels cost memory traffic, the K-fold
formulation K times the multiply-adds. As ``torch.backends.cudnn.benchmark``
does for convolution algorithms, :class:`PathAutotuner` times every exact
path once per signature (layer geometry, input shape, dtype, device, memory
format, grad mode), caches the fastest and reuses it. Under
``torch.distributed`` every rank takes rank 0's choice, so all ranks run
the same kernels.
"""
import time
from typing import Callable, Dict, Hashable, Iterable, Optional, Sequence

import torch
import torch.distributed as dist
from mmengine.logging import print_log

# A timer maps (path, run) to seconds; ``run`` executes the path once.
Timer = Callable[[str, Callable[[], None]], float]


def wall_clock_timer(repeat: int = 3) -> Timer:
    """The median of ``repeat`` timed runs after one warm-up, synchronising
    CUDA around each."""

    def timer(path: str, run: Callable[[], None]) -> float:
        run()
        times = []
        for _ in range(repeat):
            if torch.cuda.is_available():
                torch.cuda.synchronize()
            start = time.perf_counter()
            run()
            if torch.cuda.is_available():
                torch.cuda.synchronize()
            times.append(time.perf_counter() - start)
        return sorted(times)[len(times) // 2]

    return timer


def agreed_choice(choice: str) -> str:
    """Rank 0's ``choice`` on every rank of a process group (``choice``
    itself without one)."""
    if not (dist.is_available() and dist.is_initialized()
            and dist.get_world_size() > 1):
        return choice
    box = [choice]
    dist.broadcast_object_list(box, src=0)
    return box[0]


class PathAutotuner:
    """Times candidate paths once per signature and remembers the fastest.

    Args:
        timer (callable, optional): how a path is timed; default
            :func:`wall_clock_timer`.

    Attributes:
        choices (dict): signature -> chosen path.
        timed (int): how many signatures were timed (cache misses).
    """

    def __init__(self, timer: Optional[Timer] = None):
        self.timer = timer or wall_clock_timer()
        self.choices: Dict[Hashable, str] = {}
        self.timed = 0

    def choose(self, signature: Hashable, paths: Sequence[str],
               runner: Callable[[str], Callable[[], None]],
               describe: str = '') -> str:
        """The cached choice for ``signature``, or the fastest of ``paths``
        (``runner(path)`` gives a callable that runs it once), agreed
        across ranks and logged once."""
        if signature in self.choices:
            return self.choices[signature]
        times = {path: self.timer(path, runner(path)) for path in paths}
        choice = agreed_choice(min(times, key=times.get))
        self.choices[signature] = choice
        self.timed += 1
        print_log(
            f'autotuned dynamic conv {describe}: {choice} (' + ', '.join(
                f'{path} {seconds * 1e3:.2f} ms'
                for path, seconds in times.items()) + ')', logger='current')
        return choice

    def clear(self):
        self.choices.clear()


# One cache for the process, as cuDNN's: equal layers share their timings.
AUTOTUNER = PathAutotuner()


def detached_inputs(tensors: Iterable[Optional[torch.Tensor]],
                    requires_grad: bool) -> list:
    """Fresh leaves with the values of ``tensors`` (None stays None), so that
    timing a path builds no graph onto the caller's."""
    return [
        None if t is None else t.detach().requires_grad_(requires_grad)
        for t in tensors
    ]
