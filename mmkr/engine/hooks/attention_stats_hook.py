from typing import Optional

from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper
from mmpretrain.registry import HOOKS

from ...analysis.attention import (AttentionRecorder, dynamic_layers_by_stage,
                                   stage_statistics)
from ...utils.validation import check_int

DATA_BATCH = Optional[dict]


@HOOKS.register_module()
class AttentionStatsHook(Hook):
    """Logs, every ``interval`` training iterations, what the kernel
    generators do, per stage, as scalars of the runner's visualizer (so
    TensorBoard or any other vis backend plots them):

    - ``attention/kernel_entropy/<stage>``: normalised entropy of the kernel
      attention, 1 = uniform over the K kernels, 0 = one kernel (the
      collapse that DyConv's temperature fights);
    - ``attention/channel|filter|spatial/<stage>``: mean attention of each
      of ODConv's feature heads;
    - ``attention/kr_norm/<stage>``: mean ||d_{i+1}||_2;
    - ``attention/temperature/<stage>``: the generators' temperature T.

    A stage is named as :func:`mmkr.analysis.attention.stage_of` says
    (``layer1``, ``layers.3``, ...); each value is the mean over the stage's
    layers of the batch mean (:func:`stage_statistics`). The step is the
    training iteration, counted from 1 as mmengine's LoggerHook does.

    Forward hooks are registered only for an iteration that logs, before
    it, and removed after it: other iterations run the model untouched. In
    a distributed job the values come from each rank's own batch, and the
    visualizer writes rank 0's.

    Args:
        interval (int): log every this many iterations. Defaults to 50.
    """

    priority = 'LOW'

    def __init__(self, interval: int = 50):
        check_int('AttentionStatsHook', 'interval', interval, minimum=1)
        self.interval = interval
        self._stages = None
        self._recorder: Optional[AttentionRecorder] = None

    def before_train_iter(self, runner, batch_idx: int,
                          data_batch: DATA_BATCH = None) -> None:
        if not self.every_n_train_iters(runner, self.interval):
            return
        if self._stages is None:
            model = runner.model.module if is_model_wrapper(
                runner.model) else runner.model
            self._stages = dynamic_layers_by_stage(model)
        layers = {
            name: layer
            for stage in self._stages.values()
            for name, layer in stage.items()
        }
        self._recorder = AttentionRecorder(layers)

    def after_train_iter(self, runner, batch_idx: int,
                         data_batch: DATA_BATCH = None,
                         outputs: Optional[dict] = None) -> None:
        if self._recorder is None:
            return
        recorder, self._recorder = self._recorder, None
        recorder.remove()
        scalars = stage_statistics(self._stages, recorder)
        runner.visualizer.add_scalars(
            {f'attention/{key}': value
             for key, value in scalars.items()},
            step=runner.iter + 1)
