# mmpretrain's runtime with mmkr's modules registered.
_base_ = 'mmpretrain::_base_/default_runtime.py'

custom_imports = dict(imports=['mmkr'], allow_failed_imports=False)
