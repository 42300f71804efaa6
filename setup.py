import os.path as osp

from setuptools import find_packages, setup
from setuptools.command.build_py import build_py


class BuildPyWithModelIndex(build_py):
    """Ships configs/ and model-index.yml as mmkr/.mim/ in wheels, where
    ``mmkr.utils.model_index_root`` finds them (as mmpretrain ships its
    own). An editable install reads them from the source tree instead."""

    def run(self):
        super().run()
        if getattr(self, 'editable_mode', False):
            return
        target = osp.join(self.build_lib, 'mmkr', '.mim')
        self.copy_tree('configs', osp.join(target, 'configs'))
        self.copy_file('model-index.yml', target)


def read_requirements(name):
    with open(osp.join('requirements', name)) as f:
        return [
            line.split('#')[0].strip() for line in f
            if line.split('#')[0].strip()
        ]


def read_version():
    namespace = {}
    with open(osp.join('mmkr', 'version.py')) as f:
        exec(f.read(), namespace)
    return namespace['__version__']


setup(
    name='mmkr',
    version=read_version(),
    description='Kernel Representation (KR) dynamic convolution for '
    'MMPretrain, MMDetection and MMSegmentation',
    long_description=open('README.md').read(),
    long_description_content_type='text/markdown',
    license='Apache License 2.0',
    packages=find_packages(exclude=('configs', 'tools', 'tests')),
    include_package_data=True,
    cmdclass=dict(build_py=BuildPyWithModelIndex),
    python_requires='>=3.8',
    # As mmpretrain: mmcv is installed the OpenMMLab way (mim, or a build for
    # the user's torch and CUDA), so it is listed in mminstall.txt only.
    install_requires=read_requirements('runtime.txt'),
    extras_require=dict(
        tests=read_requirements('tests.txt'),
        visualization=read_requirements('visualization.txt'),
        mim=read_requirements('mminstall.txt')),
    zip_safe=False)
