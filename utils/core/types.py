"""Constrained types for constructor arguments that the config may set.

Models, losses and dataset loaders annotate their keyword arguments with these;
the config validator reads the annotations, so a range lives in one place.
"""
from typing import Annotated

from annotated_types import Ge, Gt, Interval, Le

PositiveInt = Annotated[int, Gt(0)]
NonNegativeInt = Annotated[int, Ge(0)]
PositiveFloat = Annotated[float, Gt(0)]
NonNegativeFloat = Annotated[float, Ge(0)]
Fraction = Annotated[float, Interval(gt=0, lt=1)]
UnitInterval = Annotated[float, Interval(ge=0, le=1)]
Percentile = Annotated[float, Interval(gt=0, le=100)]
Dropout = Annotated[float, Interval(ge=0, lt=1)]
FalseAlarmRate = Annotated[float, Interval(ge=0, lt=1)]
__all__ = ["PositiveInt", "NonNegativeInt", "PositiveFloat", "NonNegativeFloat", "Fraction",
           "UnitInterval", "Percentile", "Dropout", "FalseAlarmRate", "Le"]
