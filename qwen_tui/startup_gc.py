"""Python's cyclic garbage collector, held off while qwen-tui starts.

Starting the app imports ~400 modules and builds its first screen: hundreds of thousands of
new objects, none of them garbage, that the collector would walk again and again as they
pile up (a tenth of the imports' time, docs/BENCHMARKS.md "Launch time"). So collection
waits from the start of `cli.main` until the app's first frame, or until a headless command
starts its work. Then what exists is frozen (`gc.freeze`: long-lived, never walked again,
which also keeps the later collections while a reply streams short) and collection resumes.
"""

from __future__ import annotations

import gc

_held = False
"""Whether hold() paused the collector and release() has not resumed it yet."""


def hold() -> None:
    """Pause collection for the start-up (a no-op if it is already off)."""
    global _held
    if gc.isenabled():
        gc.disable()
        _held = True


def release() -> None:
    """Resume collection paused by hold(), freezing the start-up's objects first; a no-op
    otherwise (an app started by the tests, a second call)."""
    global _held
    if _held:
        _held = False
        gc.freeze()
        gc.enable()
