"""Fleet scoring: many captures scored with one trained run, sharded by Lightning's ``Trainer.predict``.

``fusioncore score --run RUN --input 'logs/**/*.log' --out verdicts/`` writes one
Parquet verdict file per capture and a summary (:mod:`fusioncore.fleet.summary`);
``--strategy ddp --devices N --num-nodes M`` spreads the captures over
processes and machines through Lightning's strategies (see ``docs/scale.md``).
"""

from fusioncore.fleet.captures import CaptureList, find_captures, verdict_names
from fusioncore.fleet.run import FleetResult, alarm_stage, score_fleet
from fusioncore.fleet.scorer import FleetProgress, FleetScorer
from fusioncore.fleet.summary import collect_rows, fleet_totals, write_summary
from fusioncore.fleet.verdicts import CaptureVerdicts, read_summary_row, score_capture, write_verdicts

__all__ = [
    "CaptureList",
    "CaptureVerdicts",
    "FleetProgress",
    "FleetResult",
    "FleetScorer",
    "alarm_stage",
    "collect_rows",
    "find_captures",
    "fleet_totals",
    "read_summary_row",
    "score_capture",
    "score_fleet",
    "verdict_names",
    "write_summary",
    "write_verdicts",
]
