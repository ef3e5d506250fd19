"""The typed section configs mirror the schema: a key added to one and not the other fails here."""

from __future__ import annotations

import dataclasses

import pytest

from conftest import smoke
from rome.config import preset_names, resolve, schema
from rome.sections import SECTIONS, SearchConfig, TrainConfig


@pytest.mark.parametrize("cls", SECTIONS, ids=lambda c: c.NAME)
def test_fields_are_the_schema_properties(cls) -> None:
    props = set(schema()["properties"][cls.NAME]["properties"])
    assert {f.name for f in dataclasses.fields(cls)} == props


@pytest.mark.parametrize("preset", preset_names())
def test_every_preset_builds_every_section(preset: str) -> None:
    params = resolve({"preset": preset})
    for cls in SECTIONS:
        assert cls.from_params(params).as_dict() == params[cls.NAME]


def test_sections_are_frozen(tmp_path) -> None:
    cfg = SearchConfig.from_params(smoke(tmp_path))
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.epochs = 3  # type: ignore[misc]
    assert TrainConfig.from_params(smoke(tmp_path)).epochs == 2
