"""Config values of the wrong type or range are refused where mmkr reads
them, naming the option, the value and what is allowed; tools/train.py
refuses them before the runner makes a work dir."""
import os.path as osp
import re
import subprocess
import sys

import pytest
from mmpretrain.registry import HOOKS, MODELS

import mmkr  # noqa: F401
from mmkr.models.layers import DynamicConv2d, DynamicLinear
from mmkr.utils import check_model_config

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
DEMO = osp.join(REPO, 'configs/demo/resnet18_kr4_digits.py')


def build_backbone(**options):
    cfg = dict(type='KRBackbone',
               backbone=dict(type='ResNet', depth=18, base_channels=8),
               kernel_num=2,
               kr_dims=4)
    return MODELS.build({**cfg, **options})


@pytest.mark.parametrize('option, value, message', [
    ('kr_dims', '64', "KRBackbone: kr_dims must be an integer (>= 1 with KR "
     "on), got '64' (str)"),
    ('kr_dims', 16.5, 'KRBackbone: kr_dims must be an integer (>= 1 with KR '
     'on), got 16.5 (float)'),
    ('kernel_num', 'abc', "KRBackbone: kernel_num must be an integer >= 1, "
     "got 'abc' (str)"),
    ('kernel_num', 0, 'KRBackbone: kernel_num must be an integer >= 1, got '
     '0'),
    ('with_kr', 'yes', "KRBackbone: with_kr must be True or False, got "
     "'yes' (str)"),
    ('freq_size', 8.0, 'KRBackbone: freq_size must be an integer >= 1, got '
     '8.0 (float)'),
    ('reduction', '1/16', "KRBackbone: reduction must be a number > 0, got "
     "'1/16' (str)"),
    ('attention_norm', 'gn', "KRBackbone: attention_norm must be one of "
     "['ln', 'bn'], got 'gn' (str)"),
])
def test_kr_backbone_options(option, value, message):
    with pytest.raises((TypeError, ValueError)) as error:
        build_backbone(**{option: value})
    assert str(error.value) == message
    # the config check says the same before anything is built
    with pytest.raises(type(error.value)) as error:
        check_model_config(
            dict(backbone=dict(type='KRBackbone', **{option: value})))
    assert str(error.value) == message.replace(
        'KRBackbone:', 'model.backbone (KRBackbone):')


@pytest.mark.parametrize('layer, option, value, message', [
    (DynamicConv2d, 'kr_dims', 16.5,
     'DynamicConv2d: kr_dims must be an integer >= 0 (0: no KR), got 16.5 '
     '(float)'),
    (DynamicConv2d, 'kernel_num', '4',
     "DynamicConv2d: kernel_num must be an integer >= 1, got '4' (str)"),
    (DynamicLinear, 'kr_dims', '64',
     "DynamicLinear: kr_dims must be an integer >= 0 (0: no KR), got '64' "
     '(str)'),
])
def test_layer_options(layer, option, value, message):
    with pytest.raises(TypeError, match=f'^{re.escape(message)}$'):
        layer(8, 8, *((3, ) if layer is DynamicConv2d else ()),
              **{option: value})


@pytest.mark.parametrize('cfg, message', [
    (dict(type='KRLinearClsHead', num_classes=10, in_channels='128',
          kr_dims=64),
     "KRLinearClsHead: in_channels must be an integer >= 1, got '128' "
     '(str)'),
    (dict(type='KRLinearClsHead', num_classes=10, in_channels=128,
          kr_dims=64.0),
     'KRLinearClsHead: kr_dims must be an integer >= 1, got 64.0 (float)'),
])
def test_head_options(cfg, message):
    with pytest.raises(TypeError) as error:
        MODELS.build(cfg)
    assert str(error.value) == message


@pytest.mark.parametrize('cfg, message', [
    (dict(type='KRTemperatureHook', anneal_epochs='10'),
     "KRTemperatureHook: anneal_epochs must be a number > 0, got '10' "
     '(str)'),
    (dict(type='AttentionStatsHook', interval=2.5),
     'AttentionStatsHook: interval must be an integer >= 1, got 2.5 '
     '(float)'),
])
def test_hook_options(cfg, message):
    with pytest.raises(TypeError) as error:
        HOOKS.build(cfg)
    assert str(error.value) == message


def test_a_kr_backbone_returning_d_under_a_head_that_does_not_read_it():
    with pytest.raises(ValueError) as error:
        check_model_config(
            dict(backbone=dict(type='KRBackbone', return_kr=True),
                 head=dict(type='LinearClsHead', num_classes=10,
                           in_channels=128)))
    message = str(error.value)
    assert 'model.head (LinearClsHead) does not read it' in message
    assert "head=dict(type='KRLinearClsHead'" in message
    assert 'model.backbone.return_kr=False' in message
    check_model_config(
        dict(backbone=dict(type='KRBackbone', return_kr=True),
             head=dict(type='KRLinearClsHead')))


def train(tmp_path, *args):
    work_dir = tmp_path / 'run'
    result = subprocess.run(
        [sys.executable, 'tools/train.py', DEMO, '--work-dir',
         str(work_dir), *args],
        cwd=REPO, capture_output=True, text=True, timeout=120)
    return result, work_dir


@pytest.mark.parametrize('options, message', [
    (['model.backbone.kernel_num=abc'],
     "model.backbone (KRBackbone): kernel_num must be an integer >= 1, got "
     "'abc' (str)"),
    (['model.head.type=LinearClsHead', 'model.head.kr_dims=None'],
     'model.backbone.return_kr=True appends d_L'),
])
def test_train_refuses_before_making_a_work_dir(tmp_path, options, message):
    result, work_dir = train(tmp_path, '--cfg-options', *options)
    assert result.returncode == 1
    assert message in result.stderr
    assert 'Traceback' not in result.stderr
    assert not work_dir.exists()
