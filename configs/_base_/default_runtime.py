# mmpretrain's runtime with mmkr's modules registered, made safe against
# preemption (README, "Preemption and resume"): checkpoints written
# atomically, a resume that skips broken ones and continues inside an epoch
# exactly, and SIGTERM saving a checkpoint before the run exits with 75.
_base_ = 'mmpretrain::_base_/default_runtime.py'

custom_imports = dict(imports=['mmkr'], allow_failed_imports=False)

runner_type = 'ResumableRunner'
default_hooks = dict(checkpoint=dict(type='PreemptibleCheckpointHook'))
