"""The `format` checker every output is validated with: jsonschema's, made exact where it is loose.

jsonschema checks most formats with dedicated packages (the `format-nongpl` extra: date-time,
duration, uri, hostname, ...). Two it gets wrong, measured on the JSON-Schema-Test-Suite's
`optional/format` tests: `email` is only "contains an @" (so `.a@b`, `a..b@c` and
`a@invalid=domain` pass), and `date-time`/`time` refuse leap seconds (`23:59:60Z`), which
RFC 3339 allows. Both are replaced here; everything else is jsonschema's.
"""

from __future__ import annotations

import datetime
import functools
import ipaddress
import re
from typing import Any

__all__ = ["format_checker"]

_ATOM = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
_LOCAL = re.compile(rf'^(?:{_ATOM}(?:\.{_ATOM})*|"(?:[^"\\\r\n]|\\.)*")$')
_LABEL = re.compile(r"^(?!-)[A-Za-z0-9-]{1,63}(?<!-)$")
_TIME = re.compile(
    r"^(?P<hour>\d\d):(?P<minute>\d\d):(?P<second>\d\d)(?P<fraction>\.\d+)?"
    r"(?P<offset>[Zz]|[+-]\d\d:\d\d)$"
)


def _is_email(value: object) -> bool:
    """RFC 5321 mailbox: a dot-atom local part, then a host name or an address literal."""
    if not isinstance(value, str):
        return True
    local, at, domain = value.rpartition("@")  # a quoted local part may hold an @
    if not at or not _LOCAL.match(local) or len(local) > 64:
        return False
    if domain.startswith("[") and domain.endswith("]"):
        literal = domain[1:-1]
        try:
            if literal.lower().startswith("ipv6:"):
                ipaddress.IPv6Address(literal[5:])
            else:
                ipaddress.IPv4Address(literal)
        except ValueError:
            return False
        return True
    labels = domain.split(".")
    return len(domain) <= 253 and all(_LABEL.match(label) for label in labels)


def _leap_second_is_valid(time: str) -> bool | None:
    """For a time with second 60: whether it is 23:59:60 UTC (None: not a leap second)."""
    match = _TIME.match(time)
    if match is None or match["second"] != "60":
        return None
    offset = match["offset"]
    minutes = 0
    if offset not in ("Z", "z"):
        sign = -1 if offset[0] == "-" else 1
        minutes = sign * (int(offset[1:3]) * 60 + int(offset[4:6]))
    utc = (int(match["hour"]) * 60 + int(match["minute"]) - minutes) % (24 * 60)
    return utc == 23 * 60 + 59 and int(match["hour"]) < 24 and int(match["minute"]) < 60


@functools.cache
def format_checker() -> Any:
    """A `jsonschema.FormatChecker`: jsonschema's formats, email and leap seconds made exact."""
    import jsonschema

    base = jsonschema.Draft202012Validator.FORMAT_CHECKER
    checker = jsonschema.FormatChecker(formats=())
    checker.checkers = dict(base.checkers)
    time_check = base.checkers.get("time")
    date_time_check = base.checkers.get("date-time")

    checker.checks("email")(_is_email)

    if time_check is not None:

        @checker.checks("time", raises=time_check[1])  # type: ignore[untyped-decorator]
        def time(value: object) -> bool:
            if isinstance(value, str):
                leap = _leap_second_is_valid(value)
                if leap is not None:
                    return leap
            return bool(time_check[0](value))

    if date_time_check is not None:

        @checker.checks("date-time", raises=date_time_check[1])  # type: ignore[untyped-decorator]
        def date_time(value: object) -> bool:
            if isinstance(value, str) and len(value) > 11 and value[10] in "Tt ":
                leap = _leap_second_is_valid(value[11:])
                if leap is not None:
                    try:
                        datetime.date.fromisoformat(value[:10])
                    except ValueError:
                        return False
                    return leap
            return bool(date_time_check[0](value))

    return checker
