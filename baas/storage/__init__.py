"""Adapters that hide pymongo, minio and the local disk from the services."""
