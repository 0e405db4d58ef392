"""Calm channels: per route, events of one business object folded into one post, business hours, and a
daily digest for low-priority events. Pure rules here; the engine applies them.

- **Coalescing** (``coalesce_seconds``): a route's first delivery about a business object waits that long;
  when it goes, it carries every later delivery of the object that arrived meanwhile ("folded": each keeps
  its row, with ``folded_into`` naming the carrier, so the lineage shows every event) and posts the last
  state with how many changes it folds. The wait starts at the first event and does not slide: an object
  that changes all the time still posts once per window. Order per object is kept (one at a time per
  thread, as for every delivery).
- **Business hours** (``quiet_hours``): outside them a delivery waits for the next opening (not an attempt).
- **Digest** (``digest``): the route's deliveries wait for the day's digest time; the first then carries
  all the others of that route and posts one list.
"""

from __future__ import annotations

import datetime as dt
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

Day = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
DAYS: tuple[Day, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_HHMM = r"^([01]\d|2[0-3]):[0-5]\d$"
MAX_DIGEST_ITEMS = 50  # listed in one digest post; the rest are counted


def _zone(name: str) -> str:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown time zone {name!r} (an IANA name such as Europe/Paris)") from None
    return name


def _minutes(hhmm: str) -> int:
    h, m = hhmm.split(":")
    return int(h) * 60 + int(m)


class QuietHours(BaseModel):
    """Business hours: deliveries outside them wait for the next opening."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "days": ["mon", "tue", "wed", "thu", "fri"],
                    "start": "08:30",
                    "end": "18:30",
                    "timezone": "Europe/Paris",
                }
            ]
        },
    )
    days: list[Day] = Field(default_factory=lambda: list(DAYS[:5]), min_length=1)
    start: str = Field("09:00", pattern=_HHMM)
    end: str = Field("18:00", pattern=_HHMM)
    timezone: str = "UTC"

    _tz = field_validator("timezone")(_zone)

    @model_validator(mode="after")
    def _ordered(self) -> QuietHours:
        if _minutes(self.start) >= _minutes(self.end):
            raise ValueError("business hours start before they end (overnight hours are not supported)")
        return self

    def is_open(self, when: float) -> bool:
        local = dt.datetime.fromtimestamp(when, ZoneInfo(self.timezone))
        minute = local.hour * 60 + local.minute
        return DAYS[local.weekday()] in self.days and _minutes(self.start) <= minute < _minutes(self.end)

    def next_open(self, when: float) -> float:
        """``when`` if open, else the next opening (at most a week ahead)."""
        if self.is_open(when):
            return when
        zone = ZoneInfo(self.timezone)
        local = dt.datetime.fromtimestamp(when, zone)
        start = _minutes(self.start)
        for days_ahead in range(8):
            day = (local + dt.timedelta(days=days_ahead)).date()
            opening = dt.datetime(day.year, day.month, day.day, start // 60, start % 60, tzinfo=zone)
            if DAYS[day.weekday()] in self.days and opening.timestamp() > when:
                return opening.timestamp()
        return when  # unreachable with at least one day and start < end: never hold a post for ever


class Digest(BaseModel):
    """One post a day listing the route's events (for low-priority ones)."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"at": "17:00", "timezone": "UTC"}]})
    at: str = Field("17:00", pattern=_HHMM)
    timezone: str = "UTC"

    _tz = field_validator("timezone")(_zone)

    def next_time(self, when: float) -> float:
        zone = ZoneInfo(self.timezone)
        local = dt.datetime.fromtimestamp(when, zone)
        at = _minutes(self.at)
        today = dt.datetime(local.year, local.month, local.day, at // 60, at % 60, tzinfo=zone)
        if today.timestamp() > when:
            return today.timestamp()
        tomorrow = local.date() + dt.timedelta(days=1)
        return dt.datetime(tomorrow.year, tomorrow.month, tomorrow.day, at // 60, at % 60, tzinfo=zone).timestamp()


def digest_order_key(route_id: str) -> str:
    """All deliveries of a digest route are one thread: one is carried at a time, the first carries all."""
    return f"digest:{route_id}"


def updates_text(count: int) -> str:
    return "1 update" if count == 1 else f"{count} updates"
