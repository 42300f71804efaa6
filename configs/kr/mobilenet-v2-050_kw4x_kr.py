# MobileNetV2 0.5x + KR on KernelWarehouse (4x) (beyond the poster):
# KernelWarehouse's layers and warehouses
# (../kernelwarehouse/mobilenet-v2-050_kw4x.py) with the KR path: the
# attention's FC reads cat[d, GAP(X)], d_0 comes from the image, and the KR
# head classifies [GAP(feature), d_L]; the authors' recipe.
_base_ = '../kernelwarehouse/mobilenet-v2-050_kw4x.py'

kr_dims = 64
model = dict(
    backbone=dict(with_kr=True, kr_dims=kr_dims, return_kr=True),
    neck=None,
    head=dict(type='KRLinearClsHead', kr_dims=kr_dims))
