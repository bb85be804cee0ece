"""Which hub to download from and with which token: the settings of a download.

Kept apart from the transfer so the CLI and the setup screen can resolve (and show) the
endpoint and token without importing anything that talks to the network.
"""

from __future__ import annotations

import os

DEFAULT_ENDPOINT = "https://huggingface.co"
ENDPOINT_ENV = "HF_ENDPOINT"
TOKEN_ENV = "HF_TOKEN"
MIRROR_HINT = "https://hf-mirror.com"


def resolve_endpoint(cli_endpoint: str | None, config_endpoint: str) -> str:
    """The hub to use: `--endpoint`, then `HF_ENDPOINT`, then config.toml, then huggingface.co."""
    for candidate in (cli_endpoint, os.environ.get(ENDPOINT_ENV), config_endpoint):
        if candidate and candidate.strip():
            endpoint = candidate.strip().rstrip("/")
            return endpoint if "://" in endpoint else f"https://{endpoint}"
    return DEFAULT_ENDPOINT


def resolve_token(config_token: str) -> str | None:
    """The access token for gated repos: `HF_TOKEN`, then config.toml, else none.

    With none, huggingface_hub still uses a token saved by `huggingface-cli login`.
    """
    for candidate in (os.environ.get(TOKEN_ENV), config_token):
        if candidate and candidate.strip():
            return candidate.strip()
    return None
