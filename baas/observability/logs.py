"""Log formatting: `logging.format: json` writes one JSON object a line (for log shippers), `text` a plain line."""
from __future__ import annotations

import json
import logging
import sys
import time
from datetime import datetime, timezone

ACCESS_LOGGER = "baas.access"


_ENCODE = json.JSONEncoder(default=str, separators=(",", ":")).encode  # what json.dumps(...) builds per call


def _json_time(created: float) -> str:
    return datetime.fromtimestamp(created, timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class JsonFormatter(logging.Formatter):
    """One JSON object a line: time, level, logger, message, plus an access record's fields at the top level."""

    def format(self, record: logging.LogRecord) -> str:
        line = {"time": _json_time(record.created), "level": record.levelname, "logger": record.name}
        access = getattr(record, "access", None)
        if access is not None:
            line.update(access)
        else:
            line["message"] = record.getMessage()
        if record.exc_info:
            line["error"] = self.formatException(record.exc_info)
        return _ENCODE(line)

    def access_line(self, created: float, msecs: int, name: str, message: str, access: dict) -> str:
        """The line format() writes for an INFO access record (AccessLog's direct path)."""
        return _ENCODE({"time": _json_time(created), "level": "INFO", "logger": name, **access})


TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s %(message)s"


class TextFormatter(logging.Formatter):
    """logging.Formatter(TEXT_FORMAT), with the line of an access record also built directly."""

    def __init__(self):
        super().__init__(TEXT_FORMAT)
        self._second = (None, "")  # (whole second, its asctime without milliseconds): one strftime a second

    def access_line(self, created: float, msecs: int, name: str, message: str, access: dict) -> str:
        """The line format() writes for an INFO record of logger `name` (AccessLog's direct path)."""
        second = int(created)
        cached, text = self._second
        if cached != second:
            text = time.strftime(self.default_time_format, self.converter(created))
            self._second = (second, text)
        return f"{text},{msecs:03d} INFO {name} {message}"


def formatter(log_format: str) -> logging.Formatter:
    return JsonFormatter() if log_format == "json" else TextFormatter()


class AccessLog:
    """Writes the access line of every request: through the logging machinery when someone else listens on the
    access logger (a filter, another handler: tests, an embedding app), else straight to the handler's stream.

    The direct path writes the same line as logger.info() through configure_access_log's handler would, without
    the LogRecord, the handler chain and the %-formatting of a whole record per request (about a third of what
    baas added to a GET by id over a bare Flask view).
    """

    def __init__(self, logger: logging.Logger):
        self.logger = logger

    def enabled(self) -> bool:
        return not self.logger.disabled and self.logger.isEnabledFor(logging.INFO)

    def write(self, message: str, access: dict) -> None:
        logger = self.logger
        handlers = logger.handlers
        if len(handlers) == 1 and not logger.filters and not logger.propagate:
            handler = handlers[0]
            access_line = getattr(handler.formatter, "access_line", None)
            if access_line is not None and getattr(handler, "baas_access", False) and not handler.filters \
                    and handler.level <= logging.INFO:
                now_ns = time.time_ns()
                line = access_line(now_ns / 1e9, now_ns % 1_000_000_000 // 1_000_000, logger.name, message,
                                   access) + "\n"
                with handler.lock:
                    try:
                        stream = handler.stream
                        stream.write(line)
                        stream.flush()
                    except Exception:  # a closed or broken stream: reported as StreamHandler.emit reports it
                        handler.handleError(logger.makeRecord(logger.name, logging.INFO, "(access log)", 0,
                                                              message, (), None, extra={"access": access}))
                return
        logger.info(message, extra={"access": access})


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
