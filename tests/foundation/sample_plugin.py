"""A plugin loaded by module path in tests/foundation/test_plugin_loading.py."""
from baas.errors import Rejected
from baas.plugins.hookspecs import hookimpl

created = []


@hookimpl
def baas_before_document_write(collection, action, document):
    if document is not None and document.get("forbidden"):
        raise Rejected("Documents may not be forbidden.")


@hookimpl
def baas_after_document_write(collection, action, document):
    created.append((collection, action, document["_id"]))


@hookimpl
def baas_project_created(project):
    raise RuntimeError("a broken after-hook must not break the request")
