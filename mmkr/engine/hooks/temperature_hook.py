from typing import Optional

from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper
from mmpretrain.registry import HOOKS

from ...models.layers import KernelGenerator
from ...utils.validation import check_number

DATA_BATCH = Optional[dict]


@HOOKS.register_module()
class KRTemperatureHook(Hook):
    """Anneals the attention temperature T of every kernel generator that
    has one (ODConv's and DyConv's; CondConv, DCD and WeightNet have none,
    and a model without any is refused).

    T falls linearly from ``init_temperature`` to ``final_temperature`` over
    the first ``anneal_epochs`` epochs, updated every iteration, and stays at
    ``final_temperature`` after (ODConv's and DyConv's schedule). T is a
    buffer of each generator, so checkpoints carry it and a resumed run or a
    test of a mid-schedule checkpoint uses the T that training used.

    Args:
        init_temperature (float): T at the first iteration. Defaults to 30.
        final_temperature (float): T from ``anneal_epochs`` on. Defaults to 1.
        anneal_epochs (float): length of the annealing. Defaults to 10.
    """

    priority = 'NORMAL'

    def __init__(self, init_temperature: float = 30.,
                 final_temperature: float = 1., anneal_epochs: float = 10.):
        for name, value in dict(init_temperature=init_temperature,
                                final_temperature=final_temperature,
                                anneal_epochs=anneal_epochs).items():
            check_number('KRTemperatureHook', name, value, above=0)
        self.init_temperature = init_temperature
        self.final_temperature = final_temperature
        self.anneal_epochs = anneal_epochs

    def temperature(self, iteration: int, iters_per_epoch: int) -> float:
        progress = iteration / (self.anneal_epochs * iters_per_epoch)
        return self.final_temperature + max(0., 1. - progress) * (
            self.init_temperature - self.final_temperature)

    def before_train_iter(self, runner, batch_idx: int,
                          data_batch: DATA_BATCH = None) -> None:
        model = runner.model.module if is_model_wrapper(
            runner.model) else runner.model
        value = self.temperature(runner.iter, len(runner.train_dataloader))
        for temperature in self._temperatures(model):
            temperature.fill_(value)

    @staticmethod
    def _temperatures(model) -> list:
        temperatures = [
            module.temperature for module in model.modules()
            if isinstance(module, KernelGenerator)
            and hasattr(module, 'temperature')
        ]
        if not temperatures:
            raise ValueError(
                'KRTemperatureHook found no kernel generator with a '
                'temperature in the model: only ODConv, DyConv and KR layers '
                'on them anneal one; remove the hook from the config of a '
                'CondConv, DCD or WeightNet model')
        return temperatures
