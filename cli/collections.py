"""`baas collections ...`: collection definitions (schema, indexes, rules), declared in a YAML file.

`apply FILE.yaml` makes the server match the file and changes only what differs, so running it twice changes
nothing the second time; `diff FILE.yaml` shows what apply would change without changing it. The file:

    collections:
      posts:
        schema: {type: object, required: [title]}
        indexes:
          - {name: by_created, keys: {_created: -1}}
        rules: {read: public, create: authenticated, update: owner, delete: owner}

Collections on the server that the file does not name are left alone (`delete` removes one).
"""
from __future__ import annotations

import difflib
import json

import click
import yaml

from baas.rules import ACTIONS
from baas_cli.client import ApiError, CliError, admin_command
from baas_cli.output import format_time
from baas_cli.params import confirm_unless, yes_option

DEFINITION_KEYS = ("schema", "indexes", "rules")
# What the server fills in for an index that leaves these out; compared with them so a short entry in the file
# is not a change.
INDEX_DEFAULTS = {"unique": False, "expire_after_seconds": None}
RULE_DEFAULT = "none"  # an action the rules leave out is refused

COLLECTION_COLUMNS = [
    ("NAME", "name"),
    ("INDEXES", lambda c: [index.get("name") for index in c.get("indexes") or []]),
    ("RULES", lambda c: c.get("rules")),
    ("UPDATED", lambda c: format_time(c.get("updated_at") or c.get("created_at"))),
]


def load_file(path: str) -> dict:
    """{name: {schema, indexes, rules}} from a collections file, with every problem named."""
    try:
        with open(path, encoding="utf-8") as handle:
            data = yaml.safe_load(handle)
    except OSError as exc:
        raise CliError(f"cannot read {path}: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        raise CliError(f"{path} is not valid YAML: {' '.join(str(exc).split())}") from None
    if not isinstance(data, dict) or not isinstance(data.get("collections"), dict) or set(data) != {"collections"}:
        raise CliError(f"{path} must hold one key, 'collections', mapping names to definitions")
    definitions = {}
    for name, definition in data["collections"].items():
        definition = {} if definition is None else definition
        if not isinstance(name, str) or not isinstance(definition, dict):
            raise CliError(f"{path}: collection {name!r} must map to schema, indexes and rules")
        unknown = set(definition) - set(DEFINITION_KEYS)
        if unknown:
            raise CliError(f"{path}: collection '{name}' has unknown keys {', '.join(sorted(map(str, unknown)))}; "
                           f"use {', '.join(DEFINITION_KEYS)}")
        definitions[name] = definition
    return definitions


def _normal(key: str, value):
    if key == "indexes":
        return sorted(({**INDEX_DEFAULTS, **index} if isinstance(index, dict) else index for index in value or []),
                      key=lambda index: json.dumps(index, sort_keys=True, default=str))
    if key == "rules" and isinstance(value, dict):
        return {**{action: RULE_DEFAULT for action in ACTIONS}, **value}
    return value


def changes(current: dict | None, wanted: dict) -> dict:
    """The keys of `wanted` whose value differs on the server (all of them for a new collection)."""
    if current is None:
        return dict(wanted)
    return {key: value for key, value in wanted.items() if _normal(key, value) != _normal(key, current.get(key))}


def _current(api, project_id: str, name: str) -> dict | None:
    try:
        return api.get_collection(project_id, name)
    except ApiError as exc:
        if exc.status == 404:
            return None
        raise


def plan(api, project_id: str, definitions: dict) -> list[tuple[str, dict | None, dict]]:
    """[(name, current definition or None, changed keys)] for every collection in the file."""
    return [(name, current, changes(current, wanted)) for name, wanted in definitions.items()
            for current in [_current(api, project_id, name)]]


def _as_yaml(value) -> list[str]:
    return yaml.safe_dump(value, sort_keys=True, default_flow_style=False).splitlines()


def render_diff(name: str, current: dict | None, changed: dict) -> list[str]:
    if current is None:
        return [f"+ {name} (new collection)"] + [f"+   {line}" for line in _as_yaml(changed)]
    lines = [f"~ {name}"]
    for key, value in changed.items():
        before = _as_yaml({key: _normal(key, current.get(key))})
        after = _as_yaml({key: _normal(key, value)})
        lines += ["    " + line for line in difflib.unified_diff(before, after, "server", "file", lineterm="")]
    return lines


@click.group("collections")
def collections():
    """Collection definitions: schema, indexes and access rules (apply them from a YAML file)."""


@collections.command("list")
@click.argument("project_id", metavar="PROJECT")
@admin_command
def list_(project_id, api, out):
    """List PROJECT's collections."""
    out.table(api.list_collections(project_id), COLLECTION_COLUMNS,
              empty=f"Project {project_id} has no collections; define them with `baas collections apply`.")


@collections.command("show")
@click.argument("project_id", metavar="PROJECT")
@click.argument("name")
@admin_command
def show(project_id, name, api, out):
    """Show a collection's definition (as YAML you can paste into a collections file)."""
    definition = api.get_collection(project_id, name)
    if out.as_json:
        out.json(definition)
        return
    click.echo(yaml.safe_dump({"collections": {name: {key: definition.get(key) for key in DEFINITION_KEYS}}},
                              sort_keys=False, default_flow_style=False).rstrip())


@collections.command("diff")
@click.argument("project_id", metavar="PROJECT")
@click.argument("path", metavar="FILE.yaml", type=click.Path(dir_okay=False))
@admin_command
def diff(project_id, path, api, out):
    """Show what `apply` would change on the server (exit status 0 either way)."""
    steps = plan(api, project_id, load_file(path))
    if out.as_json:
        out.json([{"name": name, "action": "create" if current is None else ("update" if changed else "none"),
                   "changes": changed} for name, current, changed in steps])
        return
    pending = [(name, current, changed) for name, current, changed in steps if changed or current is None]
    if not pending:
        click.echo(f"No changes: project {project_id} matches {path}.")
        return
    for name, current, changed in pending:
        click.echo("\n".join(render_diff(name, current, changed)))


@collections.command("apply")
@click.argument("project_id", metavar="PROJECT")
@click.argument("path", metavar="FILE.yaml", type=click.Path(dir_okay=False))
@admin_command
def apply(project_id, path, api, out):
    """Create or change PROJECT's collections to match FILE.yaml; unchanged ones are not touched."""
    results = []
    for name, current, changed in plan(api, project_id, load_file(path)):
        action = "create" if current is None else ("update" if changed else "none")
        if action != "none":
            api.put_collection(project_id, name, changed)
        results.append({"name": name, "action": action, "changed": sorted(changed)})
    if out.as_json:
        out.json(results)
        return
    words = {"create": "created", "update": "updated", "none": "unchanged"}
    for result in results:
        detail = f" ({', '.join(result['changed'])})" if result["action"] == "update" else ""
        click.echo(f"{result['name']}: {words[result['action']]}{detail}")


@collections.command("delete")
@click.argument("project_id", metavar="PROJECT")
@click.argument("name")
@yes_option
@admin_command
def delete(project_id, name, yes, api, out):
    """Delete a collection with all its documents."""
    confirm_unless(yes, f"Delete collection '{name}' of project '{project_id}' with all its documents? This "
                        "cannot be undone")
    api.delete_collection(project_id, name)
    out.result({"deleted": name}, f"Deleted collection {name}.")


def register(cli: click.Group) -> None:
    cli.add_command(collections)
