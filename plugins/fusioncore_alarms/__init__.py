"""fusioncore_alarms: the bundled alarm stages, ``raw`` and ``k-of-n``.

A bundled plugin, discovered through the ``fusioncore`` entry point exactly as
a third-party package would be. See :mod:`fusioncore.evaluation.alarms` for
the contract.
"""

from fusioncore import hookimpl
from fusioncore_alarms.stages import KOfNAlarms, RawAlarms

__all__ = ["KOfNAlarms", "RawAlarms"]


@hookimpl
def fusioncore_register_alarms(register) -> None:
    register("raw", RawAlarms, "an alarm for every window decided attack (no debouncing)")
    register("k-of-n", KOfNAlarms, "alarm when k of the last n windows were decided attack (k=3, n=5)")
