"""Talking to a baas server's admin API: where it is, which token to send, and what went wrong in one line.

Connection settings resolve field by field: command-line flags, then environment variables (BAAS_URL,
BAAS_ADMIN_TOKEN, BAAS_PROFILE), then the profile saved by `baas login`, then the default URL.
"""
from __future__ import annotations

import functools
import json
import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote, urlencode, urlsplit

import click
import requests

from baas import __version__

DEFAULT_URL = "http://127.0.0.1:8000"
DEFAULT_PROFILE = "default"
TIMEOUT = (10, 120)  # (connect, read): deleting a big project takes a while on the server


class CliError(click.ClickException):
    """A failure reported as one `Error: ...` line and exit status 1."""

    def __init__(self, message: str):
        super().__init__(" ".join(str(message).split()))  # one line, whatever the server sent


class ApiError(CliError):
    """The server answered with an error."""

    def __init__(self, status: int, message: str, hint: str = ""):
        self.status = status
        super().__init__(f"{message} (HTTP {status})" + (f" {hint}" if hint else ""))


class ConnectionFailed(CliError):
    def __init__(self, url: str, reason: str = ""):
        self.url = url
        super().__init__(f"cannot reach baas at {url}" + (f" ({reason})" if reason else ""))


# -- profiles --------------------------------------------------------------------------------------------------

def config_dir() -> Path:
    """The per-user config folder: $XDG_CONFIG_HOME/baas (~/.config/baas), or the platform's equivalent."""
    return Path(click.get_app_dir("baas"))


def profiles_path() -> Path:
    return config_dir() / "profiles.json"


def load_profiles() -> dict:
    path = profiles_path()
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        raise CliError(f"cannot read profiles from {path}: {exc}") from None
    profiles = data.get("profiles") if isinstance(data, dict) else None
    if not isinstance(profiles, dict):
        raise CliError(f"{path} is not a baas profiles file; remove it and run `baas login` again")
    return profiles


def save_profiles(profiles: dict) -> Path:
    """Write the profiles file readable by its owner only (it holds admin tokens), replacing it atomically."""
    path = profiles_path()
    try:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        handle, temp_name = tempfile.mkstemp(prefix=".profiles-", suffix=".json", dir=path.parent)
        try:
            with os.fdopen(handle, "w", encoding="utf-8") as temp:
                json.dump({"profiles": profiles}, temp, indent=2, sort_keys=True)
                temp.write("\n")
            os.chmod(temp_name, 0o600)
            os.replace(temp_name, path)
        except BaseException:
            Path(temp_name).unlink(missing_ok=True)
            raise
    except OSError as exc:
        raise CliError(f"cannot write profiles to {path}: {exc}") from None
    return path


# -- settings --------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Settings:
    url: str
    token: str | None
    profile: str | None     # the profile that supplied a value, if any
    withheld: str | None = None  # why a saved token was not used


def normalize_url(url: str) -> str:
    url = (url or "").strip().rstrip("/")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise CliError(f"the baas URL must look like http://host:port or https://host, not {url!r}")
    return url


def resolve_settings(url: str | None, token: str | None, profile_name: str | None) -> Settings:
    """Flags and environment (already merged by click) beat the profile, which beats the default URL."""
    profiles = load_profiles()
    chosen = bool(profile_name)
    if chosen:
        profile = profiles.get(profile_name)
        if profile is None:
            raise CliError(f"no profile '{profile_name}' in {profiles_path()}; "
                           f"create it with `baas login --profile {profile_name}`")
    else:
        profile = profiles.get(DEFAULT_PROFILE)
        profile_name = DEFAULT_PROFILE if profile is not None else None
    profile = profile or {}
    resolved_url = normalize_url(url or profile.get("url") or DEFAULT_URL)
    profile_token = profile.get("token") or None
    if not chosen and profile_token and normalize_url(profile.get("url") or DEFAULT_URL) != resolved_url:
        # The implicit default profile's token belongs to its own server: `--url https://elsewhere` alone must
        # not send it there. Naming the profile (--profile / BAAS_PROFILE) says the caller means it.
        profile_token = None
        withheld = (f"the saved profile '{profile_name}' is for {normalize_url(profile.get('url') or DEFAULT_URL)}; "
                    f"add --profile {profile_name} to send its token to {resolved_url}")
    else:
        withheld = None
    return Settings(url=resolved_url, token=token or profile_token, profile=profile_name,
                    withheld=None if token else withheld)


# -- HTTP ------------------------------------------------------------------------------------------------------

_ID = re.compile(r"^[A-Za-z0-9_-]{1,200}$")


def _segment(value: str, what: str = "id") -> str:
    """One path segment. Servers decode %2F before routing, so quoting alone would let 'p/keys' or '..' climb out
    of its place in the URL; project and key ids never hold anything but these characters."""
    if not _ID.match(str(value)):
        raise CliError(f"'{value}' is not a valid {what}")
    return quote(str(value), safe="")


def _flatten_errors(errors, path: tuple = ()) -> list[str]:
    if isinstance(errors, dict):
        parts = []
        for key, value in errors.items():
            # webargs nests field errors under the request location ("json", "query"); that level says nothing.
            inner = path if not path and key in ("json", "query", "form", "headers") else path + (str(key),)
            parts.extend(_flatten_errors(value, inner))
        return parts
    if isinstance(errors, (list, tuple)):
        if all(isinstance(item, str) for item in errors):
            text = " ".join(errors)
            return [f"{'.'.join(path)}: {text}" if path else text]
        return [part for item in errors for part in _flatten_errors(item, path)]
    return [f"{'.'.join(path)}: {errors}" if path else str(errors)]


def error_message(response: requests.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        body = None
    if not isinstance(body, dict):
        return f"the server answered {response.status_code} {response.reason or ''}".strip()
    message = str(body.get("message") or body.get("status") or response.reason or "request failed")
    errors = body.get("errors")
    if errors and ("see errors" in message or not body.get("message")):
        detail = "; ".join(_flatten_errors(errors))
        message = message.replace("; see errors.", ":").replace("see errors", "").rstrip(" .:") + ": " + detail
    return message


class AdminClient:
    """The admin API (/admin/v1) of one baas server."""

    def __init__(self, url: str, token: str | None, timeout=TIMEOUT, missing_token_hint: str | None = None):
        self.url = normalize_url(url)
        self.token = token
        self.missing_token_hint = missing_token_hint
        self.timeout = timeout
        self.session = requests.Session()
        self.session.headers["User-Agent"] = f"baas-cli/{__version__}"
        self.session.headers["Accept"] = "application/json"

    def request(self, method: str, path: str, body=None):
        response = self.send(method, path, json=body)
        if response.status_code == 204 or not response.content:
            return None
        try:
            return response.json()
        except ValueError:
            raise CliError(f"{self.url} answered with something other than JSON; is it a baas server?") from None

    def send(self, method: str, path: str, *, timeout=None, **kwargs) -> requests.Response:
        """One admin API request, its failures turned into one-line CLI errors; the caller reads the body."""
        if not self.token:
            raise CliError(f"no admin token for {self.url}: " + (
                self.missing_token_hint or "pass --token, set BAAS_ADMIN_TOKEN, or save one with `baas login`"))
        headers = {"Authorization": f"Bearer {self.token}", **kwargs.pop("headers", {})}
        try:
            response = self.session.request(method, self.url + path, headers=headers,
                                            timeout=timeout or self.timeout, allow_redirects=False, **kwargs)
        except requests.exceptions.SSLError:
            raise ConnectionFailed(self.url, "TLS handshake or certificate check failed") from None
        except requests.exceptions.Timeout:
            raise ConnectionFailed(self.url, "no answer in time") from None
        except requests.exceptions.ConnectionError:
            raise ConnectionFailed(self.url, "is the server running? check --url / BAAS_URL") from None
        except requests.exceptions.RequestException as exc:
            raise CliError(f"request to {self.url} failed: {exc.__class__.__name__}") from None
        if 300 <= response.status_code < 400:
            # Not followed: a redirect would resend the admin token (and a POST body) wherever it points.
            where = response.headers.get("Location", "elsewhere")
            raise CliError(f"{self.url} redirects to {where} (HTTP {response.status_code}); "
                           f"use the final URL with --url")
        if response.status_code >= 400:
            hint = "Check --token / BAAS_ADMIN_TOKEN or run `baas login`." if response.status_code == 401 else ""
            raise ApiError(response.status_code, error_message(response), hint)
        return response

    @staticmethod
    def _project_path(project_id: str, rest: str = "") -> str:
        return f"/admin/v1/projects/{_segment(project_id, 'project id')}{rest}"

    def _key_path(self, project_id: str, key_id: str, rest: str = "") -> str:
        return self._project_path(project_id, f"/keys/{_segment(key_id, 'key id')}{rest}")

    # projects
    def list_projects(self) -> list:
        return self.request("GET", "/admin/v1/projects")

    def create_project(self, project_id: str, name: str | None = None, settings: dict | None = None) -> dict:
        body = {"id": project_id}
        if name is not None:
            body["name"] = name
        if settings:
            body["settings"] = settings
        return self.request("POST", "/admin/v1/projects", body)

    def get_project(self, project_id: str) -> dict:
        return self.request("GET", self._project_path(project_id))

    def update_project(self, project_id: str, name: str | None = None, settings: dict | None = None) -> dict:
        body: dict = {}
        if name is not None:
            body["name"] = name
        if settings is not None:
            body["settings"] = settings
        return self.request("PATCH", self._project_path(project_id), body)

    def delete_project(self, project_id: str) -> None:
        self.request("DELETE", self._project_path(project_id), {"confirm": project_id})

    # keys
    def list_keys(self, project_id: str) -> list:
        return self.request("GET", self._project_path(project_id, "/keys"))

    def create_key(self, project_id: str, kind: str, name: str | None = None, scopes: list | None = None,
                   expires_at: str | None = None) -> dict:
        body: dict = {"kind": kind}
        if name is not None:
            body["name"] = name
        if scopes:
            body["scopes"] = list(scopes)
        if expires_at is not None:
            body["expires_at"] = expires_at
        return self.request("POST", self._project_path(project_id, "/keys"), body)

    def revoke_key(self, project_id: str, key_id: str) -> dict:
        return self.request("POST", self._key_path(project_id, key_id, "/revoke"))

    def rotate_key(self, project_id: str, key_id: str, grace_seconds: int = 0) -> dict:
        return self.request("POST", self._key_path(project_id, key_id, "/rotate"),
                            {"grace_seconds": grace_seconds})

    # users
    def _user_path(self, project_id: str, user_id: str | None = None, rest: str = "") -> str:
        tail = "/users" if user_id is None else f"/users/{_segment(user_id, 'user id')}"
        return self._project_path(project_id, tail + rest)

    def list_users(self, project_id: str, limit: int = 50, after: str | None = None,
                   email: str | None = None) -> dict:
        query = {"limit": limit, **({"after": after} if after else {}), **({"email": email} if email else {})}
        return self.request("GET", self._user_path(project_id) + "?" + urlencode(query))

    def get_user(self, project_id: str, user_id: str) -> dict:
        return self.request("GET", self._user_path(project_id, user_id))

    def create_user(self, project_id: str, body: dict) -> dict:
        return self.request("POST", self._user_path(project_id), body)

    def update_user(self, project_id: str, user_id: str, body: dict) -> dict:
        return self.request("PATCH", self._user_path(project_id, user_id), body)

    def delete_user(self, project_id: str, user_id: str) -> None:
        self.request("DELETE", self._user_path(project_id, user_id))

    def revoke_user_sessions(self, project_id: str, user_id: str) -> dict:
        return self.request("POST", self._user_path(project_id, user_id, "/revoke-sessions"))

    # collections
    def _collection_path(self, project_id: str, name: str | None = None) -> str:
        tail = "/collections" if name is None else f"/collections/{_segment(name, 'collection name')}"
        return self._project_path(project_id, tail)

    def list_collections(self, project_id: str) -> list:
        return self.request("GET", self._collection_path(project_id))

    def get_collection(self, project_id: str, name: str) -> dict:
        return self.request("GET", self._collection_path(project_id, name))

    def put_collection(self, project_id: str, name: str, definition: dict) -> dict:
        return self.request("PUT", self._collection_path(project_id, name), definition)

    def delete_collection(self, project_id: str, name: str) -> None:
        self.request("DELETE", self._collection_path(project_id, name))

    # export and import
    # files
    def _file_path(self, project_id: str, file_id: str | None = None) -> str:
        return self._project_path(project_id, "/files" + (f"/{_segment(file_id, 'file id')}" if file_id else ""))

    def list_files(self, project_id: str, filter: str | None = None, sort: str | None = None, limit: int = 50,
                   cursor: str | None = None) -> dict:
        query = {key: value for key, value in (("filter", filter), ("sort", sort), ("limit", limit),
                                                ("cursor", cursor)) if value is not None}
        return self.request("GET", self._file_path(project_id) + "?" + urlencode(query))

    def get_file(self, project_id: str, file_id: str) -> dict:
        return self.request("GET", self._file_path(project_id, file_id))

    def file_usage(self, project_id: str) -> dict:
        return self.request("GET", self._project_path(project_id, "/files/usage"))

    def delete_file(self, project_id: str, file_id: str) -> None:
        self.request("DELETE", self._file_path(project_id, file_id))

    def export_project(self, project_id: str) -> requests.Response:
        """The streaming response of a project export (read it with iter_content)."""
        return self.send("GET", self._project_path(project_id, "/export"), stream=True, timeout=(TIMEOUT[0], 300))

    def import_project(self, archive, project_id: str | None = None, overwrite: bool = False) -> dict:
        params = {key: value for key, value in (("project_id", project_id), ("overwrite", "true" if overwrite else None))
                  if value}
        query = "?" + urlencode(params) if params else ""
        response = self.send("POST", "/admin/v1/projects/import" + query, data=archive, timeout=(TIMEOUT[0], 3600),
                             headers={"Content-Type": "application/gzip"})
        return response.json()


# -- the options every management command takes ----------------------------------------------------------------

CONNECTION_OPTIONS = ("url", "token", "profile", "as_json")
_GLOBAL_OPTIONS_KEY = "baas.connection_options"


def connection_options(func=None, *, with_envvars: bool = True):
    """--url/--token/--profile/--json, on each management command and (without env variables) on `baas` itself."""
    def envvar(name):
        return {"envvar": name, "show_envvar": True} if with_envvars else {}

    def decorate(func):
        for decorator in (
            click.option("--json", "as_json", is_flag=True, default=None,
                         help="Print machine-readable JSON instead of a table."),
            click.option("--profile", metavar="NAME", **envvar("BAAS_PROFILE"),
                         help=f"Profile saved by `baas login` [{DEFAULT_PROFILE}]."),
            click.option("--token", metavar="TOKEN", **envvar("BAAS_ADMIN_TOKEN"),
                         help="Admin token (or from the profile)."),
            click.option("--url", metavar="URL", **envvar("BAAS_URL"),
                         help=f"The baas server (or from the profile) [{DEFAULT_URL}]."),
        ):
            func = decorator(func)
        return func

    return decorate(func) if func is not None else decorate


def remember_global_options(ctx: click.Context, **given) -> None:
    """Keep the options given before the subcommand (`baas --token X projects list`) for admin_command."""
    ctx.meta[_GLOBAL_OPTIONS_KEY] = {name: value for name, value in given.items() if value is not None}


def _merged_options(values: dict) -> dict:
    """An option given after the subcommand wins; one given before it comes next; then env, profile, default."""
    ctx = click.get_current_context()
    before = ctx.meta.get(_GLOBAL_OPTIONS_KEY, {})
    merged = dict(values)
    for name in CONNECTION_OPTIONS:
        if name in before and ctx.get_parameter_source(name) is not click.core.ParameterSource.COMMANDLINE:
            merged[name] = before[name]
    return merged


def admin_command(func):
    """Add --url/--token/--profile/--json and pass `api` (AdminClient) and `out` (Output) to the command."""
    from baas_cli.output import Output

    @connection_options
    @functools.wraps(func)
    def command(*args, **kwargs):
        options = _merged_options({name: kwargs.pop(name) for name in CONNECTION_OPTIONS})
        url, token, profile, as_json = (options[name] for name in CONNECTION_OPTIONS)
        as_json = bool(as_json)
        settings = resolve_settings(url, token, profile)
        api = AdminClient(settings.url, settings.token, missing_token_hint=settings.withheld)
        return func(*args, api=api, out=Output(as_json), **kwargs)

    return command
