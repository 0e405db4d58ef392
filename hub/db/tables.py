"""The schema, as SQLAlchemy Core tables. Timestamps are UNIX epoch seconds (float)."""

from __future__ import annotations

import sqlalchemy as sa

metadata = sa.MetaData()

api_keys = sa.Table(
    "api_keys",
    metadata,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("key_hash", sa.String(64), nullable=False, unique=True),
    sa.Column("scope", sa.String(16), nullable=False),
    sa.Column("created_at", sa.Float, nullable=False),
)

sources = sa.Table(
    "sources",
    metadata,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("connector", sa.String(100), nullable=False),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("secret_enc", sa.Text, nullable=True),
    # settings the connector declares secret (Box's secondary key…), a sealed JSON object
    sa.Column("secret_settings_enc", sa.Text, nullable=True),
    # secret rotation: the secret before the last change stays valid until previous_secret_until
    sa.Column("previous_secret_enc", sa.Text, nullable=True),
    sa.Column("previous_secret_until", sa.Float, nullable=True),
    sa.Column("settings", sa.JSON, nullable=False),
    sa.Column("enabled", sa.Boolean, nullable=False),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("updated_at", sa.Float, nullable=False),
)

targets = sa.Table(
    "targets",
    metadata,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("kind", sa.String(50), nullable=False),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("config", sa.JSON, nullable=False),
    sa.Column("secrets_enc", sa.Text, nullable=True),
    sa.Column("retry_schedule", sa.JSON, nullable=True),
    sa.Column("rate_limit_per_second", sa.Float, nullable=True),
    sa.Column("breaker_state", sa.String(16), nullable=False, server_default="closed"),
    sa.Column("consecutive_failures", sa.Integer, nullable=False, server_default="0"),
    sa.Column("breaker_opened_at", sa.Float, nullable=True),
    sa.Column("breaker_until", sa.Float, nullable=True),
    sa.Column("disabled_reason", sa.Text, nullable=True),  # why the target was disabled (a 404/410 answer)
    sa.Column("enabled", sa.Boolean, nullable=False),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("updated_at", sa.Float, nullable=False),
)

routes = sa.Table(
    "routes",
    metadata,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("source_id", sa.String(64), sa.ForeignKey("sources.id", ondelete="CASCADE"), nullable=False),
    sa.Column("target_id", sa.String(64), sa.ForeignKey("targets.id", ondelete="CASCADE"), nullable=False),
    sa.Column("events", sa.JSON, nullable=False),
    sa.Column("mapping", sa.JSON, nullable=True),
    sa.Column("enabled", sa.Boolean, nullable=False),
    # calm channels (hub/delivery/calm.py): a coalescing window, business hours, a daily digest
    sa.Column("coalesce_seconds", sa.Float, nullable=True),
    sa.Column("quiet_hours", sa.JSON, nullable=True),
    sa.Column("digest", sa.JSON, nullable=True),
    # send to the person the post mentions, where the target can message people directly
    sa.Column("notify_direct", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("updated_at", sa.Float, nullable=False),
    sa.Index("ix_routes_source", "source_id"),
)

events = sa.Table(
    "events",
    metadata,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("source_id", sa.String(64), nullable=False),
    sa.Column("connector", sa.String(100), nullable=False),
    sa.Column("type", sa.String(200), nullable=False),
    sa.Column("dedup_key", sa.String(300), nullable=True),
    sa.Column("subject", sa.String(300), nullable=True),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("headers", sa.JSON, nullable=False),
    sa.Column("body", sa.LargeBinary, nullable=False),
    # JSON text of the event's own payload when it is not simply the body's JSON (a batch item, a form
    # field, a body that is not JSON); delivery reads it without the inbound connector
    sa.Column("payload", sa.Text, nullable=True),
    sa.Column("received_at", sa.Float, nullable=False),
    sa.UniqueConstraint("source_id", "dedup_key", name="uq_events_source_dedup"),
    sa.Index("ix_events_source_received", "source_id", "received_at"),
    sa.Index("ix_events_type", "type"),
)

# What a mapping reads of an event: the delivery engine loads it with each delivery, coalescing with each
# folded one.
EVENT_FOR_MAPPING = (
    events.c.type,
    events.c.body,
    events.c.payload,
    events.c.headers,
    events.c.source_id,
    events.c.connector,
    events.c.subject,
    events.c.received_at,
)

deliveries = sa.Table(
    "deliveries",
    metadata,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("event_id", sa.String(64), nullable=False),
    sa.Column("route_id", sa.String(64), nullable=False),
    sa.Column("target_id", sa.String(64), nullable=False),
    sa.Column("order_key", sa.String(400), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False),
    # attempts made before the last manual or bulk retry: the retry schedule starts again from there
    sa.Column("retry_base", sa.Integer, nullable=False, server_default="0"),
    sa.Column("next_attempt_at", sa.Float, nullable=False),
    sa.Column("lease_until", sa.Float, nullable=True),
    sa.Column("last_error", sa.Text, nullable=True),
    sa.Column("last_status_code", sa.Integer, nullable=True),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("updated_at", sa.Float, nullable=False),
    sa.Column("delivered_at", sa.Float, nullable=True),
    # which mapping rendered the last attempt: "builtin:github/issues.opened", "<name>@<version>", "inline"
    sa.Column("mapping_version", sa.String(120), nullable=True),
    # a delivery carried by another one (coalesced or in a digest): status 'folded', the carrier's id here
    sa.Column("folded_into", sa.String(64), nullable=True),
    # the post the target created (lineage): its id and, when the target says, its link
    sa.Column("remote_id", sa.String(300), nullable=True),
    sa.Column("remote_url", sa.Text, nullable=True),
    sa.Index("ix_deliveries_due", "status", "next_attempt_at"),
    # only unfinished deliveries can hold back a later one of their thread: keep that index small
    sa.Index(
        "ix_deliveries_unfinished_order",
        "target_id",
        "order_key",
        "id",
        postgresql_where=sa.text("status IN ('pending', 'sending')"),
        sqlite_where=sa.text("status IN ('pending', 'sending')"),
    ),
    sa.Index("ix_deliveries_event", "event_id"),
    sa.Index("ix_deliveries_folded_into", "folded_into"),
)

attempts = sa.Table(
    "attempts",
    metadata,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("delivery_id", sa.String(64), nullable=False),
    sa.Column("number", sa.Integer, nullable=False),
    sa.Column("started_at", sa.Float, nullable=False),
    sa.Column("latency_ms", sa.Float, nullable=False),
    sa.Column("outcome", sa.String(16), nullable=False),
    sa.Column("status_code", sa.Integer, nullable=True),
    sa.Column("error", sa.Text, nullable=True),
    sa.Column("response_excerpt", sa.Text, nullable=True),
    sa.Index("ix_attempts_delivery", "delivery_id"),
)

inbox_posts = sa.Table(
    "inbox_posts",
    metadata,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("target_id", sa.String(64), nullable=False),
    sa.Column("delivery_id", sa.String(64), nullable=False, unique=True),
    sa.Column("event_id", sa.String(64), nullable=False),
    sa.Column("post", sa.JSON, nullable=False),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Index("ix_inbox_target", "target_id", "created_at"),
)

# the remote post that opened a thread, per target and thread key (hashed: keys may be long); written in
# the transaction that records the delivery's outcome
thread_anchors = sa.Table(
    "thread_anchors",
    metadata,
    sa.Column("target_id", sa.String(64), primary_key=True),
    sa.Column("thread_hash", sa.String(64), primary_key=True),
    sa.Column("thread_key", sa.Text, nullable=False),
    sa.Column("remote_id", sa.String(300), nullable=True),
    sa.Column("remote_url", sa.Text, nullable=True),
    sa.Column("delivery_id", sa.String(64), nullable=False),
    sa.Column("created_at", sa.Float, nullable=False),
)

# outbound OAuth2 tokens per credential (a hash), encrypted
oauth_tokens = sa.Table(
    "oauth_tokens",
    metadata,
    sa.Column("credential", sa.String(64), primary_key=True),
    sa.Column("token_enc", sa.Text, nullable=False),
    sa.Column("updated_at", sa.Float, nullable=False),
)

custom_connectors = sa.Table(
    "custom_connectors",
    metadata,
    sa.Column("id", sa.String(100), primary_key=True),
    sa.Column("spec", sa.JSON, nullable=False),
    sa.Column("created_at", sa.Float, nullable=False),
)

jobs = sa.Table(
    "jobs",
    metadata,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("kind", sa.String(50), nullable=False),
    sa.Column("params", sa.JSON, nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("total", sa.Integer, nullable=False),
    sa.Column("done", sa.Integer, nullable=False),
    sa.Column("error", sa.Text, nullable=True),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("updated_at", sa.Float, nullable=False),
)

# mappings managed over the API: each change is a new version; built-in mappings stay files
mappings = sa.Table(
    "mappings",
    metadata,
    sa.Column("id", sa.String(100), primary_key=True),  # its name, as routes refer to it
    sa.Column("connector", sa.String(100), nullable=True),
    sa.Column("description", sa.Text, nullable=False, server_default=""),
    sa.Column("version", sa.Integer, nullable=False),  # the current version
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("updated_at", sa.Float, nullable=False),
)

mapping_versions = sa.Table(
    "mapping_versions",
    metadata,
    sa.Column("mapping_id", sa.String(100), sa.ForeignKey("mappings.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("version", sa.Integer, primary_key=True),
    sa.Column("spec", sa.JSON, nullable=False),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("created_by", sa.String(64), nullable=True),  # the API key (or user) that wrote it
)

# a directory of people: one person, many identities (a GitHub login, a Jira account id, a Slack user…)
people = sa.Table(
    "people",
    metadata,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("display_name", sa.String(200), nullable=False),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("updated_at", sa.Float, nullable=False),
)

person_identities = sa.Table(
    "person_identities",
    metadata,
    sa.Column("kind", sa.String(32), primary_key=True),  # email, github, jira, slack, …
    sa.Column("value", sa.String(320), primary_key=True),  # one identity belongs to one person
    sa.Column("person_id", sa.String(64), sa.ForeignKey("people.id", ondelete="CASCADE"), nullable=False),
    sa.Index("ix_person_identities_person", "person_id"),
)

audit_log = sa.Table(
    "audit_log",
    metadata,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("at", sa.Float, nullable=False),
    sa.Column("actor_kind", sa.String(16), nullable=False),  # api_key | oidc | cli | system
    sa.Column("actor_id", sa.String(300), nullable=False),  # key id, OIDC subject, cli:<user>
    sa.Column("actor_name", sa.String(300), nullable=False),  # key name, e-mail, user name
    sa.Column("resource", sa.String(32), nullable=False),
    sa.Column("resource_id", sa.String(300), nullable=False),
    sa.Column("action", sa.String(32), nullable=False),
    sa.Column("fields", sa.JSON, nullable=False),  # names of the changed fields, never their values
    sa.Column("details", sa.JSON, nullable=True),
    sa.Index("ix_audit_at", "at"),
    sa.Index("ix_audit_resource", "resource", "resource_id"),
    sa.Index("ix_audit_actor", "actor_id"),
)

# --- storage providers (issue 8): credentials, change cursors, provider subscriptions, per source -----------

# a source's OAuth2 credentials for its provider's API (sealed: tokens, refresh token); ``generation``
# changes whenever they are replaced, so in-memory token caches miss
source_credentials = sa.Table(
    "source_credentials",
    metadata,
    sa.Column("source_id", sa.String(64), primary_key=True),
    sa.Column("grant", sa.String(32), nullable=False),  # authorization_code | refresh_token | client_credentials
    sa.Column("token_enc", sa.Text, nullable=True),  # sealed JSON: access_token, expires_at, refresh_token
    sa.Column("generation", sa.String(64), nullable=False),
    sa.Column("account", sa.String(300), nullable=True),  # the provider account they are for, when known
    sa.Column("account_name", sa.String(300), nullable=True),
    sa.Column("expires_at", sa.Float, nullable=True),  # the access token's expiry (shown; the token is not)
    sa.Column("last_error", sa.Text, nullable=True),  # the token endpoint's last refusal
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("updated_at", sa.Float, nullable=False),
)

# one change feed per (source, account): its cursor advances only in the transaction that stores the events it
# produced; ``requested`` counts notifications, ``done`` what the last complete fetch covered; a fetch is
# claimed by compare-and-set on the lease
storage_cursors = sa.Table(
    "storage_cursors",
    metadata,
    sa.Column("source_id", sa.String(64), primary_key=True),
    sa.Column("account", sa.String(300), primary_key=True),  # "" when a source watches one drive
    sa.Column("cursor", sa.Text, nullable=True),  # None: not started (the first fetch takes the latest)
    sa.Column("requested", sa.Integer, nullable=False),
    sa.Column("done", sa.Integer, nullable=False),
    sa.Column("lease_id", sa.String(64), nullable=True),
    sa.Column("lease_until", sa.Float, nullable=True),
    sa.Column("next_attempt_at", sa.Float, nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False),  # consecutive failures
    sa.Column("failure", sa.String(16), nullable=True),  # retry | refused: how the last fetch failed
    sa.Column("last_error", sa.Text, nullable=True),
    sa.Column("last_error_at", sa.Float, nullable=True),
    sa.Column("last_fetch_at", sa.Float, nullable=True),  # the last complete fetch
    sa.Column("last_notification_id", sa.String(64), nullable=True),  # the event that asked for the next fetch
    sa.Column("changes_posted", sa.Integer, nullable=False),
    sa.Column("changes_filtered", sa.Integer, nullable=False),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("updated_at", sa.Float, nullable=False),
    sa.Index("ix_storage_cursors_due", "next_attempt_at"),
)

# the provider-side subscription hub keeps alive for a source (a Graph subscription, a Drive channel)
storage_subscriptions = sa.Table(
    "storage_subscriptions",
    metadata,
    sa.Column("source_id", sa.String(64), primary_key=True),
    sa.Column("status", sa.String(16), nullable=False),  # pending | active | failing | removed | deleted
    sa.Column("remote_id", sa.String(300), nullable=True),  # Graph subscription id, Drive channel id
    sa.Column("resource_id", sa.String(300), nullable=True),  # Drive's resourceId (to stop the channel)
    sa.Column("resource", sa.Text, nullable=True),  # what it watches
    sa.Column("expires_at", sa.Float, nullable=True),
    sa.Column("renewed_at", sa.Float, nullable=True),
    sa.Column("reauthorize", sa.Boolean, nullable=False),  # Graph asked for it (lifecycle event)
    sa.Column("secret_hash", sa.String(64), nullable=True),  # of the clientState / channel token it was made with
    sa.Column("next_check_at", sa.Float, nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False),
    sa.Column("last_error", sa.Text, nullable=True),
    sa.Column("last_error_at", sa.Float, nullable=True),
    sa.Column("lease_id", sa.String(64), nullable=True),
    sa.Column("lease_until", sa.Float, nullable=True),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("updated_at", sa.Float, nullable=False),
    sa.Index("ix_storage_subscriptions_due", "next_check_at"),
)
