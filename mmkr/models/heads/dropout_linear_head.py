from typing import Tuple

import torch
import torch.nn as nn
from mmpretrain.models.heads import LinearClsHead
from mmpretrain.registry import MODELS

from mmkr.utils.validation import check_number


@MODELS.register_module()
class DropoutLinearClsHead(LinearClsHead):
    """mmpretrain's linear classifier with dropout on its input:
    logits = W · dropout(x) + b, as ODConv's and DCD's networks classify.

    Args:
        num_classes (int): number of classes.
        in_channels (int): size of the pre-logits feature.
        dropout (float): drop probability; 0 gives :class:`LinearClsHead`.
        **kwargs: the other options of :class:`LinearClsHead`.
    """

    def __init__(self, num_classes: int, in_channels: int,
                 dropout: float = 0., **kwargs):
        super().__init__(num_classes, in_channels, **kwargs)
        check_number(type(self).__name__, 'dropout', dropout, minimum=0)
        if not 0 <= dropout < 1:
            raise ValueError(f'dropout must be in [0, 1), got {dropout}')
        self.dropout = nn.Dropout(dropout) if dropout else nn.Identity()

    def forward(self, feats: Tuple[torch.Tensor]) -> torch.Tensor:
        return self.fc(self.dropout(self.pre_logits(feats)))
