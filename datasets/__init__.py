"""Dataset loaders; importing the package imports every module in it, which fills the dataset registry.

A new dataset is one module here with a loader decorated ``@register_dataset("<name>")``.
"""
import importlib
import pkgutil

for _module in pkgutil.iter_modules(__path__):
    importlib.import_module(f"{__name__}.{_module.name}")
