"""Log formatting: `logging.format: json` writes one JSON object a line (for log shippers), `text` a plain line."""
from __future__ import annotations

import json
import logging
import sys
from datetime import datetime, timezone

ACCESS_LOGGER = "baas.access"


class JsonFormatter(logging.Formatter):
    """One JSON object a line: time, level, logger, message, plus an access record's fields at the top level."""

    def format(self, record: logging.LogRecord) -> str:
        line = {
            "time": datetime.fromtimestamp(record.created, timezone.utc).isoformat(timespec="milliseconds")
            .replace("+00:00", "Z"),
            "level": record.levelname,
            "logger": record.name,
        }
        access = getattr(record, "access", None)
        if access is not None:
            line.update(access)
        else:
            line["message"] = record.getMessage()
        if record.exc_info:
            line["error"] = self.formatException(record.exc_info)
        return json.dumps(line, default=str, separators=(",", ":"))


TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s %(message)s"


def formatter(log_format: str) -> logging.Formatter:
    return JsonFormatter() if log_format == "json" else logging.Formatter(TEXT_FORMAT)


class _StderrHandler(logging.StreamHandler):
    """Writes to whatever sys.stderr is when a line is logged (test runners and daemons replace it)."""

    def __init__(self):
        super().__init__()

    @property
    def stream(self):
        return sys.stderr

    @stream.setter
    def stream(self, _value):
        pass


_HANDLER_NAME = "baas-stderr"


def configure_logging(config: dict) -> None:
    """`logging.level` for baas's own loggers, written to stderr in `logging.format`.

    An application that already configured logging (a root handler exists, e.g. pytest's or an embedding app's)
    keeps its handlers; only the level of baas's loggers is set. Applied by create_app, so every server process
    (granian workers included) logs the same way.
    """
    logger = logging.getLogger("baas")
    logger.setLevel(config["logging"]["level"])
    if logging.getLogger().handlers or any(h.get_name() == _HANDLER_NAME for h in logger.handlers):
        return
    handler = _StderrHandler()
    handler.set_name(_HANDLER_NAME)
    handler.setFormatter(formatter(config["logging"]["format"]))
    logger.addHandler(handler)


def configure_access_log(config: dict) -> logging.Logger:
    """Give the access logger its own stderr handler in the configured format (idempotent per process)."""
    logger = logging.getLogger(ACCESS_LOGGER)
    for handler in list(logger.handlers):
        if getattr(handler, "baas_access", False):
            logger.removeHandler(handler)
    handler = _StderrHandler()
    handler.baas_access = True
    handler.setFormatter(formatter(config["logging"]["format"]))
    logger.addHandler(handler)
    logger.setLevel(logging.INFO if config["logging"]["access"] else logging.WARNING)
    logger.propagate = False
    return logger
