"""The model layer: prompt building, loading, generation, streaming, cancel, stats.

Never imports textual; heavy libraries (torch, transformers, bigdl) are imported lazily.
"""

from qwen_tui.engine.base import (
    Engine,
    EngineError,
    GenerationEvent,
    ModelDamagedError,
    ModelInfo,
    ReplyDone,
    TextChunk,
)

__all__ = [
    "Engine",
    "EngineError",
    "GenerationEvent",
    "ModelDamagedError",
    "ModelInfo",
    "ReplyDone",
    "TextChunk",
]
