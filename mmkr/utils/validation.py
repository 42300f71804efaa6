"""Checks of config values where mmkr reads them.

Each check raises ``TypeError`` (wrong type) or ``ValueError`` (wrong
value) with one message that names the option, the value as given (with
its type) and what is allowed, e.g.::

    KRBackbone: kr_dims must be an integer >= 1, got '64' (str)

A value written on the command line (``--cfg-options
model.backbone.kernel_num=abc``) arrives as a string; an integer option
does not accept it, nor a float such as 16.5, nor ``True``.
"""
from numbers import Integral, Real
from typing import Any, Iterable, Optional


def _given(value: Any) -> str:
    return f'{value!r} ({type(value).__name__})'


def check_int(where: str,
              name: str,
              value: Any,
              minimum: Optional[int] = 0,
              allowed: Optional[str] = None) -> int:
    """``value`` as an int, if it is one (bools excepted) and >= minimum
    (None: any). ``allowed`` words what is allowed where the minimum alone
    does not say it."""
    allowed = allowed or 'an integer' + (f' >= {minimum}'
                                         if minimum is not None else '')
    if isinstance(value, bool) or not isinstance(value, Integral):
        raise TypeError(
            f'{where}: {name} must be {allowed}, got {_given(value)}')
    if minimum is not None and value < minimum:
        raise ValueError(f'{where}: {name} must be {allowed}, got {value}')
    return int(value)


def check_number(where: str,
                 name: str,
                 value: Any,
                 minimum: Optional[float] = None,
                 above: Optional[float] = None) -> float:
    """``value`` as a float, if it is a real number (bools excepted), >=
    ``minimum`` and > ``above`` where given."""
    bounds = ' and '.join(
        bound for bound in (f'>= {minimum}' if minimum is not None else '',
                            f'> {above}' if above is not None else '')
        if bound)
    allowed = f'a number {bounds}'.rstrip()
    if isinstance(value, bool) or not isinstance(value, Real):
        raise TypeError(f'{where}: {name} must be {allowed}, got '
                        f'{_given(value)}')
    if ((minimum is not None and value < minimum)
            or (above is not None and value <= above)):
        raise ValueError(f'{where}: {name} must be {allowed}, got {value}')
    return float(value)


def check_bool(where: str, name: str, value: Any) -> bool:
    """``value``, if it is True or False."""
    if not isinstance(value, bool):
        raise TypeError(f'{where}: {name} must be True or False, got '
                        f'{_given(value)}')
    return value


def check_choice(where: str, name: str, value: Any,
                 choices: Iterable[Any]) -> Any:
    """``value``, if it is one of ``choices``."""
    choices = list(choices)
    if value not in choices:
        raise ValueError(f'{where}: {name} must be one of {choices}, got '
                         f'{_given(value)}')
    return value


def _check_reduction(where: str, name: str, value: Any) -> None:
    if value is not None:
        check_number(where, name, value, above=0)


# The options of KRBackbone that a config sets, and their checks; the
# backbone runs them on its arguments, tools/train.py on the config before
# the runner makes its work dir (check_model_config).
_KR_BACKBONE_CHECKS = dict(
    kernel_num=lambda where, name, value: check_int(where, name, value, 1),
    # its range depends on with_kr; KRBackbone words it
    kr_dims=lambda where, name, value: check_int(
        where, name, value, None, 'an integer (>= 1 with KR on)'),
    with_kr=check_bool,
    return_kr=check_bool,
    freq_size=lambda where, name, value: check_int(where, name, value, 1),
    in_channels=lambda where, name, value: check_int(where, name, value, 1),
    reduction=_check_reduction,
    attention_norm=lambda where, name, value: check_choice(
        where, name, value, ('ln', 'bn')),
)


def check_kr_backbone_options(options: dict,
                              where: str = 'KRBackbone') -> None:
    """Check the KRBackbone options among ``options`` (others are left to
    the constructor)."""
    for name, value in options.items():
        if name in _KR_BACKBONE_CHECKS:
            _KR_BACKBONE_CHECKS[name](where, name, value)


def _type_name(cfg: dict) -> str:
    kind = cfg.get('type')
    return kind if isinstance(kind, str) else getattr(kind, '__name__', '')


def check_model_config(model: Any) -> None:
    """Check a model config before anything is built from it: the options
    of a KRBackbone, and that its head reads d_L exactly where the backbone
    returns it (``return_kr=True``; a head reads d_L where its class says
    ``reads_kr = True``, as :class:`~mmkr.models.KRLinearClsHead` does)."""
    if not isinstance(model, dict):
        return
    backbone = model.get('backbone')
    if not (isinstance(backbone, dict)
            and _type_name(backbone).split('.')[-1] == 'KRBackbone'):
        return
    check_kr_backbone_options(
        {k: v
         for k, v in backbone.items() if k not in ('type', 'backbone')},
        where='model.backbone (KRBackbone)')
    head = model.get('head')
    if not isinstance(head, dict):
        return
    from mmpretrain.registry import MODELS
    head_type = head.get('type')
    head_class = (MODELS.get(head_type)
                  if isinstance(head_type, str) else head_type)
    reads_kr = getattr(head_class, 'reads_kr', False)
    return_kr = backbone.get('return_kr', False)
    name = _type_name(head)
    if return_kr and not reads_kr:
        raise ValueError(
            f'model.backbone.return_kr=True appends d_L to the KRBackbone\'s '
            f'outputs, but model.head ({name}) does not read it and would '
            'take d_L for the feature. Use a head that reads d_L: '
            "head=dict(type='KRLinearClsHead', num_classes=..., "
            'in_channels=C, kr_dims=D) with neck=None; or set '
            'model.backbone.return_kr=False and keep a pooling neck.')
    if reads_kr and not return_kr:
        raise ValueError(
            f'model.head ({name}) reads d_L, which the KRBackbone returns '
            'only with model.backbone.return_kr=True: set it (and '
            'with_kr=True), or use a head such as LinearClsHead.')
