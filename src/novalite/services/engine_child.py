"""``python -m novalite.services.engine_child``: an engine restarted by the API process of
``novalite serve`` (``services.engine_process.spawn``).

A fresh interpreter, not a fork: by the time an engine has to be replaced the API process runs
threads, and a fork copies whatever locks they held. The API process passes the Settings as JSON
on stdin and three kinds of descriptors: ``--link-fd``, this process's end of the message link
(``messaging.peer``); ``--parent-fd``, the read end of a pipe that reaches end-of-file once the API
process is gone; and the data directory's lock (``instance_lock``), held here as long as this
process lives.
"""

from __future__ import annotations

import argparse
import logging
import socket
import sys


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="novalite-engine")
    parser.add_argument("--link-fd", type=int, required=True)
    parser.add_argument("--parent-fd", type=int, required=True)
    args = parser.parse_args(argv)
    from novalite.runtime import limit_malloc_arenas

    limit_malloc_arenas()
    from novalite.services import engine_process

    settings = engine_process.settings_from_json(sys.stdin.read())
    logging.basicConfig(
        level=settings.log_level.upper(),
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    link = socket.socket(fileno=args.link_fd)
    from novalite.app import build_runtime

    runtime = build_runtime(settings)
    runtime.db.share_with_processes()  # writers queue with the API process's (which go first)
    engine_process.engine_main(runtime, link, args.parent_fd)  # never returns


if __name__ == "__main__":
    main()
