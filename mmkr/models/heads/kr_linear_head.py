from typing import Tuple

import torch
from mmpretrain.registry import MODELS

from mmkr.utils.validation import check_int
from .dropout_linear_head import DropoutLinearClsHead


@MODELS.register_module()
class KRLinearClsHead(DropoutLinearClsHead):
    """Linear classifier over the pooled feature and the final kernel
    representation together: logits = W · dropout(cat[GAP(X_L), d_L]) + b.

    It reads the outputs of a :class:`KRBackbone` built with
    ``return_kr=True``, whose last two items are the last feature map and
    d_L, so the model needs no neck: a 4D feature is average-pooled here, a
    2D one (a ViT's class token) is used as it is. Both branches are trained
    by the one classification loss.

    Args:
        num_classes (int): number of classes.
        in_channels (int): C of the last feature.
        kr_dims (int): D, the size of d_L.
        **kwargs: the other options of :class:`DropoutLinearClsHead`
            (``dropout``).

    Shapes:
        feats: (..., (B, C, H, W) or (B, C), (B, D)) -> logits (B, classes)
    """

    reads_kr = True  # the last item of its input is d_L

    def __init__(self, num_classes: int, in_channels: int, kr_dims: int,
                 **kwargs):
        for name, value in dict(num_classes=num_classes,
                                in_channels=in_channels,
                                kr_dims=kr_dims).items():
            check_int('KRLinearClsHead', name, value, minimum=1)
        self.kr_dims = kr_dims
        super().__init__(num_classes, in_channels + kr_dims, **kwargs)
        self.feat_channels = in_channels

    def pre_logits(self, feats: Tuple[torch.Tensor]) -> torch.Tensor:
        if len(feats) < 2:
            raise ValueError(
                'KRLinearClsHead needs (..., feature, d_L) from a KRBackbone '
                f'built with return_kr=True; got {len(feats)} output(s)')
        feat, kr = feats[-2], feats[-1]
        if feat.dim() == 4:
            feat = feat.mean(dim=(2, 3))
        if feat.shape[1:] != (self.feat_channels, ) or kr.shape[1:] != (
                self.kr_dims, ):
            raise ValueError(
                f'KRLinearClsHead expects a feature of {self.feat_channels} '
                f'channels and d_L of {self.kr_dims}, got '
                f'{tuple(feat.shape)} and {tuple(kr.shape)}')
        return torch.cat([feat, kr.to(feat.dtype)], dim=1)
