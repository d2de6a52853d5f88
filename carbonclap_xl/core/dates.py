"""Dates as people type them: one reading for the Production sheet, the production data of
``new`` and anything else that takes a date."""

from __future__ import annotations

import datetime as dt
from typing import Any

# jj/mm/aaaa first (French), then ISO, then the other French separators
DATE_FORMATS: tuple[str, ...] = ("%d/%m/%Y", "%Y-%m-%d", "%d-%m-%Y", "%d.%m.%Y")


def parse_date(value: Any) -> dt.date | None:
    """The date ``value`` is (a date, a datetime, or text in one of ``DATE_FORMATS``), or None."""
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    if isinstance(value, str) and value.strip():
        for fmt in DATE_FORMATS:
            try:
                return dt.datetime.strptime(value.strip(), fmt).date()
            except ValueError:
                continue
    return None
