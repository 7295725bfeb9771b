"""fusioncore-iat: the ``iat`` detector, a third-party fusioncore plugin.

fusioncore finds this module through the entry point in ``pyproject.toml``::

    [project.entry-points.fusioncore]
    iat = "fusioncore_iat"

and calls the hook below, which registers the detector under the name
``iat`` (``fusioncore run --detectors iat,gat``).
"""

from fusioncore import hookimpl
from fusioncore_iat.detector import DEFAULT_FEATURES, RELATIVE_FEATURES, IATDetector

__all__ = ["DEFAULT_FEATURES", "FUSIONCORE_HOOK_API", "RELATIVE_FEATURES", "IATDetector", "__version__"]

__version__ = "0.1.0"

#: Hook API versions this plugin works with (lowest, highest). fusioncore skips the
#: plugin with a warning naming it -- an error in strict mode -- when its own
#: ``fusioncore.HOOK_API_VERSION`` is outside this range.
FUSIONCORE_HOOK_API = (1, 2)


@hookimpl
def fusioncore_register_detectors(register) -> None:
    register(
        "iat",
        IATDetector,
        "per-ID inter-arrival-time profiles + unknown / missing IDs from benign traffic; no neural net",
    )
