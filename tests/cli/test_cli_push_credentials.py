"""`baas push credentials ...` against a real server: FCM and APNs credentials set from files, shown without
their keys, deleted."""
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "push"))

from native_emulators import pem_text  # noqa: E402  (the key format the Firebase console and Apple hand out)
from cryptography.hazmat.primitives.asymmetric import ec, rsa  # noqa: E402


def test_push_credentials_set_show_delete(baas, http, tmp_path, one_line_error):
    assert baas("projects", "create", "native-app").exit_code == 0
    rsa_key = pem_text(rsa.generate_private_key(public_exponent=65537, key_size=2048))
    account = {"type": "service_account", "project_id": "native-app-prod", "private_key_id": "ab12",
               "private_key": rsa_key, "client_email": "sender@native-app-prod.iam.gserviceaccount.com",
               "token_uri": "https://oauth2.googleapis.com/token"}
    (tmp_path / "firebase.json").write_text(json.dumps(account))
    (tmp_path / "AuthKey_ABCDE12345.p8").write_text(pem_text(ec.generate_private_key(ec.SECP256R1())))

    fcm = baas("push", "credentials", "set", "native-app", "fcm", tmp_path / "firebase.json")
    assert fcm.exit_code == 0, fcm.output
    assert account["client_email"] in fcm.output and "PRIVATE KEY" not in fcm.output
    apns = baas("push", "credentials", "set", "native-app", "apns", "--key-file", tmp_path / "AuthKey_ABCDE12345.p8",
                "--key-id", "ABCDE12345", "--team-id", "TEAM123456", "--bundle-id", "com.example.native",
                "--sandbox", "--json")
    assert apns.exit_code == 0, apns.output
    assert json.loads(apns.output)["base_url"] == "https://api.sandbox.push.apple.com"

    shown = baas("push", "credentials", "show", "native-app", "--json")
    assert [c["provider"] for c in json.loads(shown.output)] == ["apns", "fcm"]
    assert "PRIVATE KEY" not in shown.output
    table = baas("push", "credentials", "show", "native-app")
    assert "com.example.native (sandbox)" in table.output and "native-app-prod" in table.output
    listed = http.admin("GET", "/admin/v1/projects/native-app/push/credentials").json()
    assert {c["provider"] for c in listed} == {"apns", "fcm"}

    bad = baas("push", "credentials", "set", "native-app", "apns", "--key-file", tmp_path / "firebase.json",
               "--key-id", "ABCDE12345", "--team-id", "TEAM123456", "--bundle-id", "com.example.native")
    one_line_error(bad, "key", "HTTP 400")

    assert baas("push", "credentials", "delete", "native-app", "fcm", "--yes").exit_code == 0
    assert [c["provider"] for c in json.loads(baas("push", "credentials", "show", "native-app", "--json").output)] \
        == ["apns"]
    missing = baas("push", "credentials", "delete", "native-app", "fcm", "--yes")
    one_line_error(missing, "no fcm credentials", "HTTP 404")
