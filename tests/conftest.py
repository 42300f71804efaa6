import pytest
from mmengine.registry import DefaultScope


@pytest.fixture(autouse=True)
def mmpretrain_default_scope():
    """Build from mmpretrain's registries in every test: a test that ran an
    MMDetection or MMSegmentation Runner before, in the same worker, leaves
    its own default scope behind."""
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        yield
