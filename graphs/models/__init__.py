"""Models; importing the package imports every module in it, which fills the model registry.

The contract a model keeps is :class:`graphs.models.contract.ReconstructionModel`.
"""
import importlib
import pkgutil

from graphs.models.contract import ReconstructionModel

__all__ = ["ReconstructionModel"]

for _module in pkgutil.iter_modules(__path__):
    importlib.import_module(f"{__name__}.{_module.name}")
