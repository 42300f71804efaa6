"""http(s) checkpoints: download, cache, hash check and refusals, through a
real HTTP server on 127.0.0.1 and mmengine's own loading entry points."""
import argparse
import hashlib
import http.server
import os
import threading

import pytest
import torch
from mmengine.runner import CheckpointLoader, load_checkpoint
from mmpretrain.registry import MODELS

import mmkr  # noqa: F401  (registers the safe http loader)
from mmkr.utils import CheckpointIntegrityError, publish_checkpoint


class ZooServer:
    """Serves ``files`` (path -> bytes) on 127.0.0.1; a path in
    ``truncate`` announces its full length but sends half and hangs up."""

    def __init__(self):
        self.files, self.truncate, self.requests = {}, set(), []
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):

            def do_GET(self):
                server.requests.append(self.path)
                body = server.files.get(self.path)
                if body is None:
                    self.send_error(404)
                    return
                self.send_response(200)
                self.send_header('Content-Length', str(len(body)))
                self.end_headers()
                if self.path in server.truncate:
                    body = body[:len(body) // 2]
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(('127.0.0.1', 0),
                                                     Handler)
        self.thread = threading.Thread(
            target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def add(self, name: str, body: bytes, truncate: bool = False) -> str:
        path = f'/zoo/{name}'
        self.files[path] = body
        if truncate:
            self.truncate.add(path)
        return f'http://127.0.0.1:{self.httpd.server_port}{path}'

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server():
    zoo = ZooServer()
    yield zoo
    zoo.close()


@pytest.fixture
def cache(tmp_path, monkeypatch):
    """torch.hub's checkpoint cache, in a fresh TORCH_HOME."""
    monkeypatch.setenv('TORCH_HOME', str(tmp_path / 'torch'))
    path = tmp_path / 'torch' / 'hub' / 'checkpoints'
    path.mkdir(parents=True)
    (path / 'users-own-1234abcd.pth').write_bytes(b'not ours to touch')
    return path


def snapshot(directory):
    return {p.name: p.read_bytes() for p in directory.iterdir()}


def backbone(**kwargs):
    cfg = dict(
        type='KRBackbone',
        backbone=dict(type='ResNet', depth=kwargs.pop('depth', 18),
                      out_indices=kwargs.pop('out_indices', (3, ))),
        kr_dims=kwargs.pop('kr_dims', 16), **kwargs)
    return MODELS.build(cfg)


def published(tmp_path, state_dict, name='kr') -> bytes:
    path = publish_checkpoint(
        {'state_dict': state_dict, 'meta': {'epoch': 3}}, str(tmp_path / name))
    with open(path, 'rb') as f:
        return f.read()


def hashed_name(stem: str, body: bytes) -> str:
    return f'{stem}-{hashlib.sha256(body).hexdigest()[:8]}.pth'


def test_download_is_cached_and_reused(tmp_path, server, cache):
    state = backbone(kernel_num=4).state_dict()
    body = published(tmp_path, state)
    url = server.add(hashed_name('resnet18_kr4', body), body)

    checkpoint = CheckpointLoader.load_checkpoint(url, map_location='cpu')
    assert checkpoint.keys() == {'meta', 'state_dict'}
    for key, value in state.items():
        torch.testing.assert_close(checkpoint['state_dict'][key], value)
    cached = cache / url.rsplit('/', 1)[1]
    assert cached.read_bytes() == body

    CheckpointLoader.load_checkpoint(url, map_location='cpu')
    assert server.requests == ['/zoo/' + cached.name]
    assert not [p for p in os.listdir(cache) if p.endswith('.part')]


def test_corrupted_download_is_refused(tmp_path, server, cache):
    body = published(tmp_path, backbone().state_dict())
    corrupted = bytearray(body)
    corrupted[len(body) // 2] ^= 0xFF
    url = server.add(hashed_name('kr', body), bytes(corrupted))
    before = snapshot(cache)
    with pytest.raises(CheckpointIntegrityError,
                       match=r'refused .*its sha256 is [0-9a-f]{64}, the '
                       r'file name says [0-9a-f]{8}'):
        CheckpointLoader.load_checkpoint(url)
    assert snapshot(cache) == before


def test_truncated_download_is_refused(tmp_path, server, cache):
    body = published(tmp_path, backbone().state_dict())
    url = server.add(hashed_name('kr', body), body, truncate=True)
    before = snapshot(cache)
    with pytest.raises(CheckpointIntegrityError,
                       match=f'truncated: received {len(body) // 2} of '
                       f'{len(body)} bytes'):
        CheckpointLoader.load_checkpoint(url)
    assert snapshot(cache) == before


def test_bad_download_never_replaces_a_cached_file(tmp_path, server, cache):
    """A good file, once cached, is served from the cache; a cached file
    that changed afterwards is refused and left for the user."""
    body = published(tmp_path, backbone().state_dict())
    name = hashed_name('kr', body)
    good = server.add(name, body)
    CheckpointLoader.load_checkpoint(good)
    server.files['/zoo/' + name] = b'evil'
    CheckpointLoader.load_checkpoint(good)
    assert (cache / name).read_bytes() == body

    (cache / name).write_bytes(body[:-10])
    with pytest.raises(CheckpointIntegrityError,
                       match='does not match the sha256 prefix .* changed '
                       'after download. Delete it'):
        CheckpointLoader.load_checkpoint(good)
    assert (cache / name).read_bytes() == body[:-10]


def test_url_without_hash_is_refused(tmp_path, server, cache):
    body = published(tmp_path, backbone().state_dict())
    url = server.add('kr_latest.pth', body)
    with pytest.raises(CheckpointIntegrityError,
                       match="'kr_latest.pth' carries no sha256 prefix"):
        CheckpointLoader.load_checkpoint(url)
    assert server.requests == []


def test_non_checkpoint_files_are_refused(tmp_path, server, cache):
    junk = b'<html>503 Service Unavailable</html>' * 20
    url = server.add(hashed_name('junk', junk), junk)
    with pytest.raises(CheckpointIntegrityError,
                       match='not a readable PyTorch checkpoint'):
        CheckpointLoader.load_checkpoint(url)

    # A truncated file published under its own (matching) hash.
    body = published(tmp_path, backbone().state_dict())
    cut = body[:len(body) // 3]
    url = server.add(hashed_name('cut', cut), cut)
    with pytest.raises(CheckpointIntegrityError,
                       match='not a readable PyTorch checkpoint'):
        CheckpointLoader.load_checkpoint(url)

    path = tmp_path / 'tensor.pth'
    torch.save([torch.ones(2)], path)
    body = path.read_bytes()
    url = server.add(hashed_name('list', body), body)
    with pytest.raises(CheckpointIntegrityError,
                       match='expected a state dict of tensors'):
        CheckpointLoader.load_checkpoint(url)


def test_pickled_objects_are_refused(tmp_path, server, cache):
    """weights_only=True: a checkpoint with arbitrary objects never runs."""
    path = tmp_path / 'obj.pth'
    torch.save({'state_dict': {'w': torch.ones(1)},
                'args': argparse.Namespace(lr=0.1)}, path)
    body = path.read_bytes()
    url = server.add(hashed_name('obj', body), body)
    with pytest.raises(CheckpointIntegrityError,
                       match='holds Python objects besides tensors'):
        CheckpointLoader.load_checkpoint(url)


def test_pretrained_init_cfg_with_prefix(tmp_path, server, cache):
    """A KR classifier's checkpoint (d_L head, so the last layer has a KR
    generator) initialises a multi-scale detection-style backbone."""
    torch.manual_seed(0)
    classifier = backbone(kernel_num=4, return_kr=True)
    state = {f'backbone.{k}': v for k, v in classifier.state_dict().items()}
    state['head.fc.weight'] = torch.randn(10, 512 + 16)
    body = published(tmp_path, state)
    url = server.add(hashed_name('cls', body), body)

    torch.manual_seed(1)
    model = backbone(kernel_num=4, out_indices=(0, 1, 2, 3),
                     init_cfg=dict(type='Pretrained', checkpoint=url,
                                   prefix='backbone.'))
    model.init_weights()
    own = model.state_dict()
    assert own.keys() < classifier.state_dict().keys()
    for key, value in own.items():
        torch.testing.assert_close(value, classifier.state_dict()[key])


@pytest.mark.parametrize('saved, model, message', [
    (dict(kernel_num=4), dict(kernel_num=1),
     r"dynamic layer 'backbone.layer1.0.conv1' \(DynamicConv2d, "
     r"method='odconv', kernel_num=1.*\(4, 64, 64, 3, 3\) in the "
     r'checkpoint and \(1, 64, 64, 3, 3\) in the model'),
    (dict(kr_dims=32), dict(kr_dims=16),
     r'encoder.proj.weight has shape \(32, 120\) in the checkpoint and '
     r'\(16, 120\) in the model \(kr_dims=16 in the model\)'),
    (dict(depth=34), dict(depth=18),
     r'has \d+ tensors that KRBackbone lacks \(backbone.layer1.2.bn1.bias.*'
     r'another architecture'),
    (dict(method='dyconv', kernel_num=4), dict(kernel_num=4),
     r"dynamic layer 'backbone.layer1.0.conv1' \(DynamicConv2d, "
     r"method='odconv'\): it holds a 'dyconv' layer there, this model a "
     r"'odconv' one"),
])
def test_wrong_architecture_is_refused(tmp_path, server, cache, saved,
                                       model, message):
    body = published(tmp_path, backbone(**saved).state_dict())
    url = server.add(hashed_name('arch', body), body)
    with pytest.raises(ValueError, match=message):
        load_checkpoint(backbone(**model), url)


def test_missing_keys_are_refused(tmp_path, server, cache):
    state = backbone().state_dict()
    del state['backbone.layer2.0.conv2.generator.heads.channel.weight']
    del state['encoder.norm.bias']
    body = published(tmp_path, state)
    url = server.add(hashed_name('partial', body), body)
    with pytest.raises(ValueError,
                       match=r'lacks 1 of its .* tensors \(encoder.norm.bias'):
        load_checkpoint(backbone(), url)
    state['encoder.norm.bias'] = torch.zeros(16)
    body = published(tmp_path, state)
    url = server.add(hashed_name('partial', body), body)
    with pytest.raises(ValueError,
                       match=r"'backbone.layer2.0.conv2': it lacks 1 of its"
                       r' .* \(backbone.layer2.0.conv2.generator.heads'):
        load_checkpoint(backbone(), url)


def test_static_checkpoint_is_refused_with_a_hint(tmp_path, server, cache):
    static = MODELS.build(dict(type='ResNet', depth=18)).state_dict()
    body = published(tmp_path, static)
    url = server.add(hashed_name('static', body), body)
    with pytest.raises(ValueError,
                       match='no kernel generator at all: a static checkpoint'
                       ' must first be converted with tools/model_converters/'
                       'static_to_kr.py'):
        load_checkpoint(backbone(), url, revise_keys=[(r'^', 'backbone.')])
