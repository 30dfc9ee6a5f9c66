"""`baas collections ...`: apply is idempotent, diff shows exactly what apply would change."""
import json
import textwrap

COLLECTIONS = textwrap.dedent("""
    collections:
      posts:
        schema:
          type: object
          required: [title]
          properties:
            title: {type: string}
        indexes:
          - name: by_title
            keys: {title: 1}
        rules:
          read: public
          create: authenticated
      notes: {}
""")


def test_apply_diff_show_delete(baas, http, tmp_path, one_line_error):
    assert baas("projects", "create", "coll-app").exit_code == 0
    path = tmp_path / "collections.yaml"
    path.write_text(COLLECTIONS)

    pending = baas("collections", "diff", "coll-app", path)
    assert pending.exit_code == 0, pending.output
    assert "+ posts (new collection)" in pending.output and "+ notes (new collection)" in pending.output
    assert http.admin("GET", "/admin/v1/projects/coll-app/collections/posts").status_code == 404  # diff changes nothing

    applied = baas("collections", "apply", "coll-app", path)
    assert applied.exit_code == 0, applied.output
    assert "posts: created" in applied.output and "notes: created" in applied.output
    posts = http.admin("GET", "/admin/v1/projects/coll-app/collections/posts").json()
    assert posts["schema"]["required"] == ["title"]
    assert [index["name"] for index in posts["indexes"]] == ["by_title"]
    assert posts["rules"]["read"] == "public"

    again = baas("collections", "apply", "coll-app", path, "--json")
    assert [step["action"] for step in json.loads(again.output)] == ["none", "none"]
    assert http.admin("GET", "/admin/v1/projects/coll-app/collections/posts").json()["updated_at"] == \
        posts["updated_at"]
    assert "No changes" in baas("collections", "diff", "coll-app", path).output

    path.write_text(COLLECTIONS.replace("read: public", "read: authenticated"))
    changed = baas("collections", "diff", "coll-app", path)
    assert "~ posts" in changed.output
    assert any(line.strip() == "-  read: public" for line in changed.output.splitlines()), changed.output
    assert any(line.strip() == "+  read: authenticated" for line in changed.output.splitlines()), changed.output
    assert "notes" not in changed.output
    assert "posts: updated (rules)" in baas("collections", "apply", "coll-app", path).output
    assert http.admin("GET", "/admin/v1/projects/coll-app/collections/posts").json()["rules"]["read"] == \
        "authenticated"

    listed = baas("collections", "list", "coll-app")
    assert "posts" in listed.output and "notes" in listed.output
    shown = baas("collections", "show", "coll-app", "posts")
    assert "by_title" in shown.output and shown.output.startswith("collections:")

    bad = tmp_path / "bad.yaml"
    bad.write_text("collections:\n  posts:\n    rulez: {}\n")
    one_line_error(baas("collections", "apply", "coll-app", bad), "unknown keys rulez")
    bad.write_text("collections: [\n")
    one_line_error(baas("collections", "diff", "coll-app", bad), "not valid YAML")
    wrong = tmp_path / "wrong.yaml"
    wrong.write_text("collections:\n  posts:\n    rules: {read: sometimes}\n")
    one_line_error(baas("collections", "apply", "coll-app", wrong), "HTTP 400")

    assert baas("collections", "delete", "coll-app", "notes", input="n\n").exit_code == 1
    assert http.admin("GET", "/admin/v1/projects/coll-app/collections/notes").status_code == 200
    assert baas("collections", "delete", "coll-app", "notes", "--yes").exit_code == 0
    assert http.admin("GET", "/admin/v1/projects/coll-app/collections/notes").status_code == 404
