"""Getting models onto the machine: catalog, download, GGUF import, quantize, installed list.

Never imports textual; heavy libraries are imported lazily inside the functions that need them.
"""
