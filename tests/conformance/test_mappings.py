"""Every mapping in mappings/ loads, and the GitHub defaults turn the recorded deliveries into the right Posts."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from hub.mapping.catalogue import MappingCatalogue, builtin_mappings, load_mapping_file, parse_inline
from hub.mapping.post import Post
from hub.mapping.render import MappingError, applies, check, render_post
from hub.mapping.spec import MappingSpec
from hub.paths import builtin_dir

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
MAPPINGS = builtin_mappings()
MAPPING_FILES = sorted(builtin_dir("mappings").rglob("*.yaml"))

REPO = "octocat/Hello-World"
ISSUE_URL = "https://github.com/octocat/Hello-World/issues/1347"
PR_URL = "https://github.com/octocat/Hello-World/pull/1348"
ISSUE_THREAD = "github:octocat/Hello-World#1347"
PR_THREAD = "github:octocat/Hello-World#1348"


def fixture(connector: str, name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((FIXTURES / connector / f"{name}.json").read_text())
    return data


def context(connector: str, fx: dict[str, Any], event_type: str | None = None) -> dict[str, Any]:
    """The context the delivery engine builds (hub/delivery/engine.py _mapping_context)."""
    return {
        "payload": fx["payload"],
        "event": {
            "id": "evt_01HZX3K9Q2",
            "type": event_type or fx["expect"]["type"],
            "source_id": "src_01HZX3K9Q2",
            "connector": connector,
            "subject": fx["expect"]["subject"],
            "received_at": 1_700_000_000.0,
        },
        "source": {"id": "src_01HZX3K9Q2", "name": "Hello-World repository"},
    }


def mapped(name: str, event_type: str | None = None) -> tuple[MappingSpec, dict[str, Any]]:
    fx = fixture("github", name)
    ctx = context("github", fx, event_type)
    return MAPPINGS.resolve("github", ctx["event"]["type"], None), ctx


def post_for(name: str) -> Post:
    mapping, ctx = mapped(name)
    assert applies(mapping, ctx)
    return render_post(mapping, ctx)


# --- every mapping file ------------------------------------------------------------------------------------


def test_mapping_files_exist_and_are_catalogued() -> None:
    names = sorted(p.relative_to(builtin_dir("mappings")).with_suffix("").as_posix() for p in MAPPING_FILES)
    assert "_default" in names
    assert MAPPINGS.names() == names


@pytest.mark.parametrize("path", MAPPING_FILES, ids=lambda p: p.relative_to(builtin_dir("mappings")).as_posix())
def test_mapping_file_loads_and_compiles(path: Path) -> None:
    spec = load_mapping_file(path)
    check(spec)
    assert spec.post.title.strip()


GITHUB_MAPPINGS = [p for p in MAPPING_FILES if p.parent.name == "github"]


@pytest.mark.parametrize("path", GITHUB_MAPPINGS, ids=lambda p: p.stem)
def test_github_mapping_is_for_a_declared_event_with_a_fixture(path: Path) -> None:
    from hub.connectors.catalogue import builtin_catalogue

    github = builtin_catalogue().get("github")
    assert github is not None
    spec = load_mapping_file(path)
    assert spec.events == [path.stem]
    assert path.stem in github.events
    assert any(json.loads(p.read_text())["expect"]["type"] == path.stem for p in (FIXTURES / "github").glob("*.json"))


def test_every_routable_github_event_has_its_own_mapping() -> None:
    for path in sorted((FIXTURES / "github").glob("*.json")):
        expect = json.loads(path.read_text())["expect"]
        if expect.get("ignored"):
            continue
        chosen = MAPPINGS.default_for("github", expect["type"])
        assert chosen is not None
        assert chosen is MAPPINGS.get(f"github/{expect['type']}"), path.name


# --- the GitHub defaults on the recorded deliveries --------------------------------------------------------

OCTOCAT = ("octocat", "https://github.com/octocat", "https://github.com/images/error/octocat_happy.gif")
HUBOT = ("hubot", "https://github.com/hubot", "https://github.com/images/error/hubot_happy.gif")
MONALISA = ("monalisa", "https://github.com/monalisa", "https://github.com/images/error/monalisa_happy.gif")

EXPECTED: dict[str, dict[str, Any]] = {
    "issues.opened": {
        "title": "Issue #1347 opened: Found a bug",
        "link": ISSUE_URL,
        "thread_key": ISSUE_THREAD,
        "author": OCTOCAT,
        "body": [f"**octocat** opened [#1347]({ISSUE_URL}) in **{REPO}**.", "I'm having a problem with this."],
        "fields": {"Repository": REPO, "Labels": "bug"},
    },
    "issues.closed": {
        "title": "Issue #1347 closed: Found a bug",
        "link": ISSUE_URL,
        "thread_key": ISSUE_THREAD,
        "author": OCTOCAT,
        "body": [f"**octocat** closed [#1347]({ISSUE_URL}) as completed."],
        "fields": {"Repository": REPO},
    },
    "issues.reopened": {
        "title": "Issue #1347 reopened: Found a bug",
        "link": ISSUE_URL,
        "thread_key": ISSUE_THREAD,
        "author": MONALISA,
        "body": [f"**monalisa** reopened [#1347]({ISSUE_URL})."],
        "fields": {"Repository": REPO},
    },
    "issues.assigned": {
        "title": "Issue #1347 assigned to hubot",
        "link": ISSUE_URL,
        "thread_key": ISSUE_THREAD,
        "author": OCTOCAT,
        "body": [f"**octocat** assigned [#1347 Found a bug]({ISSUE_URL}) to **hubot**."],
        "fields": {"Repository": REPO, "Assignee": "hubot"},
        "audience": ["hubot"],
    },
    "issue_comment.created": {
        "title": "monalisa commented on #1347: Found a bug",
        "link": f"{ISSUE_URL}#issuecomment-1146825",
        "thread_key": ISSUE_THREAD,
        "author": MONALISA,
        "body": ["Me too — same crash on Café build 🚀"],
        "fields": {"Repository": REPO},
    },
    "pull_request.opened": {
        "title": "PR #1348 opened: Amazing new feature",
        "link": PR_URL,
        "thread_key": PR_THREAD,
        "author": HUBOT,
        "body": [
            f"**hubot** wants to merge `new-topic` into `master` in **{REPO}**.",
            "Please pull these awesome changes in!",
        ],
        "fields": {"Repository": REPO, "Changes": "5 files, +100 \u22123"},
    },
    "pull_request.closed.merged": {
        "title": "PR #1348 merged: Amazing new feature",
        "link": PR_URL,
        "thread_key": PR_THREAD,
        "author": OCTOCAT,
        "body": [f"**octocat** merged [#1348]({PR_URL}) into `master`."],
        "fields": {"Repository": REPO},
    },
    "push": {
        "title": "octocat pushed 2 commits to master",
        "link": "https://github.com/octocat/Hello-World/compare/9049f1265b7d...7fd1a60b01f9",
        "thread_key": "github:octocat/Hello-World:refs/heads/master",
        "author": OCTOCAT,
        "body": [
            "- [`0d1a26e`](https://github.com/octocat/Hello-World/commit/0d1a26e67d8f5eaf1f6ba5c57fc3c7d91ac0fd1c)"
            " Update README.md",
            "- [`7fd1a60`](https://github.com/octocat/Hello-World/commit/7fd1a60b01f91b314f59955a4e4d4e80d8edf11d)"
            " Fix the crash reported in #1347",
        ],
        "fields": {"Repository": REPO, "Branch": "master"},
    },
    "release.published": {
        "title": "Release v1.0.0 published in octocat/Hello-World",
        "link": "https://github.com/octocat/Hello-World/releases/tag/v1.0.0",
        "thread_key": "github:octocat/Hello-World@v1.0.0",
        "author": OCTOCAT,
        "body": ["Description of the release"],
        "fields": {"Repository": REPO, "Tag": "v1.0.0"},
    },
}


def test_expected_posts_cover_every_routable_github_fixture() -> None:
    routable = {
        p.stem
        for p in (FIXTURES / "github").glob("*.json")
        if not json.loads(p.read_text())["expect"].get("ignored") and p.stem != "pull_request.closed.unmerged"
    }
    assert routable == set(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_github_default_mapping_renders_the_fixture(name: str) -> None:
    want = EXPECTED[name]
    post = post_for(name)
    assert post.title == want["title"]
    assert post.link == want["link"]
    assert post.thread_key == want["thread_key"]
    assert post.author is not None
    assert (post.author.name, post.author.url, post.author.avatar) == want["author"]
    for part in want["body"]:
        assert part in post.body
    assert {f.name: f.value for f in post.fields} == want["fields"]
    assert post.audience == want.get("audience", [])
    assert post.event_type == fixture("github", name)["expect"]["type"]
    assert (post.event_id, post.source_id) == ("evt_01HZX3K9Q2", "src_01HZX3K9Q2")
    assert "\n" not in post.title


def test_events_about_one_issue_share_a_thread() -> None:
    issue = ["issues.opened", "issues.assigned", "issue_comment.created", "issues.closed", "issues.reopened"]
    assert {post_for(n).thread_key for n in issue} == {ISSUE_THREAD}
    pr = ["pull_request.opened", "pull_request.closed.merged"]
    assert {post_for(n).thread_key for n in pr} == {PR_THREAD}


def test_a_comment_on_a_pull_request_joins_the_pull_request_thread() -> None:
    fx = copy.deepcopy(fixture("github", "issue_comment.created"))
    issue = fx["payload"]["issue"]
    issue.update(number=1348, title="Amazing new feature", html_url=PR_URL)
    issue["pull_request"] = {"url": "https://api.github.com/repos/octocat/Hello-World/pulls/1348", "html_url": PR_URL}
    ctx = context("github", fx)
    post = render_post(MAPPINGS.resolve("github", "issue_comment.created", None), ctx)
    assert post.thread_key == post_for("pull_request.opened").thread_key == PR_THREAD


def test_unmerged_pull_request_close_is_skipped() -> None:
    mapping, ctx = mapped("pull_request.closed.unmerged")
    assert mapping is MAPPINGS.get("github/pull_request.closed")
    assert applies(mapping, ctx) is False
    merged, merged_ctx = mapped("pull_request.closed.merged")
    assert applies(merged, merged_ctx) is True


def test_push_without_commits_is_skipped() -> None:
    """A branch deletion is a push with no commits."""
    fx = copy.deepcopy(fixture("github", "push"))
    fx["payload"].update(commits=[], head_commit=None, deleted=True, after="0" * 40)
    mapping = MAPPINGS.resolve("github", "push", None)
    assert applies(mapping, context("github", fx)) is False


def test_push_of_one_commit_is_singular_and_long_pushes_are_cut() -> None:
    fx = copy.deepcopy(fixture("github", "push"))
    mapping = MAPPINGS.resolve("github", "push", None)
    fx["payload"]["commits"] = fx["payload"]["commits"][:1]
    assert render_post(mapping, context("github", fx)).title == "octocat pushed 1 commit to master"
    fx["payload"]["commits"] = [dict(fx["payload"]["commits"][0], id=f"{i:040x}") for i in range(12)]
    post = render_post(mapping, context("github", fx))
    assert post.title == "octocat pushed 12 commits to master"
    assert post.body.count("- [`") == 10
    assert "… and 2 more" in post.body


def test_resolve_by_name_and_unknown_name() -> None:
    assert MAPPINGS.resolve("github", "issues.opened", "issues.closed") is MAPPINGS.get("github/issues.closed")
    assert MAPPINGS.resolve("github", "issues.opened", "_default") is MAPPINGS.get("_default")
    with pytest.raises(MappingError):
        MAPPINGS.resolve("github", "issues.opened", "no-such-mapping")


def test_no_default_mapping_at_all_is_a_mapping_error() -> None:
    with pytest.raises(MappingError):
        MappingCatalogue().resolve("github", "issues.opened", None)


def test_an_issue_event_without_its_own_mapping_stays_in_the_issue_thread() -> None:
    fx = copy.deepcopy(fixture("github", "issues.opened"))
    fx["payload"]["action"] = "labeled"
    fx["payload"]["label"] = fx["payload"]["issue"]["labels"][0]
    ctx = context("github", fx, "issues.labeled")
    post = render_post(MAPPINGS.resolve("github", "issues.labeled", None), ctx)
    assert post.thread_key == post_for("issues.opened").thread_key


# --- the _default mapping ----------------------------------------------------------------------------------

ANY_PAYLOADS = [
    {},
    [],
    None,
    0,
    "plain text",
    {"a": {"b": [1, 2, {"c": None}]}, "ok": True},
    {"unicode": "Zoë — 漢字 🚀", "quote": "\"'`"},
    {"jinja": "{{ 7 * 7 }} {% for x in y %}"},
    {"big": "x" * 20_000},
    [{"type": "list of events"}] * 50,
]


@pytest.mark.parametrize("payload", ANY_PAYLOADS, ids=range(len(ANY_PAYLOADS)))
def test_default_mapping_renders_any_payload(payload: Any) -> None:
    mapping = MAPPINGS.default_for("any-connector", "whatever.happened")
    assert mapping is not None and mapping is MAPPINGS.get("_default")
    ctx = {
        "payload": payload,
        "event": {"id": "evt_1", "type": "whatever.happened", "connector": "any-connector", "subject": None},
        "source": {"id": "src_1", "name": "x"},
    }
    assert applies(mapping, ctx)
    post = render_post(mapping, ctx)
    assert post.title == "any-connector: whatever.happened"
    assert post.thread_key is None
    assert post.body.startswith("```json")
    assert len(post.body) < 3200


def test_default_mapping_does_not_evaluate_templates_inside_the_payload() -> None:
    ctx = context("generic-hmac", {"payload": {"note": "{{ 7 * 7 }}"}, "expect": {"type": "x", "subject": None}})
    post = render_post(MAPPINGS.get("_default") or pytest.fail("no _default"), ctx)
    assert "{{ 7 * 7 }}" in post.body
    assert "49" not in post.body


@pytest.mark.parametrize(
    ("connector", "name", "title", "excerpt"),
    [
        (
            "standard-webhooks",
            "invoice.paid",
            "standard-webhooks: invoice.paid (in_1MtHbELkdIwHu7ixl4OzzPMv)",
            '"amount_paid": 4200',
        ),
        ("generic-hmac", "order.shipped", "generic-hmac: order.shipped (order ORD-8842)", '"carrier": "La Poste"'),
        ("github", "ping", "github: ping (octocat/Hello-World)", '"active": true'),
    ],
)
def test_default_mapping_on_other_connectors(connector: str, name: str, title: str, excerpt: str) -> None:
    fx = fixture(connector, name)
    mapping = MAPPINGS.resolve(connector, fx["expect"]["type"], None)
    assert mapping is MAPPINGS.get("_default")
    post = render_post(mapping, context(connector, fx))
    assert post.title == title
    assert post.thread_key == f"{connector}:{fx['expect']['subject']}"  # connector-qualified subject
    assert excerpt in post.body


# --- failures are MappingError, never a crash ---------------------------------------------------------------


@pytest.mark.parametrize(
    "data",
    [
        {"post": {"title": "{{ payload.issue.title "}},
        {"post": {"title": "ok", "body": "{% for x in payload %}no end"}},
        {"post": {"title": "ok", "fields": {"A": "{{ 1 + }}"}}},
        {"when": "{% if %}", "post": {"title": "ok"}},
        {"post": {"title": "ok", "author": {"name": "{{ }}"}}},
        {"post": {"title": "ok"}, "unknown": 1},
        {"post": {}},
        {"post": {"title": "ok", "thread_key": "{{ payload | nosuchfilter }}"}},
    ],
    ids=["title", "body", "field", "when", "author", "extra-key", "no-title", "unknown-filter"],
)
def test_broken_inline_mapping_is_a_mapping_error(data: dict[str, Any]) -> None:
    with pytest.raises(MappingError):
        parse_inline(data)
    with pytest.raises(MappingError):
        MAPPINGS.resolve("github", "issues.opened", data)


def test_valid_inline_mapping_renders() -> None:
    fx = fixture("github", "issues.opened")
    mapping = MAPPINGS.resolve("github", "issues.opened", {"post": {"title": "{{ payload.issue.title | upper }}"}})
    post = render_post(mapping, context("github", fx))
    assert post.title == "FOUND A BUG"
    # no thread_key template: the connector-qualified subject, as the built-in mappings write it
    assert post.thread_key == "github:octocat/Hello-World#1347"


@pytest.mark.parametrize(
    "template",
    [
        "{{ ''.__class__.__mro__[1].__subclasses__() }}",
        "{{ payload.__class__.__init__.__globals__['os'].system('true') }}",
        "{{ cycler.__init__.__globals__.os.popen('id').read() }}",
        "{{ range.__self__.__import__('os').getcwd() }}",
        "{{ range(10 ** 9) | list | length }}",
    ],
)
def test_sandbox_blocks_escapes(template: str) -> None:
    mapping = parse_inline({"post": {"title": template}})
    ctx = context("github", fixture("github", "issues.opened"))
    with pytest.raises(MappingError):
        render_post(mapping, ctx)


def test_sandbox_escape_in_a_field_is_a_mapping_error() -> None:
    mapping = parse_inline({"post": {"title": "ok", "body": "{{ ''.__class__.__mro__[1].__subclasses__() }}"}})
    with pytest.raises(MappingError, match=r"unsafe|SecurityError"):
        render_post(mapping, context("github", fixture("github", "issues.opened")))


@pytest.mark.parametrize("title", ["", "   ", "{{ payload.nothing_here }}", "{{ payload.issue.missing.deeper }}"])
def test_empty_title_is_a_mapping_error(title: str) -> None:
    mapping = MappingSpec.model_validate({"post": {"title": title}})
    with pytest.raises(MappingError, match="empty"):
        render_post(mapping, context("github", fixture("github", "issues.opened")))


def test_multi_line_title_keeps_its_first_line() -> None:
    mapping = parse_inline({"post": {"title": "{{ payload.issue.title }}\nsecond line"}})
    assert render_post(mapping, context("github", fixture("github", "issues.opened"))).title == "Found a bug"


def test_a_mapping_file_found_by_the_events_it_lists() -> None:
    """Event types that cannot be file names (Jira's jira:issue_created) are found through `events:`."""
    cat = MappingCatalogue(
        {
            "acme/issue_created": parse_inline({"events": ["acme:issue_created"], "post": {"title": "created"}}),
            "acme/comments": parse_inline({"events": ["comment_*"], "post": {"title": "comment"}}),
            "acme/_default": parse_inline({"post": {"title": "other"}}),
        }
    )
    assert cat.default_name("acme", "acme:issue_created") == "acme/issue_created"
    assert cat.default_name("acme", "comment_updated") == "acme/comments"
    assert cat.default_name("acme", "acme:issue_deleted") == "acme/_default"
    assert MAPPINGS.default_name("jira", "jira:issue_created") == "jira/issue_created"
