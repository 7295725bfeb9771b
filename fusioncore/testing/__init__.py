"""Conformance suites for plugin authors: does my component honour its contract?

One base class per component kind; subclass it in a test module and pytest
collects the inherited tests::

    from fusioncore.testing import DetectorContract

    class TestMyDetector(DetectorContract):
        detector_cls = MyDetector
        params = {}

=============  ===================================  ===================================
kind           pytest base class                    one-call function
=============  ===================================  ===================================
detector       :class:`DetectorContract`            :func:`check_detector`
fusion         :class:`FusionContract`              :func:`check_fusion`
reward         :class:`RewardContract`              :func:`check_reward`
state encoder  :class:`StateEncoderContract`        :func:`check_state_encoder`
store          :class:`StoreContract`               :func:`check_store`
alarm stage    :class:`AlarmContract`               :func:`check_alarm_stage`
=============  ===================================  ===================================

A failed check raises :class:`ContractViolation` (an ``AssertionError``)
whose message says what is wrong, e.g. ``score has shape (31,), expected
(32,): one score per window of the batch``. Inputs are generated, small and
deterministic (:mod:`fusioncore.testing.data`): a detector contract trains
for two epochs on about a hundred real window graphs in a few seconds.

Installing fusioncore also registers the pytest plugin
:mod:`fusioncore.testing.plugin` (fixtures ``fusioncore_tiny_data``,
``fusioncore_isolated`` and ``fusioncore_plugins``), and
:class:`fusioncore.testing.venv.PluginVenv` installs a plugin package into a
throwaway environment to test its packaging. See docs/plugin-authoring.md.
"""

from fusioncore.testing.alarm import AlarmContract, check_alarm_stage
from fusioncore.testing.checks import ContractViolation
from fusioncore.testing.data import (
    TinyDataset,
    TinySplit,
    make_detector_outputs,
    make_fusion_data,
    tiny_dataset,
)
from fusioncore.testing.detector import DetectorContract, DetectorRun, check_detector, train_for_contract
from fusioncore.testing.encoder import StateEncoderContract, check_state_encoder
from fusioncore.testing.fusion import FusionContract, check_fusion
from fusioncore.testing.reward import RewardContract, check_reward
from fusioncore.testing.store import StoreContract, check_store

__all__ = [
    "AlarmContract",
    "ContractViolation",
    "DetectorContract",
    "DetectorRun",
    "FusionContract",
    "RewardContract",
    "StateEncoderContract",
    "StoreContract",
    "TinyDataset",
    "TinySplit",
    "check_alarm_stage",
    "check_detector",
    "check_fusion",
    "check_reward",
    "check_state_encoder",
    "check_store",
    "make_detector_outputs",
    "make_fusion_data",
    "tiny_dataset",
    "train_for_contract",
]
