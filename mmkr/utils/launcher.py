"""Distributed start-up where CUDA is absent."""
import datetime
import os

import torch
import torch.distributed as dist
from mmengine.config import Config
from mmengine.registry import MODEL_WRAPPERS
from torch.nn.parallel import DistributedDataParallel


def init_cpu_distributed(cfg: Config) -> None:
    """Start the gloo process group of a ``--launcher pytorch`` job on a
    machine without CUDA, and make ``cfg`` describe it.

    mmengine 0.10.7's ``init_dist`` calls ``torch.cuda.set_device`` for the
    pytorch launcher whatever the backend, and wraps the model in DDP with
    ``device_ids=[LOCAL_RANK]``, which DDP rejects for a CPU module. The
    runner skips ``init_dist`` when a process group exists, so this starts
    one from torchrun's environment (RANK, WORLD_SIZE, MASTER_ADDR,
    MASTER_PORT), records ``env_cfg.dist_cfg.backend='gloo'`` and wraps the
    model without device ids. With CUDA, or any other launcher, it does
    nothing and mmengine starts the job as usual (nccl on GPUs).
    """
    if (cfg.get('launcher', 'none') != 'pytorch'
            or torch.cuda.is_available() or dist.is_initialized()):
        return
    missing = [
        key for key in ('RANK', 'WORLD_SIZE', 'MASTER_ADDR', 'MASTER_PORT')
        if key not in os.environ
    ]
    if missing:
        raise RuntimeError(
            f'--launcher pytorch needs the environment of torchrun; '
            f'{", ".join(missing)} not set. Start the job with '
            'tools/dist_train.sh or tools/dist_test.sh.')
    cfg.merge_from_dict({'env_cfg.dist_cfg.backend': 'gloo'})
    timeout = cfg.env_cfg.dist_cfg.get('timeout')
    # mmengine's dist_cfg gives the timeout in seconds
    kwargs = {}
    if timeout is not None:
        kwargs['timeout'] = datetime.timedelta(seconds=timeout)
    dist.init_process_group(backend='gloo', init_method='env://', **kwargs)

    # the runner's own default wrapper, without device ids
    wrapper = cfg.get('model_wrapper_cfg') or dict(
        type='MMDistributedDataParallel',
        broadcast_buffers=False,
        find_unused_parameters=cfg.get('find_unused_parameters', False))
    wrapper.setdefault('type', 'MMDistributedDataParallel')
    if issubclass(MODEL_WRAPPERS.get(wrapper['type']),
                  DistributedDataParallel):
        wrapper['device_ids'] = None
    cfg.model_wrapper_cfg = wrapper
