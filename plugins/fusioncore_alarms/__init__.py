"""fusioncore_alarms: the bundled alarm stages, ``raw`` and ``k-of-n``.

A bundled plugin, discovered through the ``fusioncore`` entry point exactly as
a third-party package would be, registered lazily like the others. See
:mod:`fusioncore.evaluation.alarms` for the contract.
"""

from fusioncore import Lazy, hookimpl
from fusioncore.registry import lazy_exports

__all__ = ["KOfNAlarms", "RawAlarms"]

_STAGES = "fusioncore_alarms.stages"
__getattr__ = lazy_exports(dict.fromkeys(__all__, _STAGES))


@hookimpl
def fusioncore_register_alarms(register) -> None:
    register("raw", Lazy(f"{_STAGES}:RawAlarms"), "an alarm for every window decided attack (no debouncing)")
    register("k-of-n", Lazy(f"{_STAGES}:KOfNAlarms"),
             "alarm when k of the last n windows were decided attack (k=3, n=5)")
