"""The in-memory repository (workflow/memory.py) and the deterministic id source."""

from __future__ import annotations

from datetime import date

from accord.workflow.memory import MemoryRepository, RandomIds, SequentialIds
from accord.workflow.model import (
    Demographics,
    Identifier,
    Order,
    Patient,
    PersonName,
    ProcedureStep,
)
from accord.workflow.status import Status


def test_identifier_index_follows_saves() -> None:
    repo = MemoryRepository()
    old, new = Identifier("OLD", "HOSP"), Identifier("NEW", "HOSP")
    repo.save_patient(Patient("P1", (old,)))
    assert repo.patient_by_identifier(old) is not None
    assert repo.patient_by_identifier(Identifier("OLD", "OTHER")) is None  # authority counts
    repo.save_patient(Patient("P1", (new,)))
    assert repo.patient_by_identifier(old) is None
    found = repo.patient_by_identifier(new)
    assert found is not None and found.id == "P1"


def test_candidates_block_and_skip_tombstones() -> None:
    repo = MemoryRepository()
    jane = Demographics(PersonName("DOE", "JANE"), birth_date=date(1980, 1, 1))
    repo.save_patient(Patient("P1", (Identifier("1", "H"),), jane))
    repo.save_patient(Patient("P2", (Identifier("2", "H"),), jane, merged_into="P1"))
    repo.save_patient(Patient("P3", (Identifier("3", "H"),),
                              Demographics(PersonName("ROE"), birth_date=date(1990, 5, 5))))
    found = repo.candidates(Demographics(PersonName("DOE"), birth_date=date(1970, 1, 1)))
    assert [p.id for p in found] == ["P1"]


def test_orders_by_sps_id_looks_in_steps() -> None:
    repo = MemoryRepository()
    repo.save_order(Order("O1", "P1", Status.SCHEDULED, steps=(ProcedureStep("SPS9"),)))
    assert [o.id for o in repo.orders_by("sps_id", "SPS9")] == ["O1"]
    assert repo.orders_by("accession", "") == []


def test_ids() -> None:
    ids = SequentialIds()
    assert [ids.new_id("P"), ids.new_id("P"), ids.new_id("O")] == ["P1", "P2", "O1"]
    assert ids.new_uid("1.2.3") == "1.2.3.1"
    uid = RandomIds().new_uid("1.2.826.0.1.3680043.10.543")
    assert uid.startswith("1.2.826.0.1.3680043.10.543.") and len(uid) <= 64
