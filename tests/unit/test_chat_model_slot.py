"""The chat's model slot (none -> loading -> ready / error) and where the user left off
(state.toml), without a terminal: real files, a tiny real model."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from qwen_tui.chat.left_off import LeftOff
from qwen_tui.chat.model_slot import (
    LoadInProgressError,
    ModelSlot,
    available_models,
    find_model,
    model_key,
)
from qwen_tui.chat.state import open_new_session
from qwen_tui.config import Config, RemoteConfig
from qwen_tui.conversation import Session
from qwen_tui.engine.base import Engine
from qwen_tui.model_setup.installed import InstalledModel, ModelNotFoundError
from qwen_tui.paths import Paths
from qwen_tui.store import OpenSession, SessionStore
from qwen_tui.store.state import AppState, load_state, save_state

# ---------------------------------------------------------------- the model slot


@pytest.mark.slow
def test_a_model_loads_fails_and_switches_through_the_slot(
    paths: Paths,
    tiny_quantized: Callable[[str], InstalledModel],
    install_into_home: Callable[[InstalledModel], InstalledModel],
    tiny_engine: Callable[[str], Engine],
) -> None:
    model = install_into_home(tiny_quantized("qwen2"))
    slot = ModelSlot()
    assert slot.state == "none" and slot.engine is None
    assert find_model(Config(), paths, model.name).name == model.name
    assert [model_key(m) for m in available_models(Config(), paths)] == [model.name]

    assert slot.begin_loading(model) is None
    # What the status bar shows while loading comes from the manifest.
    assert slot.state == "loading" and slot.info is not None and slot.info.name == model.name
    with pytest.raises(LoadInProgressError):
        slot.begin_loading(model)
    assert not slot.needs_loading(model), "setup finishing on the model loading: no reload"

    engine = tiny_engine("qwen2")
    slot.loaded(engine)
    assert (slot.state, slot.engine, slot.info) == ("ready", engine, engine.info)
    assert not slot.needs_loading(model)

    # A switch hands the old engine back to be closed first (RAM is scarce).
    assert slot.begin_loading(model) is engine and slot.engine is None
    slot.failed("out of memory")
    assert (slot.state, slot.error) == ("error", "out of memory")
    assert slot.info is not None, "the status bar still names the model that failed"
    assert slot.needs_loading(model) and slot.name() == model.name


def test_a_model_that_is_not_there_is_an_error_and_remotes_come_after_installed(
    paths: Paths,
) -> None:
    with pytest.raises(ModelNotFoundError):
        find_model(Config(), paths, "no-such-model")
    lab = RemoteConfig(name="lab", base_url="http://127.0.0.1:9/v1", model="m")
    config = Config(remotes=(lab,))
    assert available_models(config, paths) == [lab]
    assert model_key(find_model(config, paths, "remote:lab")) == "remote:lab"
    slot = ModelSlot()
    slot.not_found("no model called x")
    assert (slot.state, slot.info, slot.name()) == ("error", None, "the model")
    slot.nothing_installed()
    assert (slot.state, slot.error) == ("none", "")


# ---------------------------------------------------------------- where the user left off


def new() -> OpenSession:
    return open_new_session(Config())


def test_the_last_session_and_its_draft_come_back(paths: Paths) -> None:
    store = SessionStore(paths.sessions_dir)
    saved = Session(title="yesterday")
    store.save(saved)
    left_off = LeftOff(store, paths.state_file)
    left_off.remember(saved)
    left_off.leaving(saved, "half a question")

    again = LeftOff(SessionStore(paths.sessions_dir), paths.state_file)
    opened, error = again.first_session(new, None, new_session=False)
    assert error is None and opened.session.id == saved.id and not opened.read_only
    assert again.draft_for(opened.session) == "half a question"
    assert again.draft_for(Session()) == "", "a draft belongs to its session"
    opened.close()

    fresh, _ = LeftOff(store, paths.state_file).first_session(new, None, new_session=True)
    assert fresh.session.id != saved.id and fresh.session.messages == []


def test_a_new_session_is_remembered_as_new_until_saved(paths: Paths) -> None:
    store = SessionStore(paths.sessions_dir)
    left_off = LeftOff(store, paths.state_file)
    unsaved = new().session
    left_off.leaving(unsaved, "draft in a new session")
    assert load_state(paths.state_file) == AppState("", "draft in a new session")
    again = LeftOff(store, paths.state_file)
    opened, _ = again.first_session(new, None, new_session=False)
    assert again.draft_for(opened.session) == "draft in a new session"
    store.save(unsaved)
    left_off.remember(unsaved)
    assert load_state(paths.state_file) == AppState(unsaved.id, "")


def test_a_gone_or_busy_last_session_gives_a_new_one_and_a_bad_id_says_why(
    paths: Paths,
) -> None:
    store = SessionStore(paths.sessions_dir)
    save_state(paths.state_file, AppState("20200101-000000-abcdef", "lost draft"))
    opened, error = LeftOff(store, paths.state_file).first_session(new, None, False)
    assert error is None and opened.session.messages == [] and opened.lock is None

    busy = Session(title="open elsewhere")
    store.save(busy)
    save_state(paths.state_file, AppState(busy.id, ""))
    with SessionStore(paths.sessions_dir).open(busy.id):
        opened, _ = LeftOff(store, paths.state_file).first_session(new, None, False)
        assert opened.session.id != busy.id, "a new session rather than a read-only view"

    opened, error = LeftOff(store, paths.state_file).first_session(
        new, "20200101-000000-abcdef", False
    )
    assert error is not None and "20200101-000000-abcdef" in str(error)
    assert opened.session.messages == []
