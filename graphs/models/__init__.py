"""Models (:class:`graphs.models.contract.ReconstructionModel`); importing the package fills the model registry."""
import importlib
import pkgutil

for _module in pkgutil.iter_modules(__path__):
    importlib.import_module(f"{__name__}.{_module.name}")
