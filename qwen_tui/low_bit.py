"""The low-bit formats a model can be quantized to: one list for config.toml's
`[model] low_bit`, `setup --low-bit` and quantize itself."""

from __future__ import annotations

LOW_BIT_FORMATS = ("sym_int4", "asym_int4", "sym_int8", "nf4")
