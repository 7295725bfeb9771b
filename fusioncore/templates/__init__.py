"""Templates of ``fusioncore new-plugin`` (``string.Template`` text, one folder per component kind).

``common/`` holds what every plugin package has (pyproject, README, the hook
module); ``<kind>/component.py.tmpl`` and ``<kind>/test.py.tmpl`` hold the
skeleton component and its conformance test. See :mod:`fusioncore.scaffold`.
"""
