"""Where the CLI connects and with what token: flags > environment > profile > default; failures in one line."""
import json
import stat
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from baas.storage.embedded import free_port
from baas.testing import ADMIN_TOKEN
from baas_cli.client import DEFAULT_URL, resolve_settings


def test_serve_help(bare_baas):
    result = bare_baas("serve", "--help")
    assert result.exit_code == 0, result.output
    assert "--port" in result.output and "--data-dir" in result.output


def test_every_management_command_has_the_global_options(bare_baas):
    for command in (["projects", "create"], ["projects", "list"], ["projects", "show"], ["projects", "update"],
                    ["projects", "delete"], ["keys", "create"], ["keys", "list"], ["keys", "revoke"],
                    ["keys", "rotate"]):
        result = bare_baas(*command, "--help")
        assert result.exit_code == 0, result.output
        for option in ("--url", "--token", "--profile", "--json", "BAAS_URL", "BAAS_ADMIN_TOKEN", "BAAS_PROFILE"):
            assert option in result.output, (command, option)


def test_wrong_token_is_one_line(baas, server, one_line_error):
    one_line_error(baas("projects", "list", "--token", "not-the-token"), "Invalid admin token.", "(HTTP 401)")
    one_line_error(baas("projects", "list", env={"BAAS_ADMIN_TOKEN": "nope"}), "Invalid admin token.")


def test_unreachable_server_is_one_line(bare_baas, one_line_error):
    url = f"http://127.0.0.1:{free_port()}"
    text = one_line_error(bare_baas("projects", "list", "--url", url, "--token", "t"), f"cannot reach baas at {url}")
    assert "Connection refused" not in text and "HTTPConnectionPool" not in text


def test_missing_token_and_bad_url_are_one_line(bare_baas, one_line_error):
    one_line_error(bare_baas("projects", "list"), "no admin token")
    one_line_error(bare_baas("keys", "list", "p1", "--url", "ftp://example.com", "--token", "t"),
                   "the baas URL must look like http://host:port")


def test_non_baas_server_answer_is_one_line(bare_baas, server, one_line_error):
    # /healthz is not the admin API: a URL with a wrong path prefix gets baas's 404, reported in one line.
    one_line_error(bare_baas("projects", "list", "--url", server.url + "/not-here", "--token", ADMIN_TOKEN),
                   "(HTTP 404)")


def test_login_saves_a_private_profile_that_later_commands_use(bare_baas, server, cli_home, one_line_error):
    result = bare_baas("login", "--url", server.url + "/", "--token", ADMIN_TOKEN)
    assert result.exit_code == 0, result.output
    assert "profile 'default'" in result.output
    assert ADMIN_TOKEN not in result.output

    path = cli_home / "baas" / "profiles.json"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert json.loads(path.read_text())["profiles"]["default"] == {"url": server.url, "token": ADMIN_TOKEN}

    created = bare_baas("projects", "create", "from-profile")
    assert created.exit_code == 0, created.output
    assert "from-profile" in [p["id"] for p in json.loads(bare_baas("projects", "list", "--json").stdout)]

    out = bare_baas("logout")
    assert out.exit_code == 0 and "removed profile 'default'" in out.output
    assert json.loads(path.read_text())["profiles"] == {}
    one_line_error(bare_baas("projects", "list"), "no admin token")


def test_named_profiles_by_flag_and_environment(bare_baas, server, cli_home, one_line_error):
    assert bare_baas("login", "--url", server.url, "--token", ADMIN_TOKEN, "--profile", "staging").exit_code == 0
    assert list(json.loads((cli_home / "baas" / "profiles.json").read_text())["profiles"]) == ["staging"]

    one_line_error(bare_baas("projects", "list"), "no admin token")  # not the default profile
    assert bare_baas("projects", "list", "--profile", "staging").exit_code == 0
    assert bare_baas("projects", "list", env={"BAAS_PROFILE": "staging"}).exit_code == 0
    one_line_error(bare_baas("projects", "list", "--profile", "prod"), "no profile 'prod'")


def test_login_with_a_wrong_token_saves_nothing(bare_baas, server, cli_home, one_line_error):
    one_line_error(bare_baas("login", "--url", server.url, "--token", "wrong"), "Invalid admin token.")
    assert not (cli_home / "baas" / "profiles.json").exists()


def test_login_asks_for_the_token_when_not_given(bare_baas, server, cli_home):
    result = bare_baas("login", "--url", server.url, input=ADMIN_TOKEN + "\n")
    assert result.exit_code == 0, result.output
    assert ADMIN_TOKEN not in result.output  # hidden input
    assert json.loads((cli_home / "baas" / "profiles.json").read_text())["profiles"]["default"]["token"] == ADMIN_TOKEN


def test_flags_beat_environment_beat_profile(bare_baas, server, one_line_error):
    assert bare_baas("login", "--url", server.url, "--token", "stale-token", "--no-verify").exit_code == 0
    one_line_error(bare_baas("projects", "list"), "Invalid admin token.")                        # profile
    assert bare_baas("projects", "list", env={"BAAS_ADMIN_TOKEN": ADMIN_TOKEN}).exit_code == 0  # env > profile
    assert bare_baas("projects", "list", "--token", ADMIN_TOKEN).exit_code == 0                # flag > profile
    one_line_error(bare_baas("projects", "list", "--token", "bad", env={"BAAS_ADMIN_TOKEN": ADMIN_TOKEN}),
                   "Invalid admin token.")                                                    # flag > env

    dead = f"http://127.0.0.1:{free_port()}"
    one_line_error(bare_baas("projects", "list", env={"BAAS_URL": dead, "BAAS_ADMIN_TOKEN": ADMIN_TOKEN}),
                   f"cannot reach baas at {dead}")                                             # env URL > profile
    assert bare_baas("projects", "list", "--url", server.url,
                     env={"BAAS_URL": dead, "BAAS_ADMIN_TOKEN": ADMIN_TOKEN}).exit_code == 0   # flag URL > env


def test_default_url_and_the_default_profiles_token_stays_with_its_server(bare_baas):
    assert resolve_settings(None, None, None).url == DEFAULT_URL
    assert bare_baas("login", "--url", "https://baas.example.com", "--token", "prod-token",
                     "--no-verify").exit_code == 0
    assert resolve_settings(None, None, None).token == "prod-token"
    assert resolve_settings(None, None, None).url == "https://baas.example.com"
    # Pointing the CLI elsewhere does not send the saved token along...
    assert resolve_settings("http://127.0.0.1:9", None, None).token is None
    result = bare_baas("projects", "list", "--url", "http://127.0.0.1:9")
    assert result.exit_code == 1
    assert result.output.strip() == ("Error: no admin token for http://127.0.0.1:9: the saved profile 'default' is "
                                     "for https://baas.example.com; add --profile default to send its token to "
                                     "http://127.0.0.1:9")
    # ...unless the profile is named explicitly.
    assert resolve_settings("http://127.0.0.1:9", None, "default").token == "prod-token"


def test_logout_of_an_unknown_profile_is_harmless(bare_baas):
    result = bare_baas("logout", "--profile", "never")
    assert result.exit_code == 0 and "nothing to do" in result.output


@pytest.fixture
def not_baas():
    """A real HTTP server that is not baas: a proxy's HTML error page, or a web site's HTML."""
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            if self.path.startswith("/moved"):
                self.send_response(301)
                self.send_header("Location", "https://baas.example.com" + self.path)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            status = 502 if self.path.startswith("/proxy") else 200
            body = b"<html><body>Bad gateway\n<p>nginx</p></body></html>"
            self.send_response(status)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_answers_that_are_not_baas_json_are_one_line(bare_baas, not_baas, one_line_error):
    one_line_error(bare_baas("projects", "list", "--url", not_baas + "/proxy", "--token", "t"),
                   "the server answered 502 Bad Gateway (HTTP 502)")
    one_line_error(bare_baas("projects", "list", "--url", not_baas, "--token", "t"),
                   "answered with something other than JSON; is it a baas server?")
    one_line_error(bare_baas("projects", "list", "--url", not_baas + "/moved", "--token", "t"),
                   "redirects to https://baas.example.com/moved/admin/v1/projects (HTTP 301); use the final URL")
