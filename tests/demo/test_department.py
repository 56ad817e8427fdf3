"""``accord.demo``: which simulated systems the demo adds to a config, and what it prints."""

from __future__ import annotations

from pathlib import Path

from accord.config import Destination, load_config
from accord.demo.department import DemoDepartment, demo_catalog
from accord.demo.traffic import PROCEDURES
from accord.runtime import build


async def test_no_destinations_gives_a_simulated_ris_and_pacs(tmp_path: Path) -> None:
    demo = DemoDepartment(rate=1.0, seed=1)
    cfg = load_config(None, {"store.data_dir": str(tmp_path), "mllp.port": 0,
                             "dicom.port": 0, "http.port": 0})
    cfg = await demo.prepare(cfg)
    try:
        assert demo.ris is not None and demo.pacs is not None
        by_name = {d.name: d for d in cfg.destinations}
        assert by_name["ris-sim"].send == ("status",)
        assert by_name["ris-sim"].port == demo.ris.inbox.port
        assert set(by_name["pacs-sim"].send) == {"adt", "orders", "reports"}
        assert cfg.workflow.catalog == demo_catalog()
        assert {p["code"] for p in cfg.workflow.catalog["procedures"]} == \
            {p[0] for p in PROCEDURES}
        rt = build(cfg)
        await rt.start()
        try:
            text = "\n".join(demo.describe(rt))
            mllp, dicom = rt.mllp_port, rt.dicom_port
        finally:
            await rt.stop()
        assert f"127.0.0.1:{mllp}" in text and "(ris-sim)" in text
        assert f"ACCORD@127.0.0.1:{dicom}" in text
        assert "CT1 (CT), MR1 (MR), US1 (US), DX1 (CR)" in text
        assert f"on 127.0.0.1:{demo.pacs.port} (pacs-sim)" in text
    finally:
        await demo.close()


async def test_configured_destinations_and_catalog_are_kept(tmp_path: Path) -> None:
    mine = Destination(name="ris", host="127.0.0.1", port=2576, send=("status",))
    catalog = {"procedures": [{"code": "X", "description": "X", "modality": "CT",
                               "stations": ["CTA"]}]}
    cfg = load_config(None, {"store.data_dir": str(tmp_path)})
    cfg = cfg.model_copy(update={
        "destinations": (mine,),
        "workflow": cfg.workflow.model_copy(update={"catalog": catalog})})
    demo = DemoDepartment(rate=1.0)
    out = await demo.prepare(cfg)
    assert out.destinations == (mine,) and out.workflow.catalog == catalog
    assert demo.ris is None and demo.pacs is None
