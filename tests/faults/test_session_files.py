"""Hostile session files: what tests/unit/test_store.py does not already feed the store.

That file covers random bytes, random JSON values in every field, wrong types, missing top
fields and a future version. Here: huge fields, torn (truncated) and bit-flipped files,
random sets of missing fields at every level, any future or mistyped schema_version, and
`qwen-tui sessions` over a folder of such files. The store must never raise anything but
its own errors; bad files are moved aside byte for byte and reported; good ones load.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from qwen_tui.conversation import GenerationStats, Message, Session, StopReason
from qwen_tui.paths import Paths
from qwen_tui.store import SCHEMA_VERSION, CorruptSessionError, SessionStore, StoreError, schema
from qwen_tui.store.session_writing import dumps, session_to_dict
from tests.cli.in_process import examples, run_main
from tests.remote.hostile import hostile_text, raw_controls

FUZZ = settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
CASES: Counter[str] = Counter()
"""Fuzz cases tried per test, printed at the end of the module (`-s` or `-rP` shows it)."""


@pytest.fixture(scope="module", autouse=True)
def report_cases() -> Iterator[None]:
    yield
    print(f"\nsession-file fuzz cases tried: {sum(CASES.values())} {dict(CASES)}")


def sample_session(session_id: str = "s1") -> Session:
    session = Session(id=session_id, title="sample", created=1.0, updated=2.0, model="m")
    session.messages = [
        Message("user", "Hi", created=1.5),
        Message(
            "assistant",
            "Hello",
            created=1.6,
            stats=GenerationStats(generated_tokens=1, stop_reason=StopReason.EOS),
        ),
    ]
    return session


GOOD = dumps(session_to_dict(sample_session()))


def outcome(store: SessionStore, session_id: str, original: bytes) -> str:
    """'loaded', 'moved aside' (checking the moved file kept every byte) or 'left in place'
    (a newer release's file); anything else
    (another exception, a file silently changed or gone) fails the test."""
    try:
        store.load(session_id)
    except CorruptSessionError:
        (moved,) = store.dir.glob(f"{session_id}.json.corrupt-*")
        assert moved.read_bytes() == original
        assert not store.path_for(session_id).exists()
        return "moved aside"
    except StoreError as error:  # only a newer release's file is refused without moving it
        assert "upgrade qwen-tui to open it" in str(error)
        assert store.path_for(session_id).read_bytes() == original
        return "left in place"
    assert store.path_for(session_id).read_bytes() == original
    return "loaded"


def fresh_store() -> tuple[SessionStore, tempfile.TemporaryDirectory]:
    folder = tempfile.TemporaryDirectory()
    return SessionStore(Path(folder.name) / "sessions"), folder


# ---------------------------------------------------------------- huge fields


def test_huge_fields_load(tmp_path: Path) -> None:
    store = SessionStore(tmp_path)
    big = sample_session("big")
    big.title = "t" * 8_000_000
    big.messages[1].content = "long answer " * 3_000_000  # 36 MB
    many = sample_session("many")
    many.messages = [Message("user", f"message {n}", created=float(n)) for n in range(100_000)]
    for session in (big, many):
        store.save(session)
        assert store.load(session.id) == session
    counts = {s.id: s.message_count for s in store.list()}
    assert counts == {"big": 2, "many": 100_000} and store.problems == []


HUGE_BAD = {
    "huge-integer": GOOD.replace(b'"created": 1.0', b'"created": ' + b"9" * 5000),
    "huge-version": GOOD.replace(b'"schema_version": 1', b'"schema_version": ' + b"9" * 40),
    "deep-content": GOOD.replace(b'"Hello"', b"[" * 50_000 + b"]" * 50_000),
    "huge-role": GOOD.replace(b'"role": "user"', b'"role": "' + b"u" * 5_000_000 + b'"'),
}


def test_huge_bad_fields_are_moved_aside_with_a_short_reason(tmp_path: Path) -> None:
    store = SessionStore(tmp_path)
    for name, raw in HUGE_BAD.items():
        (tmp_path / f"{name}.json").write_bytes(raw)
    assert store.list() == [] or all(s.id == "huge-role" for s in store.list())
    for name, raw in HUGE_BAD.items():
        if name == "huge-version":  # a newer release's file, however large: left in place
            with pytest.raises(StoreError, match="upgrade qwen-tui to open it"):
                store.load(name)
            assert store.path_for(name).read_bytes() == raw
        elif store.path_for(name).exists():
            assert outcome(store, name, raw) == "moved aside"
    reasons = {p.path.name: p.reason for p in store.problems}
    assert set(reasons) == {f"{name}.json" for name in HUGE_BAD}
    assert "4300" in reasons["huge-integer.json"]  # Python's limit on integer digits
    assert "newer than this qwen-tui understands" in reasons["huge-version.json"]
    assert all(len(reason) < 300 for reason in reasons.values()), reasons


BAD_TIMES = (b"NaN", b"Infinity", b"-Infinity", b"1e20", b"-1e20", b"1e400", b"-1")
TIME_FIELDS = {
    "created": b'"created": 1.0',
    "updated": b'"updated": 2.0',
    "messages[0].created": b'"created": 1.5',
}


@pytest.mark.parametrize("field", sorted(TIME_FIELDS))
@pytest.mark.parametrize("value", BAD_TIMES, ids=[v.decode() for v in BAD_TIMES])
def test_timestamps_out_of_range_are_moved_aside(tmp_path: Path, field: str, value: bytes) -> None:
    raw = GOOD.replace(TIME_FIELDS[field], TIME_FIELDS[field].split(b":")[0] + b": " + value)
    assert raw != GOOD
    store = SessionStore(tmp_path)
    store.path_for("s1").write_bytes(raw)
    assert store.list() == []
    (problem,) = store.problems
    assert f"{field}: expected a time between 1970 and 9999" in problem.reason
    assert problem.moved_to is not None and problem.moved_to.read_bytes() == raw
    again = SessionStore(tmp_path / "again")
    again.path_for("s1").write_bytes(raw)
    assert outcome(again, "s1", raw) == "moved aside"


def test_sessions_command_reports_bad_timestamps_and_lists_the_rest(paths: Paths) -> None:
    store = SessionStore(paths.sessions_dir)
    store.save(sample_session("good"))
    for n, value in enumerate(BAD_TIMES):
        store.path_for(f"bad{n}").write_bytes(
            GOOD.replace(b'"updated": 2.0', b'"updated": ' + value)
        )
    result = subprocess.run(
        [sys.executable, "-m", "qwen_tui", "sessions"], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0 and "Traceback" not in result.stderr, result.stderr
    assert result.stdout.startswith("good ") and result.stdout.count("\n") == 1
    for n in range(len(BAD_TIMES)):
        assert f"bad{n}.json.corrupt-" in result.stderr


# ---------------------------------------------------------------- torn and damaged files


@FUZZ
@given(cut=st.integers(0, len(GOOD) - 1))
def test_truncated_files_are_moved_aside(cut: int) -> None:
    CASES["truncated"] += 1
    store, folder = fresh_store()
    with folder:
        store.path_for("s1").write_bytes(GOOD[:cut])
        # A cut inside the final newline still holds the whole object.
        expected = "loaded" if cut == len(GOOD) - 1 else "moved aside"
        assert outcome(store, "s1", GOOD[:cut]) == expected
        assert [s.id for s in store.list()] == (["s1"] if expected == "loaded" else [])


@FUZZ
@given(flips=st.lists(st.tuples(st.integers(0, len(GOOD) - 1), st.integers(1, 255)), max_size=4))
def test_bit_flipped_files_load_or_are_moved_aside(flips: list[tuple[int, int]]) -> None:
    CASES["bit flips"] += 1
    raw = bytearray(GOOD)
    for offset, mask in flips:
        raw[offset] ^= mask
    store, folder = fresh_store()
    with folder:
        store.path_for("s1").write_bytes(bytes(raw))
        loaded = outcome(store, "s1", bytes(raw)) == "loaded"
        assert [s.id for s in store.list()] == (["s1"] if loaded else [])


REQUIRED_TOP = {"schema_version", "id", "title", "created", "updated", "model", "system_prompt"}
REQUIRED_TOP |= {"settings", "messages"}
REQUIRED_MESSAGE = {"role", "content", "created"}


@FUZZ
@given(
    top=st.sets(st.sampled_from(sorted(session_to_dict(sample_session())))),
    message=st.sets(st.sampled_from(["role", "content", "created", "incomplete", "stats"])),
    settings_keys=st.sets(st.sampled_from(sorted(session_to_dict(sample_session())["settings"]))),
    stats_keys=st.sets(st.sampled_from(sorted(GenerationStats().to_dict()))),
)
def test_missing_fields_anywhere(
    top: set[str], message: set[str], settings_keys: set[str], stats_keys: set[str]
) -> None:
    CASES["missing fields"] += 1
    data = session_to_dict(sample_session())
    for key in top:
        del data[key]
    if "messages" in data:
        for key in message:
            data["messages"][1].pop(key, None)
        if isinstance(data["messages"][1].get("stats"), dict):
            for key in stats_keys:
                del data["messages"][1]["stats"][key]
    if "settings" in data:
        for key in settings_keys:
            del data["settings"][key]
    raw = json.dumps(data).encode()
    store, folder = fresh_store()
    with folder:
        store.path_for("s1").write_bytes(raw)
        result = outcome(store, "s1", raw)
        # Settings and stats fields have defaults; the others are required.
        required_missing = top & REQUIRED_TOP or (
            "messages" not in top and message & REQUIRED_MESSAGE
        )
        assert result == ("moved aside" if required_missing else "loaded")
        if required_missing:
            assert "missing" in store.problems[-1].reason


@FUZZ
@given(
    version=st.integers(min_value=SCHEMA_VERSION + 1)
    | st.integers(max_value=0)
    | st.none()
    | st.booleans()
    | st.floats()
    | st.text(max_size=5)
)
def test_mistyped_schema_versions_are_moved_aside_future_ones_left_alone(version: Any) -> None:
    CASES["schema versions"] += 1
    data = {**session_to_dict(sample_session()), "schema_version": version}
    raw = json.dumps(data).encode()
    store, folder = fresh_store()
    future = type(version) is int and version > SCHEMA_VERSION
    with folder:
        store.path_for("s1").write_bytes(raw)
        assert store.list() == []
        (problem,) = store.problems
        assert "schema_version" in problem.reason
        if future:  # a newer qwen-tui's file: it opens it, so it stays where it is
            assert problem.moved_to is None and store.path_for("s1").read_bytes() == raw
            assert "upgrade qwen-tui to open it" in problem.reason
        else:
            assert problem.moved_to is not None and problem.moved_to.read_bytes() == raw


def test_open_of_a_bad_file_leaves_it_unlocked(tmp_path: Path) -> None:
    store = SessionStore(tmp_path)
    store.path_for("s1").write_bytes(GOOD[:40])
    with pytest.raises(CorruptSessionError):
        store.open("s1")
    assert store.holder("s1") is None


# ---------------------------------------------------------------- the CLI over bad files


@FUZZ
@given(files=st.lists(st.binary(max_size=300) | st.just(GOOD), min_size=1, max_size=8))
def test_store_never_raises_on_a_folder_of_random_files(files: list[bytes]) -> None:
    CASES["folders"] += 1
    store, folder = fresh_store()
    with folder:
        for n, raw in enumerate(files):
            store.path_for(f"f{n}").write_bytes(raw)
        try:
            listed = store.list()
            for summary in listed:
                store.load(summary.id)
        except StoreError:
            pass  # load() of a file list() only checked at the top level
        goods = {f"f{n}" for n, raw in enumerate(files) if raw == GOOD}
        assert goods <= {s.id for s in store.list()}


def test_sessions_command_over_hostile_files(paths: Paths) -> None:
    store = SessionStore(paths.sessions_dir)
    store.save(sample_session("good"))
    hostile = {f"huge-{name}": raw for name, raw in HUGE_BAD.items() if name != "huge-role"}
    hostile |= {"torn": GOOD[:100], "binary": bytes(range(256)), "empty": b""}
    for name, raw in hostile.items():
        store.path_for(name).write_bytes(raw)
    result = subprocess.run(
        [sys.executable, "-m", "qwen_tui", "sessions"], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0 and "Traceback" not in result.stderr
    assert result.stdout.startswith("good ") and result.stdout.count("\n") == 1
    for name in hostile:
        assert f"{name}.json" in result.stderr
        left_in_place = name == "huge-huge-version"  # a newer release's file
        assert (f"{name}.json.corrupt-" in result.stderr) != left_in_place


# ---------------------------------------------------------------- schema migrations


OLD_VERSION_FILES: dict[int, bytes] = {
    1: (
        Path(__file__).parents[1] / "fixtures" / "sessions" / "with_attachments_v1.json"
    ).read_bytes()
}
"""A real file of each past schema version, one per migration step (version 1: written by
main at 09426a4, attachments included). Bumping SCHEMA_VERSION without adding one here fails
the test below."""


def test_every_migration_step_has_an_old_file() -> None:
    assert set(OLD_VERSION_FILES) == set(range(1, SCHEMA_VERSION))


@pytest.mark.parametrize("version", sorted(OLD_VERSION_FILES))
def test_each_real_step_upgrades_in_place(tmp_path: Path, version: int) -> None:
    store = SessionStore(tmp_path)
    store.path_for("old").write_bytes(OLD_VERSION_FILES[version])
    session = store.load("old")
    assert session.messages and all(m.id for m in session.messages)
    written = json.loads(store.path_for("old").read_bytes())["schema_version"]
    assert written == schema.written_version(session)
    assert store.load("old") == session
    if written == version:  # a flat session stays in the layout every release reads
        assert store.path_for("old").read_bytes() == OLD_VERSION_FILES[version]
        assert not list(tmp_path.glob("*.bak"))
    else:
        (backup,) = tmp_path.glob(f"old.json.v{version}.bak")
        assert backup.read_bytes() == OLD_VERSION_FILES[version]


@pytest.fixture
def version_3(monkeypatch: pytest.MonkeyPatch) -> None:
    """A pretend next schema version whose step (2 -> 3) renames the title."""
    steps = {**schema.MIGRATIONS, 2: lambda data: {**data, "title": f"{data['title']} (v3)"}}
    monkeypatch.setattr(schema, "SCHEMA_VERSION", 3)
    monkeypatch.setattr(schema, "MIGRATIONS", steps)


def test_old_file_is_upgraded_in_place_keeping_a_backup(tmp_path: Path, version_3: None) -> None:
    store = SessionStore(tmp_path)
    store.path_for("s1").write_bytes(GOOD)
    assert store.list()[0].title == "sample (v3)"  # listing reads it, rewrites nothing
    assert store.path_for("s1").read_bytes() == GOOD
    session = store.load("s1")
    assert session.title == "sample (v3)"
    upgraded = json.loads(store.path_for("s1").read_bytes())
    assert upgraded["schema_version"] == 3 and upgraded["title"] == "sample (v3)"
    backup = tmp_path / "s1.json.v1.bak"
    assert backup.read_bytes() == GOOD and (backup.stat().st_mode & 0o077) == 0
    assert store.load("s1") == session  # already current: no second step, no second backup
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s1.json", "s1.json.v1.bak"]
    assert [s.id for s in store.list()] == ["s1"] and store.problems == []


def test_upgrade_never_overwrites_an_earlier_backup(tmp_path: Path, version_3: None) -> None:
    store = SessionStore(tmp_path)
    (tmp_path / "s1.json.v1.bak").write_bytes(b"an older backup")
    store.path_for("s1").write_bytes(GOOD)
    store.load("s1")
    assert (tmp_path / "s1.json.v1.bak").read_bytes() == b"an older backup"
    assert (tmp_path / "s1.json.v1.bak-2").read_bytes() == GOOD


def test_no_upgrade_while_another_process_writes_the_session(
    tmp_path: Path, version_3: None
) -> None:
    store = SessionStore(tmp_path)
    store.path_for("s1").write_bytes(GOOD)
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys; from pathlib import Path; from qwen_tui.store import SessionStore;"
            "SessionStore(Path(sys.argv[1])).lock('s1'); print('locked', flush=True);"
            "sys.stdin.read()",
            str(tmp_path),
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline() == "locked\n"
        assert store.load("s1").title == "sample (v3)"  # upgraded in memory only
        assert store.path_for("s1").read_bytes() == GOOD
        assert not (tmp_path / "s1.json.v1.bak").exists()
    finally:
        holder.kill()
        holder.wait()


def test_a_failing_step_moves_the_file_aside_untouched(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken_step(data: dict[str, Any]) -> dict[str, Any]:
        raise ValueError("messages: cannot convert")

    monkeypatch.setattr(schema, "SCHEMA_VERSION", 2)
    monkeypatch.setattr(schema, "MIGRATIONS", {1: broken_step})
    store = SessionStore(tmp_path)
    store.path_for("s1").write_bytes(GOOD)
    with pytest.raises(CorruptSessionError, match="cannot convert"):
        store.load("s1")
    (moved,) = tmp_path.glob("s1.json.corrupt-*")
    assert moved.read_bytes() == GOOD
    assert not list(tmp_path.glob("*.bak"))


# ---------------------------------------------------------------- files that are not files


def odd_files(folder: Path, outside: Path) -> dict[str, str]:
    """Make each kind of not-a-file named like a session; name -> what the report says."""
    folder.mkdir(parents=True, exist_ok=True)
    os.mkfifo(folder / "fifo.json")
    (folder / "dir.json").mkdir()
    (folder / "dangling.json").symlink_to(folder / "nowhere.json")
    outside.write_bytes(GOOD)
    (folder / "outside.json").symlink_to(outside)
    return {
        "fifo": "is a named pipe (FIFO), not a session file",
        "dir": "is a folder, not a session file",
        "dangling": "is a symbolic link (to",
        "outside": f"is a symbolic link (to {outside})",
    }


def test_odd_files_are_reported_never_followed_never_waited_on(tmp_path: Path) -> None:
    store = SessionStore(tmp_path / "sessions")
    expected = odd_files(store.dir, tmp_path / "elsewhere.json")
    store.save(sample_session("good"))
    assert [s.id for s in store.list()] == ["good"]
    reasons = {p.path.name.removesuffix(".json"): p.reason for p in store.problems}
    assert set(reasons) == set(expected)
    for name, words in expected.items():
        assert words in reasons[name]
    assert all(p.moved_to is None for p in store.problems)  # not ours to move
    store.list()
    assert len(store.problems) == len(expected)  # told once, not at every listing
    for name, words in expected.items():
        with pytest.raises(StoreError, match=re.escape(words)):
            store.load(name)  # a FIFO would block here if opened like a file
    assert (tmp_path / "elsewhere.json").read_bytes() == GOOD


def test_a_symlinked_session_is_not_replaced_by_a_regular_file(tmp_path: Path) -> None:
    store = SessionStore(tmp_path / "sessions")
    store.dir.mkdir(parents=True, exist_ok=True)
    target = store.dir / "real.json"
    target.write_bytes(GOOD)
    link = store.path_for("linked")
    link.symlink_to(target)
    with pytest.raises(StoreError, match=r"is a symbolic link .*not replacing it"):
        store.save(sample_session("linked"))
    assert link.is_symlink() and target.read_bytes() == GOOD


def test_cli_never_hangs_on_a_fifo_and_reports_every_odd_file(paths: Paths) -> None:
    expected = odd_files(paths.sessions_dir, paths.data_dir / "elsewhere.json")
    listed = subprocess.run(
        [sys.executable, "-m", "qwen_tui", "sessions"], capture_output=True, text=True, timeout=60
    )
    assert listed.returncode == 0 and "Traceback" not in listed.stderr
    for name, words in expected.items():
        assert f"{name}.json: {words}" in listed.stderr
    asked = subprocess.run(
        [sys.executable, "-m", "qwen_tui", "ask", "--session", "fifo", "hi"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert asked.returncode == 2, asked.stderr
    assert "could not read session fifo: is a named pipe (FIFO)" in asked.stderr


# ---------------------------------------------------------------- any JSON as a session file

SESSION_FUZZ = settings(
    max_examples=examples(250),
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
edge_numbers = (
    st.floats()
    | st.integers(min_value=2**63)
    | st.integers(max_value=-1)
    | st.sampled_from([1e20, -1e20, 1e308, 253402300800.0, 253402300799.0, -1.0, 0.0])
)
"""Where damage hides best: timestamps, counts, settings."""
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | edge_numbers | hostile_text,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(hostile_text, inner, max_size=3),
    max_leaves=6,
)


def paths_in(value: Any, prefix: tuple = ()) -> list[tuple]:
    """Every key path into a JSON value (dict keys and list indexes)."""
    found = [prefix]
    if isinstance(value, dict):
        for key, item in value.items():
            found += paths_in(item, (*prefix, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found += paths_in(item, (*prefix, index))
    return found


@st.composite
def session_json(draw: st.DrawFn) -> Any:
    """A good session with 1-3 places replaced by any JSON value, or any JSON at all."""
    if draw(st.integers(0, 9)) == 0:
        return draw(json_values)
    data = session_to_dict(sample_session())
    for _ in range(draw(st.integers(1, 3))):
        every = paths_in(data)
        leaves = [p for p in every if not isinstance(_at(data, p), dict | list)]
        where = draw(st.sampled_from(leaves if leaves and draw(st.booleans()) else every))
        value = draw(edge_numbers | json_values)
        if not where:
            return value
        parent = data
        for step in where[:-1]:
            parent = parent[step]
        parent[where[-1]] = value
    return data


def _at(data: Any, where: tuple) -> Any:
    for step in where:
        data = data[step]
    return data


@SESSION_FUZZ
@given(data=session_json())
def test_any_json_is_loaded_or_moved_aside_never_a_traceback(data: Any) -> None:
    from qwen_tui.store.export import session_markdown

    raw = json.dumps(data).encode()
    with tempfile.TemporaryDirectory() as home:
        previous = os.environ.get("QWEN_TUI_HOME")
        os.environ["QWEN_TUI_HOME"] = home
        try:
            store = SessionStore(paths_for(home).sessions_dir)
            store.path_for("s1").write_bytes(raw)
            listed = run_main("sessions")
            assert listed.status == 0 and b"Traceback" not in listed.stderr, listed.stderr
            assert raw_controls(listed.stdout) == [] and raw_controls(listed.stderr) == []
            if store.path_for("s1").exists():
                result = outcome(store, "s1", raw)
            else:
                result = "moved aside"  # by the listing, which reported it
                assert b"s1.json.corrupt-" in listed.stderr
            if result == "loaded":
                session_markdown(store.load("s1"))  # export never fails on a loaded session
        finally:
            if previous is None:
                del os.environ["QWEN_TUI_HOME"]
            else:
                os.environ["QWEN_TUI_HOME"] = previous
    CASES[f"any JSON: {result}"] += 1


def paths_for(home: str) -> Paths:
    from qwen_tui.paths import get_paths

    assert os.environ["QWEN_TUI_HOME"] == home
    return get_paths()


@pytest.mark.parametrize("args", [(), ("--session", "fifo")], ids=["start", "open-the-fifo"])
def test_the_app_draws_and_quits_with_a_fifo_among_the_sessions(
    tiny_home: Paths, args: tuple[str, ...]
) -> None:
    from tests.faults.test_tui_faults import DRAWN, tiny_tui_home
    from tests.faults.tui_process import TuiProcess

    tiny_tui_home(tiny_home)
    os.mkfifo(tiny_home.sessions_dir / "fifo.json")
    tui = TuiProcess(*args, env=None)
    try:
        deadline = time.monotonic() + 60
        while DRAWN not in tui.output:
            assert tui.process.poll() is None, bytes(tui.output).decode("utf-8", "replace")
            assert time.monotonic() < deadline, "the app never drew its screen"
            time.sleep(0.05)
        tui.type("\x11")  # ctrl+q
        assert tui.process.wait(timeout=30) == 0
    finally:
        if tui.process.poll() is None:
            tui.process.kill()
            tui.process.wait()
