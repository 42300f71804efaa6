"""mmkr's models in mmpretrain's hub: names, configs, metafiles, weights,
the inferencer, published checkpoints and the packaged configs."""
import glob
import hashlib
import os
import os.path as osp
import shutil
import subprocess
import sys
import zipfile

import mmcv
import numpy as np
import pytest
import torch
import yaml
from mmengine.logging import MessageHub
from PIL import Image

import mmkr  # noqa: F401  (registers mmkr's model index)
import mmpretrain
from mmpretrain.apis import ImageClassificationInferencer, ModelHub

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
# Not classification models of the zoo: bases, and MMDet / MMSeg configs.
NOT_IN_ZOO = ('_base_', 'downstream')


def metafile_models():
    with open(osp.join(ROOT, 'model-index.yml')) as f:
        imports = yaml.safe_load(f)['Import']
    models = {}
    for path in imports:
        with open(osp.join(ROOT, path)) as f:
            for model in yaml.safe_load(f)['Models']:
                models[model['Name']] = model
    return models


def test_every_config_has_a_metafile_entry():
    configs = {
        osp.relpath(p, ROOT)
        for p in glob.glob(osp.join(ROOT, 'configs', '*', '*.py'))
        if p.split(os.sep)[-2] not in NOT_IN_ZOO
    }
    listed = {m['Config'] for m in metafile_models().values()}
    assert sorted(configs - listed) == [], 'configs without metafile entry'
    assert sorted(listed - configs) == [], 'metafile entries without config'
    for name, model in metafile_models().items():
        assert name == osp.splitext(osp.basename(model['Config']))[0]


def test_metafiles_list_no_unmeasured_results_or_untrained_weights():
    for name, model in metafile_models().items():
        # Results are mmkr's own measurements (none yet); the poster's
        # numbers are labelled as such in Metadata.
        assert model.get('Results') is None, name
        assert model.get('Weights') is None, name
        assert model['Metadata']['Parameters'] > 0, name


def test_list_and_get_models():
    names = mmpretrain.list_models('*kr*')
    assert {'resnet18_kr1', 'resnet18_kr4'} <= set(names)
    assert all('kr' in n for n in names)
    model = mmpretrain.get_model('resnet18_kr4')
    backbone = model.backbone
    assert type(backbone).__name__ == 'KRBackbone'
    assert backbone.dynamic_layers['layer1.0.conv1'].kernel_num == 4
    params = sum(p.numel() for p in model.parameters())
    assert params == metafile_models()['resnet18_kr4']['Metadata'][
        'Parameters']


def test_model_without_weights_refuses_pretrained_true():
    with pytest.raises(ValueError,
                       match="'resnet18_kr1' has no released weights yet .*"
                       'pretrained=False'):
        mmpretrain.get_model('resnet18_kr1', pretrained=True)
    with pytest.raises(ValueError, match='no released weights'):
        ImageClassificationInferencer('resnet18_kr1')


def training_checkpoint(path, state_dict, classes):
    """What mmengine's Runner saves: training state around the weights."""
    hub = MessageHub.get_instance('zoo_test')
    hub.update_scalar('train/loss', 0.5)
    param = torch.nn.Parameter(torch.ones(2))
    optimizer = torch.optim.SGD([param], lr=0.1, momentum=0.9)
    param.grad = torch.ones(2)
    optimizer.step()
    torch.save(
        dict(meta=dict(epoch=100, dataset_meta=dict(classes=classes),
                       seed=np.int64(3)),
             state_dict=state_dict,
             optimizer=optimizer.state_dict(),
             message_hub=hub.state_dict(),
             param_schedulers=[dict(milestones={30: 1})]), path)


@pytest.fixture(scope='module')
def published(tmp_path_factory):
    """resnet18_kr1 with 10 classes, trained (randomly), published with
    tools/model_converters/publish_model.py."""
    tmp = tmp_path_factory.mktemp('publish')
    torch.manual_seed(0)
    model = mmpretrain.get_model('resnet18_kr1', head=dict(num_classes=10))
    classes = [f'class{i}' for i in range(10)]
    training_checkpoint(tmp / 'epoch_100.pth', model.state_dict(), classes)
    out = subprocess.run([
        sys.executable, 'tools/model_converters/publish_model.py',
        str(tmp / 'epoch_100.pth'),
        str(tmp / 'resnet18_kr1_digits')
    ], cwd=ROOT, check=True, capture_output=True, text=True)
    path = out.stdout.strip().splitlines()[-1]
    return path, model, classes


def test_published_checkpoint(published):
    path, model, _ = published
    with open(path, 'rb') as f:
        digest = hashlib.sha256(f.read()).hexdigest()
    assert osp.basename(path) == f'resnet18_kr1_digits-{digest[:8]}.pth'
    checkpoint = torch.load(path, weights_only=True)
    assert checkpoint.keys() == {'meta', 'state_dict'}
    assert checkpoint['meta']['epoch'] == 100
    assert 'seed' not in checkpoint['meta']  # a numpy scalar: not plain data
    for key, value in model.state_dict().items():
        torch.testing.assert_close(checkpoint['state_dict'][key], value)


def test_inferencer_with_mmkr_name(published, tmp_path):
    path, model, classes = published
    image = tmp_path / 'image.jpg'
    Image.fromarray(
        np.random.default_rng(0).integers(0, 255, (48, 64, 3),
                                          dtype=np.uint8)).save(image)
    inferencer = ImageClassificationInferencer(
        'resnet18_kr1', pretrained=path, head=dict(num_classes=10))
    result = inferencer(str(image))[0]
    assert result['pred_class'] in classes
    assert len(result['pred_scores']) == 10

    img = mmcv.imread(str(image))
    data = inferencer.pipeline(
        dict(img=img, img_shape=img.shape[:2], ori_shape=img.shape[:2]))
    batch = model.data_preprocessor(
        dict(inputs=[data['inputs']], data_samples=[data['data_samples']]))
    with torch.no_grad():
        expected = model.eval()(batch['inputs'], mode='tensor').softmax(1)[0]
    np.testing.assert_allclose(
        result['pred_scores'], expected.numpy(), rtol=1e-4, atol=1e-6)


def test_wheel_ships_the_model_index(tmp_path):
    """A wheel install (no source tree) finds model-index.yml and the
    configs in mmkr/.mim; an editable install reads the source tree."""
    src = tmp_path / 'src'
    src.mkdir()
    for name in ('setup.py', 'MANIFEST.in', 'README.md', 'model-index.yml'):
        shutil.copy(osp.join(ROOT, name), src / name)
    for name in ('mmkr', 'configs', 'requirements'):
        shutil.copytree(osp.join(ROOT, name), src / name,
                        ignore=shutil.ignore_patterns('__pycache__', '.mim'))
    subprocess.run([
        sys.executable, '-m', 'pip', 'wheel', '--no-deps',
        '--no-build-isolation', '-q', '-w',
        str(tmp_path / 'dist'),
        str(src)
    ], check=True, capture_output=True)
    wheel, = glob.glob(str(tmp_path / 'dist' / '*.whl'))
    names = zipfile.ZipFile(wheel).namelist()
    assert 'mmkr/.mim/model-index.yml' in names
    assert 'mmkr/.mim/configs/kr/resnet18_kr4.py' in names
    assert 'mmkr/.mim/configs/_base_/models/kr_resnet18.py' in names

    site = tmp_path / 'site'
    zipfile.ZipFile(wheel).extractall(site)
    probe = ('import mmkr, mmpretrain\n'
             'from mmpretrain.apis import ModelHub\n'
             'print(mmkr.__file__)\n'
             'print(ModelHub.get("resnet18_kr4").config.filename)\n')
    out = subprocess.run([sys.executable, '-c', probe],
                         env=dict(os.environ, PYTHONPATH=str(site)),
                         cwd=str(tmp_path), check=True, capture_output=True,
                         text=True).stdout.splitlines()
    assert out[-2] == str(site / 'mmkr' / '__init__.py')
    assert out[-1] == str(site / 'mmkr' / '.mim' / 'configs' / 'kr' /
                          'resnet18_kr4.py')
    editable = ModelHub.get('resnet18_kr4').config.filename
    assert editable == osp.join(ROOT, 'configs', 'kr', 'resnet18_kr4.py')
