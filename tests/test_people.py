"""The people directory: CRUD, lookup by any identity, CSV round trip with bad rows reported, the CLI, and
mentions resolved before rendering (never a raw opaque id)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner

from hub.cli import app as cli
from hub.mapping.catalogue import parse_inline
from hub.mapping.context import mapping_context
from hub.mapping.render import render_post
from hub.people.csv_io import export_csv, plan_import
from hub.people.directory import Directory, Person, render_mentions
from tests.conftest import create, wait_for
from tests.helpers import github_issue, github_request

MARIE = {
    "display_name": "Marie Dupont",
    "identities": {"email": "Marie@Acme.example", "github": "MDupont", "jira": "557058:f58131cb", "slack": "U024BE7LH"},
}


async def test_crud_and_lookup_by_any_identity(client: httpx.AsyncClient) -> None:
    marie = await create(client, "/api/v1/people", MARIE)
    assert marie["identities"]["email"] == "marie@acme.example" and marie["identities"]["github"] == "mdupont"
    for identity in ("jira:557058:f58131cb", "email:MARIE@acme.example", "github:mdupont", "slack:U024BE7LH"):
        found = (await client.get("/api/v1/people", params={"identity": identity})).json()
        assert [p["id"] for p in found] == [marie["id"]], identity
    assert (await client.get("/api/v1/people", params={"identity": "jira:nobody"})).json() == []
    assert (await client.get("/api/v1/people", params={"identity": "nope:x"})).status_code == 422
    taken = await client.post("/api/v1/people", json={"display_name": "Impostor", "identities": {"github": "mdupont"}})
    assert taken.status_code == 409 and taken.json()["error"]["code"] == "identity_taken"
    bad_kind = await client.post("/api/v1/people", json={"display_name": "X", "identities": {"myspace": "x"}})
    assert bad_kind.status_code == 422
    patched = await client.patch(
        f"/api/v1/people/{marie['id']}",
        json={"display_name": "Marie D.", "identities": {"slack": None, "discord": "42"}},
    )
    assert patched.status_code == 200
    assert patched.json()["display_name"] == "Marie D."
    assert "slack" not in patched.json()["identities"] and patched.json()["identities"]["discord"] == "42"
    assert (await client.delete(f"/api/v1/people/{marie['id']}")).status_code == 204
    assert (await client.get(f"/api/v1/people/{marie['id']}")).status_code == 404


CSV = (
    "display_name,email,github,jira\n"
    "Marie Dupont,marie@acme.example,mdupont,557058:f58131cb\n"  # line 2: created
    "Paul Martin,paul@acme.example,pmartin,\n"  # line 3: created
    ",no-name@acme.example,,\n"  # line 4: refused, no name
    "Zoé Bernard,not-an-email,,\n"  # line 5: refused
    "Marie Dupont,,,557058:f58131cb\n"  # line 6: the same person again, nothing new
    "Mixed Up,paul@acme.example,mdupont,\n"  # line 7: identities of two people
    '=HYPERLINK("http://evil"),evil@acme.example,,\n'  # line 8: a formula-looking name
)


async def test_csv_import_reports_what_was_created_updated_and_refused(client: httpx.AsyncClient) -> None:
    resp = await client.post("/api/v1/people/import", content=CSV, headers={"Content-Type": "text/csv"})
    assert resp.status_code == 200, resp.text
    report = resp.json()
    assert (len(report["created"]), report["updated"], report["unchanged"]) == (3, [], 1)
    assert [(r["line"], r["reason"].split(" ")[0]) for r in report["refused"]] == [
        (4, "display_name"),
        (5, "'not-an-email'"),
        (7, "the"),
    ]
    exported = (await client.get("/api/v1/people/export")).text
    assert exported.splitlines()[0].startswith("id,display_name,email,github")
    assert "'=HYPERLINK" in exported  # a spreadsheet would not run it
    # round trip: importing the export changes nothing
    again = (await client.post("/api/v1/people/import", content=exported, headers={"Content-Type": "text/csv"})).json()
    assert (again["created"], again["updated"], again["unchanged"], again["refused"]) == ([], [], 3, [])
    names = {p["display_name"] for p in (await client.get("/api/v1/people")).json()}
    assert names == {"Marie Dupont", "Paul Martin", '=HYPERLINK("http://evil")'}
    # an update by id, and an unknown column refuses the whole file
    marie = (await client.get("/api/v1/people", params={"identity": "github:mdupont"})).json()[0]
    upd = f"id,display_name,slack\n{marie['id']},Marie Dupont-Leroy,U024BE7LH\n"
    out = (await client.post("/api/v1/people/import", content=upd, headers={"Content-Type": "text/csv"})).json()
    assert out["updated"] == [marie["id"]]
    bad = await client.post("/api/v1/people/import", content="name,email\nx,y\n", headers={"Content-Type": "text/csv"})
    assert bad.status_code == 422 and "unknown column" in bad.json()["error"]["message"]


def test_cli_import_and_export(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HUB_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("HUB_SECRET_KEY", "test-secret-key-with-enough-length")
    source = tmp_path / "people.csv"
    source.write_text(CSV)
    runner = CliRunner()
    result = runner.invoke(cli, ["people", "import", str(source)])
    assert result.exit_code == 1  # some rows were refused
    assert "created 3, updated 0, unchanged 1, refused 3" in result.output
    assert "line 4: display_name is empty" in result.output
    out = tmp_path / "out.csv"
    assert runner.invoke(cli, ["people", "export", str(out)]).exit_code == 0
    assert out.read_text().count("\n") == 4
    again = runner.invoke(cli, ["people", "import", str(out)])
    assert again.exit_code == 0 and "created 0, updated 0, unchanged 3, refused 0" in again.output
    missing = runner.invoke(cli, ["people", "import", str(tmp_path / "nope.csv")])
    assert missing.exit_code == 2 and "cannot read" in missing.output


# --- mentions ----------------------------------------------------------------------------------------------

DIRECTORY = Directory([Person("per_marie", "Marie Dupont", {"jira": "557058:f58131cb", "slack": "U024BE7LH"})])


def post_for(template: str, payload: Any) -> Any:
    spec = parse_inline({"post": {"title": "t", "body": template}})
    ctx = mapping_context(
        payload=payload,
        spec=None,
        event_id="evt_1",
        event_type="jira:issue_updated",
        source_id="src_1",
        connector="jira",
        subject=None,
        received_at=0,
        source_name="s",
        directory=DIRECTORY,
    )
    return render_post(spec, ctx)


@pytest.mark.parametrize(
    ("template", "body"),
    [
        ("{{ mention(payload.id, 'jira') }}", "[@Marie Dupont](mention:per_marie)"),
        ("{{ mention(payload.other, 'jira') }}", "someone"),  # an opaque id nobody has: never shown raw
        ("{{ mention(payload.other, 'jira', payload.name) }}", "J. Doe"),  # the provider's display name
        ("{{ mention('octocat', 'github') }}", "octocat"),  # a login is readable
        ("{{ mention(payload.missing, 'jira') }}", "someone"),
    ],
)
def test_mention_resolves_from_the_directory_with_readable_fallbacks(template: str, body: str) -> None:
    post = post_for(template, {"id": "557058:f58131cb", "other": "5b10ac8d82e05b22cc7d4ef5", "name": "J. Doe"})
    assert post.body == body


def test_a_post_lists_its_mentions_and_targets_render_them_their_way() -> None:
    post = post_for("Assigned to {{ mention(payload.id, 'jira') }}", {"id": "557058:f58131cb"})
    assert [(m.id, m.name, m.identities["slack"]) for m in post.mentions] == [
        ("per_marie", "Marie Dupont", "U024BE7LH")
    ]
    slack = render_mentions(
        post.body, post, lambda m: f"<@{m.identities['slack']}>" if "slack" in m.identities else None
    )
    assert slack == "Assigned to <@U024BE7LH>"
    discord = render_mentions(
        post.body, post, lambda m: f"<@{m.identities['discord']}>" if "discord" in m.identities else None
    )
    assert discord == "Assigned to Marie Dupont"  # no Discord id: the name, never an id


async def test_a_delivered_post_mentions_the_person_of_the_directory(client: httpx.AsyncClient, pipeline: Any) -> None:
    await create(client, "/api/v1/people", {"display_name": "The Octocat", "identities": {"github": "octocat"}})
    mapping = {"post": {"title": "Issue", "body": "Opened by {{ mention(payload.sender.login, 'github') }}"}}
    ids = await pipeline({"kind": "inbox", "name": "i"}, ["issues.opened"], mapping)
    body, headers = github_request(github_issue(1))
    assert (await client.post(f"/hooks/{ids['source_id']}", content=body, headers=headers)).status_code == 202

    async def delivered() -> bool:
        return len((await client.get("/api/v1/inbox")).json()) == 1

    await wait_for(delivered)
    post = (await client.get("/api/v1/inbox")).json()[0]["post"]
    assert post["body"].startswith("Opened by [@The Octocat](mention:per_")
    assert post["mentions"][0]["name"] == "The Octocat"


def test_export_of_an_empty_directory_is_a_header() -> None:
    assert export_csv(Directory()).startswith("id,display_name,email,")
    assert plan_import("display_name\n", Directory()).changes == []


async def test_a_route_can_message_the_mentioned_person_directly(client: httpx.AsyncClient) -> None:
    """slack-api (chat.postMessage to a user id) for the person the directory knows; the channel for
    someone it does not."""
    import json as _json

    from tests.receiver import Received, Receiver, serve_receiver

    def slack(r: Received) -> tuple[int, dict[str, str], bytes]:
        return 200, {"content-type": "application/json"}, _json.dumps({"ok": True, "ts": "1712.0001"}).encode()

    async with serve_receiver(Receiver(respond=slack)) as rx:
        await create(
            client,
            "/api/v1/people",
            {"display_name": "Octo Cat", "identities": {"github": "octocat", "slack": "U0CAT"}},
        )
        src = await create(
            client, "/api/v1/sources", {"connector": "github", "name": "gh", "secret": "It's a Secret to Everybody"}
        )
        tgt = await create(
            client,
            "/api/v1/targets",
            {"kind": "slack-api", "name": "s", "token": "xoxb-1", "channel": "C0CHAN", "url": f"{rx.base}/api"},
        )
        mapping = {
            "post": {
                "title": "Issue {{ payload.issue.number }}",
                "body": "For {{ mention(payload.sender.login, 'github') }}",
            }
        }
        await create(
            client,
            "/api/v1/routes",
            {
                "source_id": src["id"],
                "target_id": tgt["id"],
                "events": ["issues.*"],
                "mapping": mapping,
                "notify_direct": True,
            },
        )
        for number, sender in ((1, "octocat"), (2, "stranger")):
            payload = github_issue(number)
            payload["sender"]["login"] = sender
            body, headers = github_request(payload, secret="It's a Secret to Everybody")
            assert (await client.post(f"/hooks/{src['id']}", content=body, headers=headers)).status_code == 202

        async def both() -> bool:
            return len(rx.requests) == 2

        await wait_for(both)
        channels = sorted(r.body["channel"] for r in rx.requests)
        assert channels == ["C0CHAN", "U0CAT"]
        direct = next(r for r in rx.requests if r.body["channel"] == "U0CAT")
        assert "<@U0CAT>" in direct.body["text"]
