"""Shared fixtures: a tiny hand-checkable factor edition, separate from the shipped data."""

from __future__ import annotations

from pathlib import Path

import pytest

from carbonclap_xl.core.factors import Activity, Factor, FactorEdition, SourceInfo

TEST_SOURCE = SourceInfo(key="BE", dataset="Test dataset", edition="0.1", publisher="Test",
                         licence="Test licence", attribution="Source : test", path="none.json")


def make_factor(fid: str, value: float, unit: str, uncertainty: float | None = 10.0,
                status: str = "valid", category: str = "Test") -> Factor:
    return Factor(id=fid, label_fr=f"Facteur {fid}", label_en=f"Factor {fid}", value=value,
                  unit=unit, uncertainty_pct=uncertainty, source_id=fid.split(":")[1],
                  category=category, status=status, location=None,
                  source_dataset=TEST_SOURCE.dataset, source_edition=TEST_SOURCE.edition)


def tiny_edition() -> FactorEdition:
    """Factor values chosen so every result can be checked by hand."""
    acts = [
        Activity("gazole", "Gazole", "Diesel", ("lieux", "transport"), "energie", "L", None,
                 make_factor("BE:1", 2.0, "litre", uncertainty=10.0)),
        Activity("elec", "Électricité", "Electricity", ("lieux",), "energie", "kWh", None,
                 make_factor("BE:2", 0.5, "kWh", uncertainty=None)),
        Activity("train", "Train", "Train", ("transport",), "transport_personnes", "km", None,
                 make_factor("BE:3", 0.01, "passager.km", uncertainty=20.0)),
        Activity("achats", "Achats de services", "Services", ("decors", "hmc"), "achats", "€",
                 None, make_factor("BE:4", 100.0, "keuro (2023) HT", uncertainty=80.0)),
    ]
    return FactorEdition(edition="test", sources={"BE": TEST_SOURCE},
                         activities={a.id: a for a in acts}, _root=Path("/nonexistent"))


@pytest.fixture
def edition() -> FactorEdition:
    return tiny_edition()
