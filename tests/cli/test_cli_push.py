"""`baas push ...` against a real server: VAPID keys shown and rotated, a message queued, its status and list."""
import json
import time


def test_push_vapid_send_status_list(baas, http):
    assert baas("projects", "create", "push-app").exit_code == 0
    shown = baas("push", "vapid", "show", "push-app", "--json")
    assert shown.exit_code == 0, shown.output
    first = json.loads(shown.output)
    assert first["current"] and len(first["public_key"]) == 87  # 65 bytes, URL-safe base64 without padding
    table = baas("push", "vapid", "show", "push-app")
    assert first["public_key"] in table.output and "CURRENT" in table.output

    rotated = baas("push", "vapid", "rotate", "push-app", "--yes", "--json")
    assert rotated.exit_code == 0, rotated.output
    keys = json.loads(rotated.output)
    assert keys["public_key"] != first["public_key"] and keys["previous"][0]["id"] == first["id"]
    answered = http.admin("GET", "/admin/v1/projects/push-app/push/vapid").json()
    assert answered["public_key"] == keys["public_key"]

    sent = baas("push", "send", "push-app", "--topic", "news", "--title", "Extra!", "--at",
                time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 86400)))
    assert sent.exit_code == 0, sent.output
    message_id = sent.output.split("Queued message ")[1].split(";")[0]
    status = baas("push", "status", "push-app", message_id)
    assert status.exit_code == 0 and "queued" in status.output and "Extra!" in status.output
    listed = baas("push", "list", "push-app", "--json")
    assert [m["id"] for m in json.loads(listed.output)["messages"]] == [message_id]

    no_audience = baas("push", "send", "push-app", "--title", "x")
    assert no_audience.exit_code == 2 and "exactly one audience" in no_audience.output
    too_big = baas("push", "send", "push-app", "--all", "--body", "x" * 2000,
                   "--data", json.dumps({"k": "y" * 2500}))
    assert too_big.exit_code == 1 and "4096" in too_big.output
