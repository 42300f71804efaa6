# ResNet-18 + KR on KernelWarehouse (1x) (beyond the poster): KernelWarehouse's
# layers and warehouses (../kernelwarehouse/resnet18_kw1x.py) with the KR path:
# the attention's FC reads cat[d, GAP(X)], d_0 comes from the image, and the KR
# head classifies [GAP(feature), d_L]; the authors' recipe.
_base_ = '../kernelwarehouse/resnet18_kw1x.py'

kr_dims = 64
model = dict(
    backbone=dict(with_kr=True, kr_dims=kr_dims, return_kr=True),
    neck=None,
    # KR's head rule (docs/initialisation.md), not kw_resnet.py's classifier
    head=dict(
        type='KRLinearClsHead',
        kr_dims=kr_dims,
        init_cfg=dict(
            _delete_=True, type='Normal', layer='Linear', std=0.01)))
