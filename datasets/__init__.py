"""Dataset loaders; importing the package imports every module in it, which fills the dataset registry.

A new dataset is one module here with a loader decorated ``@register_dataset("<name>")``.
"""
import importlib
import pkgutil
import sys

# python -m datasets.<module> imports this package first; importing <module> here too would run it twice (runpy warns)
_RUN = sys.orig_argv[sys.orig_argv.index("-m") + 1] if "-m" in sys.orig_argv[:-1] else None

for _module in pkgutil.iter_modules(__path__):
    if f"{__name__}.{_module.name}" != _RUN:
        importlib.import_module(f"{__name__}.{_module.name}")
