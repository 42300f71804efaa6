from typing import Optional, Tuple

import torch
import torch.nn as nn
from mmpretrain.models.heads import ClsHead
from mmpretrain.registry import MODELS

from ..layers import DCDGenerator, SqueezeExciteFusion


@MODELS.register_module()
class DCDClsHead(ClsHead):
    """DCD's dynamic classifier (``DYCls``): the linear classifier decomposed
    as its convolutions are, logits = Λ ⊙ (W_0 x + b) + P (BN_2(Φ z) + z),
    z = BN_1(Q^T x), with Λ and Φ from h~ = SE(W_F x) of the same input.

    The latent width L and the squeeze width A are both 32, as in DCD's
    ResNet and MobileNetV2; ``dropout`` acts on x before everything, as the
    authors' ``--dropout`` does.

    Args:
        num_classes (int): number of classes.
        in_channels (int): C of the pooled feature x.
        dropout (float): drop probability on x.
        dim (int): L, the rank of the dynamic fusion Φ.
        squeeze (int): A, the width of h~.
        init_cfg (dict, optional): None keeps PyTorch's default for every
            linear map, as DCD's ResNet does (its ``DYCls``,
            liyunsheng13/dcd models/imagenet/resnet_dcd.py); DCD's
            MobileNetV2 draws them N(0, 0.01):
            ``dict(type='Normal', layer='Linear', std=0.01)``.

    Shapes:
        feats: (..., (B, C)) -> logits (B, num_classes)
    """

    def __init__(self,
                 num_classes: int,
                 in_channels: int,
                 dropout: float = 0.,
                 dim: int = 32,
                 squeeze: int = 32,
                 init_cfg: Optional[dict] = None,
                 **kwargs):
        super().__init__(init_cfg=init_cfg, **kwargs)
        self.num_classes = num_classes
        self.in_channels = in_channels
        self.dropout = nn.Dropout(dropout) if dropout else nn.Identity()
        self.fc = nn.Linear(in_channels, num_classes)
        self.q = nn.Linear(in_channels, dim, bias=False)
        self.p = nn.Linear(dim, num_classes, bias=False)
        self.bn1 = nn.BatchNorm1d(dim)
        self.bn2 = nn.BatchNorm1d(dim)
        self.fusion = SqueezeExciteFusion(in_channels, 0, squeeze)
        self.generator = DCDGenerator(squeeze, num_classes, dim)

    def forward(self, feats: Tuple[torch.Tensor]) -> torch.Tensor:
        x = self.dropout(self.pre_logits(feats))
        att = self.generator.activate(self.generator(self.fusion(x)))
        z = self.bn1(self.q(x))
        z = self.bn2(torch.bmm(att.phi, z.unsqueeze(2)).squeeze(2)) + z
        return att.scale * self.fc(x) + self.p(z)
