"""The ``synthetic`` dataset: a deterministic CAN vehicle simulator (the embedded default).

:func:`ensure_synthetic` writes, once per seed, a dataset in the
can-train-and-test v1.5 layout and CSV format
(``timestamp,arbitration_id,data_field,attack``), so everything that reads
the real ``hcrl_sa`` / ``set_xx`` folders reads this one too::

    train_01_attack_free/                   attack-free-sedan.csv, attack-free-suv.csv
    train_02_with_attacks/                  DoS-sedan, fuzzing-suv, spoofing-sedan, replay-suv
    test_01_known_vehicle_known_attack/     DoS-suv, fuzzing-sedan, spoofing-suv, replay-sedan
    test_02_unknown_vehicle_known_attack/   DoS-van, fuzzing-van, spoofing-van, replay-van
    test_03_known_vehicle_unknown_attack/   malfunction-sedan, malfunction-suv
    test_04_unknown_vehicle_unknown_attack/ malfunction-van
    test_05_suppress/                       suppress-sedan, suppress-van
    test_06_masquerade/                     masquerade-suv, masquerade-van
    manifest.json                           written last: files, counts, attack intervals

**Vehicles.** ``sedan`` (44 IDs) and ``suv`` (36) share a platform and most
of the suv's IDs (27 at seed 0); ``van`` (32, the unknown vehicle) is another maker's, with a
few ID numbers in common. Every message has its own period (10 ms - 1 s),
sender jitter and clock drift, and a payload layout: big-endian 16-bit and
8-bit signals from one simulated drive (so speed, wheel speeds, RPM, gear and
brake light agree across IDs), rolling counters, constant bytes, and a
checksum byte (sum of the other bytes for platform A, XOR for the van); some
IDs have DLC < 8, one heartbeat has DLC 0. Frames share one 500 kbit/s bus:
a frame waits while the bus is busy, so a flood delays genuine traffic.

**Attacks and their labels** (``attack = 1`` rows). Each attack file holds
3-5 attack intervals (see ``manifest.json``); attack frames are about 2-20 %
of a file.

- flooding (``DoS-``): ID 0x000, zero payload, every 0.4 ms. Injected frames.
- fuzzing: random IDs 0x000-0x7FF, random 8-byte payloads, every 1 ms. Injected frames.
- spoofing: a real 10/20 ms ID every 1 ms with one forged frame (one signal
  pinned, checksum right, counter frozen). Injected frames.
- replay: frames of 3-5 fast IDs recorded earlier in the same capture, sent
  again with their original spacing. Injected frames.
- malfunction: 1-2 real IDs keep their period but carry a stuck, saturated
  or random signal, or repeat one frozen frame. The replaced genuine frames.
- masquerade: a real ID's sender is silenced and the attacker sends the ID at
  its period (own clock), with a continuing counter, a valid checksum and one
  signal taken from another moment of the drive. The attacker's frames.
- suppress: a real ID (period <= 50 ms) stops; nothing is injected, so
  nothing is labelled by frame in the real data. Here **every frame on the
  bus while the target ID is suppressed is labelled 1** (its own frames are
  absent): a window overlapping a suppression interval is an attack window,
  and a detector is scored on noticing the gap. The intervals in the
  manifest are exactly the labelled span: ``start <= timestamp < end``.

Determinism: one random generator per file, seeded from ``(seed, file path)``;
the same seed, scale and drives give byte-identical files. ``scale``
multiplies every capture's duration (40-46 s at scale 1: 21 files, 430-540 k
frames in all depending on the seed, 476 k at seed 0, generated in about half
a second). ``drives`` simulates that many captures per plan entry
(``DoS-sedan-01.csv`` ... ``DoS-sedan-10.csv``), each its own drive: the
``synthetic-large`` dataset is scale 13 x 10 drives (210 captures of about
9 minutes, 62 M frames at seed 0), ``synthetic-medium`` the same captures'
length with one drive each (21 captures, 6.2 M frames). Everything is
vectorised per message and per capture, and CSVs are written in chunks, so
memory stays at one capture's columns.
"""

from fusioncore.data.synthetic.attacks import ATTACKS, AttackEvent
from fusioncore.data.synthetic.capture import Capture, simulate_capture
from fusioncore.data.synthetic.csvfile import format_csv
from fusioncore.data.synthetic.dataset import (
    FILE_PLAN,
    MANIFEST_NAME,
    SYNTHETIC_VERSION,
    SyntheticFile,
    SyntheticManifest,
    ensure_synthetic,
    file_plan,
    generate_synthetic,
    load_manifest,
)
from fusioncore.data.synthetic.vehicles import (
    KNOWN_VEHICLES,
    UNKNOWN_VEHICLES,
    MessageSpec,
    VehicleSpec,
    build_fleet,
)

__all__ = [
    "ATTACKS",
    "FILE_PLAN",
    "KNOWN_VEHICLES",
    "MANIFEST_NAME",
    "SYNTHETIC_VERSION",
    "UNKNOWN_VEHICLES",
    "AttackEvent",
    "Capture",
    "MessageSpec",
    "SyntheticFile",
    "SyntheticManifest",
    "VehicleSpec",
    "build_fleet",
    "ensure_synthetic",
    "file_plan",
    "format_csv",
    "generate_synthetic",
    "load_manifest",
    "simulate_capture",
]
