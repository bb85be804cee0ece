"""SessionStore against real files: round trips, atomic writes, bad files, ids, search."""

from __future__ import annotations

import errno
import json
import os
import stat
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from qwen_tui.conversation import (
    GenerationSettings,
    GenerationStats,
    Message,
    Session,
    StopReason,
)
from qwen_tui.store import (
    SCHEMA_VERSION,
    CorruptSessionError,
    InvalidSessionIdError,
    SessionNotFoundError,
    SessionStore,
    StoreError,
    bad_files,
    schema,
)
from qwen_tui.store.field_checks import LATEST_TIME
from qwen_tui.store.schema import FLAT_VERSION
from qwen_tui.store.session_reading import session_from_dict
from qwen_tui.store.session_writing import dumps, session_to_dict

HYPOTHESIS = settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


def make_session(session_id: str = "s1", title: str = "hello", **changes: Any) -> Session:
    session = Session(id=session_id, title=title, created=1000.0, updated=2000.0, model="demo")
    session.messages = [
        Message("user", "Hi there", created=1500.0),
        Message(
            "assistant",
            "Hello!",
            created=1600.0,
            stats=GenerationStats(
                prompt_tokens=12,
                generated_tokens=3,
                ttft_s=0.25,
                decode_tok_s=11.5,
                total_s=0.6,
                stop_reason=StopReason.STOPPED,
                dropped_turns=1,
                error=None,
            ),
            incomplete=True,
        ),
    ]
    for name, value in changes.items():
        setattr(session, name, value)
    return session


def write_raw(store: SessionStore, session_id: str, content: bytes | str | dict) -> Path:
    path = store.path_for(session_id)
    if isinstance(content, dict):
        content = json.dumps(content)
    path.write_bytes(content.encode() if isinstance(content, str) else content)
    return path


def folder_names(folder: Path) -> set[str]:
    return {p.name for p in folder.iterdir()}


@pytest.fixture
def store(tmp_path: Path) -> SessionStore:
    return SessionStore(tmp_path / "sessions")


# ---------------------------------------------------------------- round trips


def test_save_load_round_trip_keeps_every_field(store: SessionStore) -> None:
    session = make_session(settings=GenerationSettings(temperature=0.0, top_k=0, seed=7))
    store.save(session)
    assert store.load("s1") == session


def test_file_layout_is_versioned_utf8_json(store: SessionStore) -> None:
    store.save(make_session(title="日本語 ✓"))
    raw = store.path_for("s1").read_bytes()
    data = json.loads(raw.decode("utf-8"))
    # No branches: the flat layout earlier releases read (the tree is in test_branch_schema).
    assert data["schema_version"] == FLAT_VERSION == 1
    assert "日本語 ✓".encode() in raw  # readable, not \\u-escaped
    assert set(data) >= {"id", "title", "created", "updated", "model", "system_prompt"}
    assert data["settings"] == GenerationSettings().to_dict()
    assert data["messages"][0] == {
        "role": "user",
        "content": "Hi there",
        "created": 1500.0,
        "incomplete": False,
        "stats": None,
    }
    assert data["messages"][1]["stats"]["stop_reason"] == "stopped"


finite = st.floats(allow_nan=False)
moment = st.floats(0, LATEST_TIME)
"""A timestamp the schema accepts (1970 to 9999)."""
messages = st.lists(
    st.builds(
        Message,
        role=st.sampled_from(["system", "user", "assistant"]),
        content=st.text(),
        created=moment,
        incomplete=st.booleans(),
        stats=st.none()
        | st.builds(
            GenerationStats,
            prompt_tokens=st.integers(0, 10**6),
            ttft_s=st.none() | finite,
            stop_reason=st.sampled_from(StopReason),
            error=st.none() | st.text(),
        ),
    ),
    max_size=4,
)


@HYPOTHESIS
@given(title=st.text(), prompt=st.text(), model=st.text(), content=messages, when=moment)
def test_any_text_round_trips(
    tmp_path_factory: pytest.TempPathFactory,
    title: str,
    prompt: str,
    model: str,
    content: list[Message],
    when: float,
) -> None:
    store = SessionStore(tmp_path_factory.mktemp("sessions"))
    session = Session(
        id="x", title=title, system_prompt=prompt, model=model, messages=content, created=when
    )
    store.save(session)
    assert store.load("x") == session
    assert store.list()[0].title == title
    store.path_for("x").read_bytes().decode("utf-8")  # always valid UTF-8 on disk


def test_control_characters_ansi_rtl_emoji_round_trip(store: SessionStore) -> None:
    text = "nul\x00 bell\x07 esc\x1b[31mred\x1b[0m \u202eRTL\u202c 👍🏽 \r\n\t \u2028 \ufeff"
    store.save(make_session(title=text, system_prompt=text))
    loaded = store.load("s1")
    assert loaded.title == text and loaded.system_prompt == text


with_surrogates = st.text(st.characters() | st.characters(codec=None, categories=["Cs"]))


@HYPOTHESIS
@given(text=with_surrogates)
def test_lone_surrogates_become_replacement_characters(
    tmp_path_factory: pytest.TempPathFactory, text: str
) -> None:
    # One rule for invalid text (well_formed.REPLACEMENT): each lone surrogate (e.g. a
    # surrogateescape'd terminal byte) is U+FFFD in memory and on disk, so the file is
    # UTF-8 and the session can be printed and sent to a server.
    store = SessionStore(tmp_path_factory.mktemp("sessions"))
    store.save(make_session(title=text))
    expected = "".join("\ufffd" if 0xD800 <= ord(c) <= 0xDFFF else c for c in text)
    assert store.load("s1").title == expected
    store.path_for("s1").read_bytes().decode("utf-8")


def test_lone_surrogate_exact(store: SessionStore) -> None:
    store.save(make_session(title="bad byte \udc80, lone high \ud800 end"))
    assert store.load("s1").title == "bad byte \ufffd, lone high \ufffd end"


def test_lone_surrogates_written_by_an_older_release_load_as_replacements(
    store: SessionStore,
) -> None:
    data = session_to_dict(make_session())
    data["title"] = "t\udc80"
    data["messages"][0]["content"] = "c\ud800"
    write_raw(store, "s1", data)
    loaded = store.load("s1")
    assert (loaded.title, loaded.messages[0].content) == ("t\ufffd", "c\ufffd")


def test_unknown_extra_fields_are_ignored(store: SessionStore) -> None:
    data = session_to_dict(make_session())
    data["future_field"] = {"anything": 1}
    data["messages"][0]["reactions"] = ["👍"]
    data["settings"]["min_p"] = 0.1
    write_raw(store, "s1", data)
    assert store.load("s1") == make_session()


def test_file_name_is_the_session_id(store: SessionStore) -> None:
    # A file copied under a new name is a new session, not a second copy of the original.
    store.save(make_session("original"))
    os.link(store.path_for("original"), store.path_for("copy"))
    assert store.load("copy").id == "copy"
    assert {s.id for s in store.list()} == {"original", "copy"}


# ---------------------------------------------------------------- atomic writes


def fail_with(code: int):
    def fail(*args: Any, **kwargs: Any) -> None:
        raise OSError(code, os.strerror(code))

    return fail


@pytest.mark.parametrize(
    ("function", "code", "words"),
    [
        ("fsync", errno.ENOSPC, "disk full"),
        ("replace", errno.ENOSPC, "disk full"),
        ("write", errno.EROFS, "read-only"),
        ("fchmod", errno.EACCES, "permission denied"),
        ("open", errno.EDQUOT, "quota"),
    ],
)
def test_failed_save_keeps_old_file_and_leaves_no_temp(
    store: SessionStore, monkeypatch: pytest.MonkeyPatch, function: str, code: int, words: str
) -> None:
    store.save(make_session(title="old"))
    before = store.path_for("s1").read_bytes()
    monkeypatch.setattr(os, function, fail_with(code))
    with pytest.raises(StoreError) as caught:
        store.save(make_session(title="new"))
    monkeypatch.undo()
    message = str(caught.value)
    assert "s1" in message and words in message and os.strerror(code) in message
    assert store.path_for("s1").read_bytes() == before
    assert folder_names(store.dir) == {"s1.json"}
    assert store.load("s1").title == "old"


def test_disk_full_halfway_through_write(
    store: SessionStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    store.save(make_session(title="old"))
    before = store.path_for("s1").read_bytes()
    real_write = os.write
    calls = []

    def write_then_fill(fd: int, data: Any) -> int:
        calls.append(len(data))
        if len(calls) == 1:
            return real_write(fd, bytes(data[: len(data) // 2]))  # a short write, like a full disk
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "write", write_then_fill)
    with pytest.raises(StoreError, match=r"disk full \(No space left on device\)"):
        store.save(make_session(title="new" * 1000))
    monkeypatch.undo()
    assert len(calls) == 2
    assert store.path_for("s1").read_bytes() == before
    assert folder_names(store.dir) == {"s1.json"}


def test_short_writes_are_completed(store: SessionStore, monkeypatch: pytest.MonkeyPatch) -> None:
    real_write = os.write
    monkeypatch.setattr(os, "write", lambda fd, data: real_write(fd, bytes(data[:7])))
    session = make_session(title="x" * 500)
    store.save(session)
    monkeypatch.undo()
    assert store.load("s1") == session


@pytest.mark.skipif(os.geteuid() == 0, reason="root ignores folder permissions")
def test_read_only_folder_gives_store_error(store: SessionStore) -> None:
    store.save(make_session(title="old"))
    store.dir.chmod(0o500)
    try:
        with pytest.raises(StoreError, match="permission denied"):
            store.save(make_session(title="new"))
    finally:
        store.dir.chmod(0o700)
    assert store.load("s1").title == "old"


def test_permissions_are_private(tmp_path: Path) -> None:
    old_umask = os.umask(0)  # the most permissive umask: modes must not depend on it
    try:
        store = SessionStore(tmp_path / "a" / "sessions")
        store.path_for("s1").write_text("{}")
        store.path_for("s1").chmod(0o644)
        store.save(make_session())
    finally:
        os.umask(old_umask)
    assert stat.S_IMODE(store.dir.stat().st_mode) == 0o700
    assert stat.S_IMODE(store.path_for("s1").stat().st_mode) == 0o600


def test_save_recreates_a_removed_folder(store: SessionStore) -> None:
    store.dir.rmdir()
    store.save(make_session())
    assert store.load("s1") == make_session()


def test_save_refuses_data_load_would_reject(store: SessionStore) -> None:
    session = make_session()
    session.messages[0].role = "bot"  # type: ignore[assignment]
    with pytest.raises(StoreError, match=r"messages\[0\]\.role"):
        store.save(session)
    assert not store.path_for("s1").exists()


# ---------------------------------------------------------------- bad files


def corrupt_files(folder: Path, session_id: str) -> list[Path]:
    return sorted(folder.glob(f"{session_id}.json.corrupt-*"))


BAD_FILES: dict[str, bytes | str | dict] = {
    "not-json": "{this is not json",
    "empty": b"",
    "latin1": '{"title": "caf\xe9"}'.encode("latin-1"),
    "array": "[1, 2, 3]",
    "wrong-type": {**session_to_dict(make_session()), "title": 42},
    "bool-as-number": {**session_to_dict(make_session()), "created": True},
    "missing-field": {k: v for k, v in session_to_dict(make_session()).items() if k != "updated"},
    "version-zero": {**session_to_dict(make_session()), "schema_version": 0},
    "deep": "[" * 100_000,
}


def test_bad_files_are_moved_aside_and_good_ones_still_list(store: SessionStore) -> None:
    store.save(make_session("good"))
    originals = {
        name: write_raw(store, name, content).read_bytes() for name, content in BAD_FILES.items()
    }
    listed = store.list()
    assert [s.id for s in listed] == ["good"]
    assert {p.path.name.removesuffix(".json") for p in store.problems} == set(BAD_FILES)
    for problem in store.problems:
        assert problem.moved_to is not None and problem.moved_to.parent == store.dir
        session_id = problem.path.name.removesuffix(".json")
        assert problem.moved_to.read_bytes() == originals[session_id]  # kept, byte for byte
        assert not problem.path.exists()
    reasons = {p.path.name: p.reason for p in store.problems}
    assert "title: expected a string, got an integer 42" in reasons["wrong-type.json"]
    assert "created: expected a number" in reasons["bool-as-number.json"]
    assert "updated: missing" in reasons["missing-field.json"]
    assert "not UTF-8" in reasons["latin1.json"]
    assert store.list() == listed  # nothing left to report twice
    assert len(store.problems) == len(BAD_FILES)


def test_a_file_from_a_newer_release_is_refused_and_left_in_place(store: SessionStore) -> None:
    newer = {**session_to_dict(make_session()), "schema_version": SCHEMA_VERSION + 1}
    path = write_raw(store, "future", newer)
    original = path.read_bytes()
    assert store.list() == []
    assert [(p.path, p.moved_to) for p in store.problems] == [(path, None)]
    assert "newer than this qwen-tui understands" in store.problems[0].reason
    assert "upgrade qwen-tui to open it" in store.problems[0].reason
    with pytest.raises(StoreError, match="upgrade qwen-tui to open it"):
        store.load("future")
    assert path.read_bytes() == original  # the release that wrote it still opens it
    store.list()
    assert len(store.problems) == 1  # reported once, not at every listing


def test_load_of_bad_message_moves_file_aside(store: SessionStore) -> None:
    data = session_to_dict(make_session())
    data["messages"][1]["role"] = "bot"
    path = write_raw(store, "s1", data)
    assert [s.id for s in store.list()] == ["s1"]  # list() reads the top level only
    with pytest.raises(CorruptSessionError) as caught:
        store.load("s1")
    moved = corrupt_files(store.dir, "s1")
    assert len(moved) == 1
    message = str(caught.value)
    assert str(path) in message and str(moved[0]) in message
    assert "messages[1].role: expected one of system, user, assistant, got 'bot'" in message
    assert store.problems[-1].moved_to == moved[0]
    assert store.list() == []


@pytest.mark.parametrize(
    ("change", "field"),
    [
        (lambda d: d["messages"][0].update(content=None), "messages[0].content"),
        (lambda d: d["messages"][0].update(created="today"), "messages[0].created"),
        (lambda d: d["messages"][0].pop("role"), "messages[0].role: missing"),
        (lambda d: d["messages"][1].update(incomplete=1), "messages[1].incomplete"),
        (lambda d: d["messages"][1]["stats"].update(stop_reason="?"), "stats.stop_reason"),
        (lambda d: d["messages"][1]["stats"].update(prompt_tokens=1.5), "stats.prompt_tokens"),
        (lambda d: d["messages"][1].update(stats=[]), "messages[1].stats"),
        (lambda d: d["settings"].update(top_k=True), "settings.top_k"),
        (lambda d: d["settings"].update(seed="7"), "settings.seed"),
        (lambda d: d.update(settings=None), "settings: expected an object"),
        (lambda d: d["messages"].append("hi"), "messages[2]: expected an object"),
    ],
)
def test_validation_names_the_bad_field(change: Any, field: str) -> None:
    data = session_to_dict(make_session())
    change(data)
    with pytest.raises(ValueError, match=field.replace("[", r"\[").replace("]", r"\]")):
        session_from_dict(data)


def test_int_accepted_where_float_expected() -> None:
    data = session_to_dict(make_session())
    data["created"] = 5
    data["settings"]["temperature"] = 1
    session = session_from_dict(data)
    assert session.created == 5.0 and isinstance(session.created, float)
    assert isinstance(session.settings.temperature, float)


def test_moving_aside_never_overwrites(
    store: SessionStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(bad_files, "corrupt_name", lambda p: p.with_name(p.name + ".corrupt-T"))
    for attempt in range(3):
        write_raw(store, "s1", f"bad {attempt}")
        store.list()
    moved = [
        store.dir / "s1.json.corrupt-T",
        *(store.dir / f"s1.json.corrupt-T-{n}" for n in (2, 3)),
    ]
    assert [p.read_text() for p in moved] == ["bad 0", "bad 1", "bad 2"]


def test_missing_session(store: SessionStore) -> None:
    with pytest.raises(SessionNotFoundError):
        store.load("nope")
    with pytest.raises(SessionNotFoundError):
        store.delete("nope")


def test_foreign_file_names_reported_once_and_left_alone(store: SessionStore) -> None:
    foreign = store.dir / "my chat.json"
    foreign.write_text("{}")
    (store.dir / "notes.txt").write_text("x")
    folder = store.dir / "folder.json"
    folder.mkdir()
    assert store.list() == []
    assert store.list() == []
    reported = sorted((p.path, p.moved_to) for p in store.problems)
    assert reported == [(folder, None), (foreign, None)]  # a folder is told too, not skipped
    assert foreign.read_text() == "{}" and folder.is_dir()


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(), inner, max_size=3),
    max_leaves=8,
)
TOP_KEYS = [*session_to_dict(make_session()), "unknown"]
MESSAGE_KEYS = ["role", "content", "created", "incomplete", "stats"]


@HYPOTHESIS
@given(
    garbage=st.binary(max_size=200),
    value=json_values,
    top_key=st.sampled_from(TOP_KEYS),
    message_key=st.sampled_from(MESSAGE_KEYS),
    stats_key=st.sampled_from([*GenerationStats().to_dict()]),
)
# A session from a newer qwen-tui (found by a run: the check once knew only listed or moved).
@example(
    garbage=b"", value=3, top_key="schema_version", message_key="role", stats_key="prompt_tokens"
)
def test_list_never_raises_on_random_content(
    tmp_path_factory: pytest.TempPathFactory,
    garbage: bytes,
    value: Any,
    top_key: str,
    message_key: str,
    stats_key: str,
) -> None:
    store = SessionStore(tmp_path_factory.mktemp("sessions"))
    store.save(make_session("good"))
    write_raw(store, "bytes", garbage)
    write_raw(store, "value", json.dumps(value))
    for name, where in [("top", None), ("message", 1), ("stats", "stats")]:
        data = session_to_dict(make_session())
        if where is None:
            data[top_key] = value
        elif where == 1:
            data["messages"][1][message_key] = value
        else:
            data["messages"][1]["stats"][stats_key] = value
        write_raw(store, name, data)

    listed = {s.id for s in store.list()}
    assert "good" in listed
    # A file written by a newer qwen-tui is not damage: it stays where it is, told once.
    left = {p.path.stem for p in store.problems if p.moved_to is None and "newer" in p.reason}
    for session_id in ["bytes", "value", "top", "message", "stats"]:
        moved = bool(corrupt_files(store.dir, session_id))
        assert [session_id in listed, moved, session_id in left].count(True) == 1, session_id
    assert left <= ({"top"} if top_key == "schema_version" else set())
    for session_id in listed:
        try:
            store.load(session_id)
        except CorruptSessionError:
            assert corrupt_files(store.dir, session_id)
    assert store.load("good") == make_session("good")


def test_stale_temp_files_are_cleaned_fresh_ones_kept(store: SessionStore) -> None:
    stale = store.dir / ".s1.json.0000beef.tmp"
    fresh = store.dir / ".s2.json.0000cafe.tmp"
    stale.write_text("{")
    fresh.write_text("{")
    two_days_ago = time.time() - 2 * 24 * 3600
    os.utime(stale, (two_days_ago, two_days_ago))
    assert store.list() == []
    assert not stale.exists() and fresh.exists()
    assert store.problems == []


# ---------------------------------------------------------------- ids


@pytest.mark.parametrize(
    "bad_id", ["../x", "..", ".", "a/b", "/etc/passwd", ".hidden", "", "x\x00y", "a\\b", "x" * 200]
)
def test_unsafe_session_ids_are_rejected(store: SessionStore, tmp_path: Path, bad_id: str) -> None:
    (tmp_path / "x.json").write_text(json.dumps(session_to_dict(make_session("x"))))
    with pytest.raises(InvalidSessionIdError):
        store.path_for(bad_id)
    with pytest.raises(StoreError):
        store.load(bad_id)
    with pytest.raises(StoreError):
        store.save(make_session(bad_id))
    with pytest.raises(StoreError):
        store.delete(bad_id)
    assert (tmp_path / "x.json").exists()
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["sessions", "x.json"]


def test_generated_ids_are_accepted(store: SessionStore) -> None:
    session = Session()
    store.save(session)
    assert store.load(session.id) == session


# ---------------------------------------------------------------- list, delete, search


def test_list_is_newest_updated_first_with_summaries(store: SessionStore) -> None:
    for session_id, updated in [("a", 30.0), ("b", 10.0), ("c", 20.0)]:
        store.save(make_session(session_id, title=f"title {session_id}", updated=updated))
    listed = store.list()
    assert [s.id for s in listed] == ["a", "c", "b"]
    assert listed[0].title == "title a"
    assert listed[0].message_count == 2
    assert listed[0].model == "demo"
    assert listed[0].created == 1000.0
    assert listed[0].path == store.path_for("a")


def test_list_sees_changes_made_by_another_instance(store: SessionStore) -> None:
    store.save(make_session(title="first"))
    assert store.list()[0].title == "first"
    other = SessionStore(store.dir)
    other.save(make_session(title="second"))
    other.save(make_session("s2", updated=9999.0))
    assert [(s.id, s.title) for s in store.list()] == [("s2", "hello"), ("s1", "second")]
    other.delete("s2")
    assert [s.id for s in store.list()] == ["s1"]


def test_delete_removes_the_file(store: SessionStore) -> None:
    store.save(make_session("a"))
    store.save(make_session("b"))
    store.delete("a")
    assert not store.path_for("a").exists()
    assert [s.id for s in store.list()] == ["b"]
    with pytest.raises(SessionNotFoundError):
        store.load("a")


def test_search_title_and_content_case_insensitive_newest_first(store: SessionStore) -> None:
    store.save(make_session("old", title="Python tips", updated=1.0))
    matching_content = make_session("new", title="other", updated=3.0)
    matching_content.messages[1].content = "Use PYTHON's pathlib"
    store.save(matching_content)
    store.save(make_session("none", title="cooking", updated=2.0))
    store.save(make_session("street", title="Große Straße", updated=0.5))
    assert [s.id for s in store.search("python")] == ["new", "old"]
    assert [s.id for s in store.search("STRASSE")] == ["street"]
    assert [s.id for s in store.search("nothing like this")] == []
    assert len(store.search("")) == 4


def test_list_of_1000_sessions(store: SessionStore) -> None:
    base = session_to_dict(make_session())
    base["messages"] = base["messages"] * 10
    for n in range(1000):
        data = {**base, "id": f"s{n:04d}", "title": f"session {n}", "updated": float(n)}
        store.path_for(f"s{n:04d}").write_bytes(dumps(data))
    started = time.perf_counter()
    listed = store.list()
    first = time.perf_counter() - started
    started = time.perf_counter()
    assert store.list() == listed
    again = time.perf_counter() - started
    print(f"\nlist() of 1,000 sessions x 20 messages: {first * 1000:.0f} ms", end=", ")
    print(f"again, unchanged: {again * 1000:.0f} ms")
    assert len(listed) == 1000 and listed[0].id == "s0999"
    assert first < 10  # generous: only catches pathological slowness on a busy machine


# ---------------------------------------------------------------- schema versions


def test_migrate_runs_each_step_in_order(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(schema, "SCHEMA_VERSION", 3)
    monkeypatch.setattr(
        schema,
        "MIGRATIONS",
        {
            1: lambda d: {**d, "title": d["name"], "steps": ["1->2"]},
            2: lambda d: {**d, "steps": [*d["steps"], "2->3"]},
        },
    )
    migrated = schema.migrate({"schema_version": 1, "name": "old"})
    assert migrated == {
        "schema_version": 3,
        "name": "old",
        "title": "old",
        "steps": ["1->2", "2->3"],
    }


def test_current_version_needs_no_migration() -> None:
    session = make_session()
    session.forked_from = "s0"  # written in the tree layout
    data = session_to_dict(session)
    assert data["schema_version"] == SCHEMA_VERSION
    assert schema.migrate(dict(data)) == data


def test_store_does_not_import_textual() -> None:
    code = "import sys; sys.modules['textual'] = None; import qwen_tui.store, qwen_tui.config"
    subprocess.run([sys.executable, "-c", code], check=True)
