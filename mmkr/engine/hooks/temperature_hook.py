from typing import Optional

from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper
from mmpretrain.registry import HOOKS

from ...models.layers import (METHODS, DynamicLayer, TemperatureSchedule,
                              get_method)
from ...utils.validation import check_number

DATA_BATCH = Optional[dict]


@HOOKS.register_module()
class KRTemperatureHook(Hook):
    """Anneals the temperature of every dynamic layer whose method has one
    (the method registry's ``temperature``: ODConv's and DyConv's T,
    KernelWarehouse's τ); a model without any is refused.

    The temperature falls linearly, updated every iteration, from
    ``init_temperature`` to ``final_temperature`` over the first
    ``anneal_epochs`` epochs and stays at ``final_temperature`` after. Each
    of the three left None is the method's own (ODConv and DyConv: 30 to 1
    over 10 epochs; KernelWarehouse: 1 to 0). The temperature is a buffer
    of each generator, so checkpoints carry it and a resumed run or a test
    of a mid-schedule checkpoint uses the one that training used.

    Args:
        init_temperature (float, optional): the temperature at the first
            iteration.
        final_temperature (float, optional): the temperature from
            ``anneal_epochs`` on.
        anneal_epochs (float, optional): length of the annealing.
    """

    priority = 'NORMAL'

    def __init__(self, init_temperature: Optional[float] = None,
                 final_temperature: Optional[float] = None,
                 anneal_epochs: Optional[float] = None):
        bounds = dict(init_temperature=dict(minimum=0),
                      final_temperature=dict(minimum=0),
                      anneal_epochs=dict(above=0))
        for name, value in dict(init_temperature=init_temperature,
                                final_temperature=final_temperature,
                                anneal_epochs=anneal_epochs).items():
            if value is not None:
                check_number('KRTemperatureHook', name, value, **bounds[name])
        self.overrides = dict(init=init_temperature, final=final_temperature,
                              epochs=anneal_epochs)

    def schedule(self, method: str) -> TemperatureSchedule:
        """``method``'s schedule with this hook's arguments in place of its
        own; raises where the method divides by a temperature that the
        schedule takes to 0."""
        own = get_method(method).temperature
        schedule = TemperatureSchedule(
            **{
                key: getattr(own, key) if value is None else value
                for key, value in self.overrides.items()
            },
            positive=own.positive)
        if schedule.positive and min(schedule.init, schedule.final) <= 0:
            raise ValueError(
                f'{method} divides its logits by the temperature: '
                f'init_temperature and final_temperature must be > 0, got '
                f'{schedule.init} and {schedule.final}')
        return schedule

    def before_train(self, runner) -> None:
        # The model's layers do not change during training: look them up
        # once rather than walking every module at each iteration.
        model = runner.model.module if is_model_wrapper(
            runner.model) else runner.model
        self._layers = self._temperatures(model)
        self._schedules = {
            method: self.schedule(method)
            for method in self._layers
        }

    def before_train_iter(self, runner, batch_idx: int,
                          data_batch: DATA_BATCH = None) -> None:
        iters_per_epoch = len(runner.train_dataloader)
        for method, generators in self._layers.items():
            value = self._schedules[method].value(runner.iter, iters_per_epoch)
            for generator in generators:
                generator.temperature.fill_(value)

    @staticmethod
    def _temperatures(model) -> dict:
        """The kernel generators of ``model``'s dynamic layers whose method
        has a temperature, by method (each holds it as the buffer
        ``temperature``, which ``Module.to`` may replace: keep the
        generators, not the tensors)."""
        found: dict = {}
        for module in model.modules():
            if (isinstance(module, DynamicLayer)
                    and get_method(module.method).temperature is not None):
                found.setdefault(module.method, []).append(module.generator)
        if not found:
            raise ValueError(
                'KRTemperatureHook found no dynamic layer with a '
                'temperature in the model: only the methods whose registry '
                'entry has one anneal it (' + ', '.join(
                    m.name for m in METHODS.values()
                    if m.temperature is not None) +
                '); remove the hook from the config of another method')
        return found
