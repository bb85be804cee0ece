"""huggingface_hub internals the download relies on are still where hub_internals.py reaches.

If a huggingface_hub release moves them, downloads would lose byte progress and cancel (the
hook) or run hf_xet/hf_transfer where they should not (the switches), with no error at all.
This test names the moved internal instead.
"""

from __future__ import annotations

import pytest

from qwen_tui.model_setup import hub_internals


def test_the_installed_huggingface_hub_still_has_the_internals_we_reach() -> None:
    import huggingface_hub

    missing = hub_internals.missing_internals()
    assert not missing, (
        f"huggingface_hub {huggingface_hub.__version__} no longer has what "
        f"qwen_tui/model_setup/hub_internals.py reaches into: {'; '.join(missing)}. "
        "Fix hub_internals.py for this release or pin huggingface_hub in pyproject.toml."
    )


def test_a_moved_internal_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    from huggingface_hub import constants
    from huggingface_hub.utils import _http

    monkeypatch.delattr(_http, "_default_backend_factory")
    monkeypatch.delattr(constants, "HF_HUB_DISABLE_XET")
    missing = hub_internals.missing_internals()
    assert any("_http._default_backend_factory" in m for m in missing), missing
    assert any("constants.HF_HUB_DISABLE_XET" in m for m in missing), missing


def test_fast_backends_flips_the_hub_switches_and_restores_them() -> None:
    from huggingface_hub import constants

    before = constants.HF_HUB_ENABLE_HF_TRANSFER, constants.HF_HUB_DISABLE_XET
    with hub_internals.fast_backends(True):
        assert (constants.HF_HUB_ENABLE_HF_TRANSFER, constants.HF_HUB_DISABLE_XET) == (True, False)
    with hub_internals.fast_backends(False):
        assert (constants.HF_HUB_ENABLE_HF_TRANSFER, constants.HF_HUB_DISABLE_XET) == (False, True)
    assert before == (constants.HF_HUB_ENABLE_HF_TRANSFER, constants.HF_HUB_DISABLE_XET)
