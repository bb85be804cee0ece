"""At start the model's load waits for the first frame (issue 14's launch time).

Loading a model starts with importing torch, seconds of Python in the load worker; started in
on_mount it shared the GIL with the layout and paint of the first frame. The load now starts
once the screen has been laid out, which the prompt having a place on the screen shows.
"""

from __future__ import annotations

import gc

from qwen_tui import startup_gc
from tests.tui.conftest import wait_for


async def test_the_model_load_starts_after_the_first_frame_is_laid_out(make_app):
    app = make_app()
    load = app._engine_factory
    prompt_areas: list[int] = []

    def factory(model):
        # In the load worker: the prompt's area on the screen as the load starts.
        prompt_areas.append(app.chat_screen.prompt.region.area)
        return load(model)

    app._engine_factory = factory
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: app.model_state == "ready")
    assert len(prompt_areas) == 1
    assert prompt_areas[0] > 0


async def test_garbage_collection_held_for_the_start_resumes_at_the_first_frame(make_app):
    # cli.main holds the collector off (startup_gc.py); the app must give it back once its
    # first frame is drawn, with the start-up's objects frozen, or a long chat runs with
    # no cycle collection at all.
    app = make_app()
    startup_gc.hold()
    try:
        assert not gc.isenabled()
        async with app.run_test(size=(80, 24)) as pilot:
            await wait_for(pilot, lambda: app.chat_screen.prompt.region.area > 0)
            await wait_for(pilot, gc.isenabled)
            assert gc.get_freeze_count() > 0
    finally:
        startup_gc.release()
        gc.unfreeze()  # the test process's objects are not a start-up's
        gc.enable()
