"""--url/--token/--profile/--json work before the subcommand as well as after it."""
import json

from baas.testing import ADMIN_TOKEN


def test_options_before_the_subcommand(bare_baas, server):
    result = bare_baas("--url", server.url, "--token", ADMIN_TOKEN, "--json", "projects", "list")
    assert result.exit_code == 0, result.output
    assert "default" in {p["id"] for p in json.loads(result.output)}


def test_options_after_the_subcommand_win_over_those_before(bare_baas, server, one_line_error):
    wrong_first = bare_baas("--token", "wrong-token", "projects", "list", "--url", server.url, "--token", ADMIN_TOKEN)
    assert wrong_first.exit_code == 0, wrong_first.output
    wrong_last = bare_baas("--token", ADMIN_TOKEN, "keys", "list", "default", "--url", server.url,
                           "--token", "wrong-token")
    one_line_error(wrong_last, "HTTP 401")


def test_an_option_before_the_subcommand_wins_over_the_environment(baas, one_line_error):
    one_line_error(baas("--token", "wrong-token", "projects", "list"), "HTTP 401")
    assert baas("projects", "list").exit_code == 0
