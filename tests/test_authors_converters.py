"""The converters of ODConv's and DCD's released checkpoints.

Without the authors' code: each test builds, from an mmkr model with random
weights, the file the authors' training script writes (their key layout,
their 1x1-conv shapes, ``{'state_dict': ...}`` with DDP's ``module.``),
converts it and checks that every tensor comes back and the logits agree.
"""
import os
import os.path as osp
import subprocess
import sys

import mmpretrain
import pytest
import torch

from mmkr.models.utils import (authors_state_dict, convert_authors_checkpoint,
                               dcd_network, odconv_network)
from mmkr.models.utils.authors_checkpoints import build_model
from mmkr.models.utils.authors_networks import (dcd_mobilenetv2, dcd_resnet,
                                                odconv_mobilenetv2,
                                                odconv_resnet)

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))

# (the authors' network, the converter's detector); each network names its
# mmkr config
NETWORKS = {
    'odconv-resnet18-1x': (odconv_resnet(18, 1), odconv_network),
    'odconv-mobilenetv2-0.5x-4x': (odconv_mobilenetv2(0.5, 4),
                                   odconv_network),
    'dcd-resnet18': (dcd_resnet(18), dcd_network),
    'dcd-mobilenetv2-0.5x-no-dropout': (dcd_mobilenetv2(0.5, dropout=False),
                                        dcd_network),
}


def randomized(model: torch.nn.Module, seed: int) -> torch.nn.Module:
    """``model`` with every tensor of its state dict moved off its
    initialisation, in float64 and eval mode: weights perturbed, then the
    BatchNorm statistics measured on random images (as training would:
    with the initial ones, DCD's latent path grows without bound) and the
    counters drawn at random."""
    gen = torch.Generator().manual_seed(seed)
    model = model.double()
    with torch.no_grad():
        for param in model.parameters():
            param.add_(0.1 * torch.randn(param.shape, generator=gen,
                                         dtype=param.dtype))
        norms = [m for m in model.modules()
                 if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
        for norm in norms:
            norm.reset_running_stats()
            norm.momentum = None  # the mean over the calibration batches
        model.train()
        for _ in range(2):
            model(torch.randn(8, 3, 64, 64, generator=gen,
                              dtype=torch.float64), mode='tensor')
        for norm in norms:
            norm.momentum = 0.1
            norm.num_batches_tracked.fill_(
                int(torch.randint(1, 10**6, (), generator=gen)))
    return model.eval()


def authors_file(path, model, network, ddp=True, **extra):
    """The authors' training-script checkpoint of ``model``."""
    state = authors_state_dict(model.state_dict(), network, model)
    if ddp:
        state = {f'module.{k}': v for k, v in state.items()}
    torch.save(dict(epoch=100, best_acc1=torch.tensor(70.1),
                    state_dict=state, **extra), path)
    return state



@pytest.mark.parametrize('name', list(NETWORKS))
def test_round_trip(name, tmp_path):
    network, detector = NETWORKS[name]
    source = randomized(build_model(network.config), seed=1)
    path = str(tmp_path / 'model_best.pth.tar')
    authors_file(path, source, network, ddp=name.startswith('odconv'))

    found, state = convert_authors_checkpoint(path, detector, 'its method')
    assert found == network
    expected = source.state_dict()
    assert list(state) == list(expected)
    for key, value in expected.items():
        assert torch.equal(state[key], value), key

    converted = build_model(network.config).double().eval()
    converted.load_state_dict(state)
    images = torch.randn(2, 3, 64, 64, dtype=torch.float64)
    with torch.no_grad():
        torch.testing.assert_close(converted(images, mode='tensor'),
                                   source(images, mode='tensor'), rtol=0,
                                   atol=0)
