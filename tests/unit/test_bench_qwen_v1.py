"""`make bench` leads with the seed's own model, Qwen v1, where Qwen's code is there to build it."""

from __future__ import annotations

import pytest

from benchmarks import models


@pytest.mark.parametrize("available", [True, False])
def test_qwen_v1_is_the_headline_model_when_its_code_is_there(monkeypatch, available) -> None:
    import tests.fixtures.qwen_v1_real as real

    monkeypatch.setattr(real, "qwen_v1_code_available", lambda: available)
    full, quick = models.default_models(quick=False), models.default_models(quick=True)
    if available:
        assert full == (models.QWEN_V1_1_8B, models.RANDOM_1_8B, models.DEMO)
        assert quick == (models.QWEN_V1_1_8B,)
    else:
        assert full == (models.RANDOM_1_8B, models.DEMO) and quick == (models.RANDOM_1_8B,)


def test_the_baselines_get_the_qwen2_layout_and_setup_gets_the_v1_repo(tmp_path, monkeypatch):
    """llama.cpp's converter cannot read the v1 folder: the baselines load our conversion of
    it (same weights), while qwen-tui installs from the repo folder as a user would."""
    calls = []

    def convert(source, dest):
        calls.append(source)
        dest.mkdir()
        (dest / "config.json").write_text("{}")

    monkeypatch.setattr("qwen_tui.model_setup.qwen_v1_convert.convert_qwen_v1", convert)
    source = tmp_path / "qwen-v1-1.8b-random-abc"
    converted = models.float_checkpoint(models.QWEN_V1_1_8B, source, lambda _t: None)
    assert converted.name == source.name + "-qwen2" and calls == [source]
    assert models.float_checkpoint(models.QWEN_V1_1_8B, source, lambda _t: None) == converted
    assert calls == [source]  # built once, then reused
    assert models.float_checkpoint(models.RANDOM_1_8B, source, lambda _t: None) == source
