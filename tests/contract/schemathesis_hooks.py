"""Loaded by schemathesis (SCHEMATHESIS_HOOKS): tus PATCH bodies are raw bytes under tus's own media type."""
import schemathesis

schemathesis.serializer.alias("application/offset+octet-stream", "application/octet-stream")
