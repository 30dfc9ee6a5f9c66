"""Log output of baas: the `logging.level` setting, and one plain line format on stderr.

Applied by create_app, so every server process (granian workers included) logs the same way. An application
that already configured logging (a root handler exists, e.g. pytest's or an embedding app's) keeps its
handlers; only the level of baas's own loggers is set.
"""
from __future__ import annotations

import logging
import sys

FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
_HANDLER_NAME = "baas-stderr"


def configure(level: str) -> None:
    logging.getLogger("baas").setLevel(level)
    root = logging.getLogger()
    if root.handlers:
        return
    handler = logging.StreamHandler(sys.stderr)
    handler.set_name(_HANDLER_NAME)
    handler.setFormatter(logging.Formatter(FORMAT))
    logger = logging.getLogger("baas")
    if not any(h.get_name() == _HANDLER_NAME for h in logger.handlers):
        logger.addHandler(handler)
