"""Run qwen-tui, logging every attempt to reach the network (not Unix sockets) to a file.

    python audit_network.py LOG_FILE ask ...

An audit hook sees each `socket.connect`, `socket.getaddrinfo` and `socket.sendto` of the
process, whichever library makes them.
"""

from __future__ import annotations

import socket
import sys

NETWORK_FAMILIES = (socket.AF_INET, socket.AF_INET6)


def main() -> int:
    log_path, *argv = sys.argv[1:]
    log = open(log_path, "a", encoding="utf-8")  # noqa: SIM115 (open for the process's life)

    def hook(event: str, args: tuple) -> None:
        if event in ("socket.connect", "socket.sendto") and args[0].family in NETWORK_FAMILIES:
            log.write(f"{event} {args[1]!r}\n")
        elif event == "socket.getaddrinfo":
            log.write(f"{event} {args[0]!r}\n")
        else:
            return
        log.flush()

    sys.addaudithook(hook)
    from qwen_tui.cli import main as qwen_tui

    return qwen_tui(argv)


if __name__ == "__main__":
    sys.exit(main())
