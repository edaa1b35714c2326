#!/usr/bin/env python3
"""cxref — an independent reference implementation of cxstream SPEC §1–§5.

Replay mode only: a finite JSON Lines input, replayed as one input partition
(partition 0) or, with --partitions N, split over N partitions by the hash of
the customer id as a Kafka producer keyed by customer would (SPEC §2).
Standard library only.  Written from /work/shared/SPEC.md; the choices made
where the SPEC is silent are listed in tests/reference/README.md and are
marked "CHOICE" in the comments below.

    python3 tests/reference/cxref.py INPUT.jsonl [--windows 1m,1h]
        [--lateness-seconds 30] [--group-by "" team channel priority]
        [--partitions 1] [--partitioner crc32|murmur2]
        [--now RFC3339] [--max-future-seconds 3600]
        [--max-event-bytes 1048576]

Writes every output record (kpi.window, sla.breached, churn.risk,
recovery.needed, recovery.overdue, deadletter) to stdout, one JSON object per
line, in the order they are produced.

All times are integer milliseconds since the UNIX epoch.
"""

import argparse
import functools
import heapq
import json
import math
import re
import sys
import time as _time
import zlib

SECOND = 1000
MINUTE = 60 * SECOND
HOUR = 60 * MINUTE
DAY = 24 * HOUR

# ---------------------------------------------------------------------------
# Configurable defaults (SPEC §1, §3, §5: "every number below is a configurable
# default").  Windows, lateness, groups, partitions, the reference clock,
# max_future and max_event_bytes are exposed on the CLI.
# ---------------------------------------------------------------------------
DEDUP_HORIZON = 24 * HOUR                 # §1 duplicates: 24 h of event time
TICKET_RETENTION_SOLVED = 30 * DAY        # §1 ticket state kept 30 d once solved
TICKET_RETENTION_OPEN = 90 * DAY          # §1 ... and 90 d while open
CUSTOMER_RETENTION = 90 * DAY             # §1 customer state 90 d after last event
MAX_FUTURE = 1 * HOUR                     # §1 time from the future: default 1 h
MAX_EVENT_BYTES = 1 << 20                 # §1 size: default 1 MiB
DEADLETTER_PAYLOAD_BYTES = 64 * 1024      # §1 size: an oversized payload's prefix, escaped
MAX_HANDLE_SECONDS = 604800               # §1 handle_seconds at most 7 days
MAX_AMOUNT = 10 ** 12                     # §1 amount at most 10^12

SLA_TARGETS = {                           # §3 default SLA targets
    #           first response   resolution
    "urgent": (15 * MINUTE, 4 * HOUR),
    "high": (1 * HOUR, 8 * HOUR),
    "normal": (4 * HOUR, 24 * HOUR),
    "low": (24 * HOUR, 72 * HOUR),
}

HALF_LIFE = 14 * DAY                      # §5 churn risk
CHURN_THRESHOLD = 5.0
CHURN_COOLDOWN = 7 * DAY
EFFECTIVENESS_HORIZON = 90 * DAY
REPEAT_CONTACT_WINDOW = 7 * DAY
RECOVERY_DUE = 24 * HOUR
REPURCHASE_HORIZON = 30 * DAY

# §5 signal table, in the table's order, with weights.
SIGNAL_WEIGHTS = {
    "csat_negative": 3.0,
    "nps_detractor": 3.0,
    "ces_high_effort": 2.0,
    "reopen": 2.0,
    "sla_breach": 2.0,
    "repeat_contact": 2.0,
    "return": 2.0,
    "escalation": 1.0,
    "warranty_claim": 1.0,
    "positive": -3.0 / 12.0,
}

# ---------------------------------------------------------------------------
# §1 Input events: vocabulary
# ---------------------------------------------------------------------------
CHANNELS = {"email", "phone", "chat", "social", "web_form", "in_person", "messenger"}
PRIORITIES = {"urgent", "high", "normal", "low"}
CATEGORIES = {"warranty", "return", "complaint", "question", "tech_support",
              "consultation", "other"}
AUTHORS = {"agent", "customer", "system"}
TICKET_EVENTS = {"ticket.message", "ticket.solved", "ticket.reopened", "ticket.escalated"}
TYPES = {
    "ticket.created", "ticket.message", "ticket.solved", "ticket.reopened",
    "ticket.escalated", "contact.handled", "customer.contacted", "survey.csat",
    "survey.nps", "survey.ces", "order.placed", "order.returned",
    "warranty.claimed", "customer.churned",
}
DIMENSIONS = ("team", "channel", "priority", "category")


ENCODER = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))


class Invalid(Exception):
    """An invalid event (§1 'Invalid input').  `reason` is the reason code it is
    counted by (CHOICE: the codes of the project README: invalid_json,
    missing_field, wrong_type, unknown_type, invalid_enum, out_of_range,
    bad_timestamp, bad_length); the message is the error in words."""

    def __init__(self, reason, message):
        super().__init__(message)
        self.reason = reason


# --- JSON ------------------------------------------------------------------

def _reject_constant(name):
    # Python's json module accepts NaN / Infinity, which are not JSON.
    raise ValueError("not valid JSON: %s" % name)


def _object_without_duplicate_keys(pairs):
    # CHOICE: an object with a repeated key is not accepted (ambiguous payload).
    obj = {}
    for key, value in pairs:
        if key in obj:
            raise ValueError("duplicate key %r" % key)
        obj[key] = value
    return obj


def parse_json(text):
    try:
        return json.loads(text, parse_constant=_reject_constant,
                          object_pairs_hook=_object_without_duplicate_keys)
    except (ValueError, RecursionError) as e:
        raise Invalid("invalid_json", "invalid JSON: %s" % e)


# --- §1 size: the JSON-escaped length of a dead-letter payload ---------------

_TWO_BYTE_ESCAPES = frozenset('"\\\b\f\n\r\t')


def escaped_bytes(ch):
    """Bytes that one character takes in a JSON string as the records are written
    (this file's ENCODER, the same escaping as serde_json): `"` `\\` and
    \\b \\f \\n \\r \\t take 2, the other controls U+0000-U+001F take 6
    (\\u00XX), everything else its UTF-8 length (no \\u escapes for non-ASCII)."""
    if ch in _TWO_BYTE_ESCAPES:
        return 2
    o = ord(ch)
    if o < 0x20:
        return 6
    if o < 0x80:
        return 1
    if o < 0x800:
        return 2
    if o < 0x10000:
        return 3
    return 4


def escaped_prefix(text, limit=DEADLETTER_PAYLOAD_BYTES):
    """§1 size: the longest prefix of `text` whose JSON-escaped form fits in
    `limit` bytes.  CHOICE: the measure is the escaped content of the string,
    without the two enclosing quotes; the prefix ends on a character boundary."""
    total = 0
    for i, ch in enumerate(text):
        total += escaped_bytes(ch)
        if total > limit:
            return text[:i]
    return text


# --- §2 replay --partitions: the producer's partitioner ---------------------

def crc32_partition(key, n):
    """librdkafka's default partitioner (consistent_random) for a non-empty key:
    crc32(key) % n, with the zlib / IEEE 802.3 CRC-32."""
    return zlib.crc32(key) % n


def murmur2(data):
    """Kafka's murmur2 (org.apache.kafka.common.utils.Utils.murmur2), as an
    unsigned 32-bit value: seed 0x9747b28c, m 0x5bd1e995, r 24, little-endian
    4-byte blocks, tail bytes, final mix h ^= h>>>13; h *= m; h ^= h>>>15."""
    mask = 0xFFFFFFFF
    m, r = 0x5BD1E995, 24
    length = len(data)
    h = (0x9747B28C ^ length) & mask
    for i in range(0, length - length % 4, 4):
        k = data[i] | (data[i + 1] << 8) | (data[i + 2] << 16) | (data[i + 3] << 24)
        k = (k * m) & mask
        k ^= k >> r
        k = (k * m) & mask
        h = (h * m) & mask
        h ^= k
    tail = length % 4
    base = length - tail
    if tail == 3:
        h ^= data[base + 2] << 16
    if tail >= 2:
        h ^= data[base + 1] << 8
    if tail >= 1:
        h ^= data[base]
        h = (h * m) & mask
    h ^= h >> 13
    h = (h * m) & mask
    h ^= h >> 15
    return h


def murmur2_partition(key, n):
    """The Java client's default partitioner for a keyed record:
    toPositive(murmur2(key)) % n, toPositive(x) = x & 0x7fffffff."""
    return (murmur2(key) & 0x7FFFFFFF) % n


PARTITIONERS = {"crc32": crc32_partition, "murmur2": murmur2_partition}


# --- RFC 3339 timestamps -----------------------------------------------------

TIMESTAMP_RE = re.compile(
    r"([0-9]{4})-([0-9]{2})-([0-9]{2})T([0-9]{2}):([0-9]{2}):([0-9]{2})"
    r"(?:\.([0-9]+))?(Z|[+-][0-9]{2}:[0-9]{2})")


def days_from_civil(y, m, d):
    """Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant)."""
    y -= m <= 2
    era = y // 400  # floor division already
    yoe = y - era * 400
    doy = (153 * (m + (-3 if m > 2 else 9)) + 2) // 5 + d - 1
    doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
    return era * 146097 + doe - 719468


def days_in_month(y, m):
    if m == 2:
        leap = (y % 4 == 0 and y % 100 != 0) or y % 400 == 0
        return 29 if leap else 28
    return 30 if m in (4, 6, 9, 11) else 31


def parse_time(text):
    """§1: RFC 3339 with 'T' and an offset ('Z' or ±hh:mm); digits beyond the
    millisecond are dropped.  Returns integer milliseconds since the epoch."""
    m = TIMESTAMP_RE.fullmatch(text)
    if not m:
        raise Invalid("bad_timestamp", "bad timestamp %r" % text)
    year, month, day, hour, minute, second = (int(g) for g in m.groups()[:6])
    fraction, offset = m.group(7), m.group(8)
    if not (1 <= month <= 12 and 1 <= day <= days_in_month(year, month)):
        raise Invalid("bad_timestamp", "bad timestamp %r: no such date" % text)
    # CHOICE: leap second 60 is rejected.
    if hour > 23 or minute > 59 or second > 59:
        raise Invalid("bad_timestamp", "bad timestamp %r: no such time" % text)
    millis = int((fraction or "")[:3].ljust(3, "0"))   # truncate, never round
    if offset == "Z":
        offset_ms = 0
    else:
        oh, om = int(offset[1:3]), int(offset[4:6])
        if oh > 23 or om > 59:
            raise Invalid("bad_timestamp", "bad timestamp %r: bad offset" % text)
        offset_ms = (oh * 60 + om) * MINUTE * (1 if offset[0] == "+" else -1)
    local = ((days_from_civil(year, month, day) * 24 + hour) * 60 + minute) * 60 + second
    t = local * SECOND + millis - offset_ms
    # CHOICE (cxstream README): instants outside the years 0000-9999 in UTC are rejected,
    # so every accepted time is written back with a four-digit year.
    if not (MIN_EVENT_TIME <= t <= MAX_EVENT_TIME):
        raise Invalid("bad_timestamp", "bad timestamp %r: outside the years 0000-9999 in UTC" % text)
    return t


MIN_EVENT_TIME = -62_167_219_200_000
MAX_EVENT_TIME = 253_402_300_799_999


@functools.lru_cache(maxsize=1 << 16)
def format_time(ms):
    """RFC 3339 UTC with Z; '.mmm' only when the milliseconds are non-zero."""
    seconds, millis = divmod(ms, SECOND)
    days, sod = divmod(seconds, 86400)
    # civil_from_days (H. Hinnant)
    z = days + 719468
    era = z // 146097  # floor division already
    doe = z - era * 146097
    yoe = (doe - doe // 1460 + doe // 36524 - doe // 146096) // 365
    y = yoe + era * 400
    doy = doe - (365 * yoe + yoe // 4 - yoe // 100)
    mp = (5 * doy + 2) // 153
    d = doy - (153 * mp + 2) // 5 + 1
    mo = mp + (3 if mp < 10 else -9)
    y += mo <= 2
    text = "%04d-%02d-%02dT%02d:%02d:%02d" % (y, mo, d, sod // 3600, sod // 60 % 60, sod % 60)
    if millis:
        text += ".%03d" % millis
    return text + "Z"


# --- field validation (§1) ----------------------------------------------------

def _get(ev, key):
    """'null in an optional field means absent'."""
    return ev.get(key)


def _required(ev, key):
    value = ev.get(key)
    if value is None:
        raise Invalid("missing_field", "missing required field %r" % key)
    return value


def _string(value, key, lo, hi):
    if not isinstance(value, str):
        raise Invalid("wrong_type", "field %r must be a string" % key)
    # CHOICE: lengths are counted in Unicode code points ("chars").
    if not lo <= len(value) <= hi:
        raise Invalid("bad_length", "field %r must be %d-%d chars" % (key, lo, hi))
    return value


def _enum(value, key, allowed):
    if not isinstance(value, str):
        raise Invalid("wrong_type", "field %r must be a string" % key)
    if value not in allowed:
        raise Invalid("invalid_enum", "field %r has unknown value %r" % (key, value))
    return value


def _integer(value, key, lo, hi):
    # "scores are JSON integers (4.0 is invalid)"; booleans are not integers.
    if isinstance(value, bool) or not isinstance(value, int):
        raise Invalid("wrong_type", "field %r must be a JSON integer" % key)
    if not lo <= value <= hi:
        raise Invalid("out_of_range", "field %r out of range %d-%d" % (key, lo, hi))
    return value


def _number(value, key, hi):
    """§1: a number >= 0 and at most `hi` ("numbers are finite; handle_seconds is
    at most 604,800 and amount at most 10^12").  A literal too large for a
    double (1e400) parses as infinity here and is out of range like any other."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise Invalid("wrong_type", "field %r must be a number" % key)
    if value < 0:
        raise Invalid("out_of_range", "field %r must be >= 0" % key)
    if not value <= hi:
        raise Invalid("out_of_range", "field %r must be at most %d" % (key, hi))
    return value


def _ident(ev, key, required):
    value = _required(ev, key) if required else _get(ev, key)
    return None if value is None else _string(value, key, 1, 128)


def decode(text, now, max_future):
    """§1: decode and validate one event; returns a normalised dict with the
    event time in ms under 't'.  Raises Invalid.  `now` is the reference clock
    (ms) and `max_future` the allowed lead (ms)."""
    ev = parse_json(text)
    if not isinstance(ev, dict):
        raise Invalid("invalid_json", "event is not a JSON object")
    out = {}
    out["id"] = _string(_required(ev, "id"), "id", 1, 128)
    typ = _required(ev, "type")
    if not isinstance(typ, str):
        raise Invalid("wrong_type", "field 'type' must be a string")
    if typ not in TYPES:
        raise Invalid("unknown_type", "unknown type %r" % (typ,))
    out["type"] = typ
    time_text = _required(ev, "time")
    if not isinstance(time_text, str):
        raise Invalid("wrong_type", "field 'time' must be a string")
    t = parse_time(time_text)
    # §1 time from the future: more than max_future ahead of the reference clock.
    # CHOICE: checked with the other timestamp checks, so an event with a future
    # time and another fault is reported as bad_timestamp.
    if t - now > max_future:
        raise Invalid("bad_timestamp", "time %s is more than %g s in the future (reference clock %s)"
                      % (time_text, max_future / SECOND, format_time(now)))
    out["t"] = t
    out["customer"] = _string(_required(ev, "customer"), "customer", 1, 128)

    if typ == "ticket.created":
        out["ticket"] = _ident(ev, "ticket", True)
        out["channel"] = _enum(_required(ev, "channel"), "channel", CHANNELS)
        out["priority"] = _enum(_required(ev, "priority"), "priority", PRIORITIES)
        team = _get(ev, "team")
        out["team"] = "unassigned" if team is None else _string(team, "team", 1, 64)
        category = _get(ev, "category")
        out["category"] = "other" if category is None else _enum(category, "category", CATEGORIES)
    elif typ == "ticket.message":
        out["ticket"] = _ident(ev, "ticket", True)
        out["author"] = _enum(_required(ev, "author"), "author", AUTHORS)
        out["agent"] = _ident(ev, "agent", False)
        public = _get(ev, "public")
        if public is not None and not isinstance(public, bool):
            raise Invalid("wrong_type", "field 'public' must be a boolean")
        out["public"] = True if public is None else public
    elif typ == "ticket.solved":
        out["ticket"] = _ident(ev, "ticket", True)
        out["agent"] = _ident(ev, "agent", False)
    elif typ == "ticket.reopened":
        out["ticket"] = _ident(ev, "ticket", True)
    elif typ == "ticket.escalated":
        out["ticket"] = _ident(ev, "ticket", True)
        team = _get(ev, "team")
        out["team"] = None if team is None else _string(team, "team", 1, 64)
    elif typ == "contact.handled":
        out["agent"] = _ident(ev, "agent", True)
        out["channel"] = _enum(_required(ev, "channel"), "channel", CHANNELS)
        out["handle_seconds"] = _number(_required(ev, "handle_seconds"), "handle_seconds",
                                        MAX_HANDLE_SECONDS)
        out["ticket"] = _ident(ev, "ticket", False)
    elif typ == "customer.contacted":
        out["agent"] = _ident(ev, "agent", True)
        out["channel"] = _enum(_required(ev, "channel"), "channel", CHANNELS)
    elif typ == "survey.csat":
        out["score"] = _integer(_required(ev, "score"), "score", 1, 5)
        out["ticket"] = _ident(ev, "ticket", False)
    elif typ == "survey.nps":
        out["score"] = _integer(_required(ev, "score"), "score", 0, 10)
    elif typ == "survey.ces":
        out["score"] = _integer(_required(ev, "score"), "score", 1, 7)
        out["ticket"] = _ident(ev, "ticket", False)
    elif typ == "order.placed":
        out["order"] = _ident(ev, "order", True)
        out["amount"] = _number(_required(ev, "amount"), "amount", MAX_AMOUNT)
    elif typ == "order.returned":
        out["order"] = _ident(ev, "order", True)
        reason = _get(ev, "reason")
        if reason is not None:
            _string(reason, "reason", 0, 256)
    elif typ == "warranty.claimed":
        out["order"] = _ident(ev, "order", False)
        product = _get(ev, "product")
        if product is not None:
            _string(product, "product", 0, 256)
    elif typ == "customer.churned":
        reason = _get(ev, "reason")
        if reason is not None:
            _string(reason, "reason", 0, 256)
    return out


# ---------------------------------------------------------------------------
# §3/§4 window aggregates
# ---------------------------------------------------------------------------

def nearest_rank(sorted_values, p):
    """§4: p-th percentile = the value of rank ceil(p*n/100) (integer maths)."""
    n = len(sorted_values)
    rank = (p * n + 99) // 100
    return sorted_values[max(rank, 1) - 1]


def summary_ms(values_ms):
    """Duration summary over integer-millisecond values, reported in seconds."""
    if not values_ms:
        return {"count": 0}
    s = sorted(values_ms)
    n = len(s)
    return {"count": n, "min": s[0] / 1000, "max": s[-1] / 1000,
            "mean": sum(s) / n / 1000,
            "p50": nearest_rank(s, 50) / 1000, "p90": nearest_rank(s, 90) / 1000,
            "p99": nearest_rank(s, 99) / 1000}


def summary_handle(seconds):
    """handle_seconds: min/max/mean over the values as given; percentiles over
    the values rounded to the nearest millisecond (CHOICE from the brief)."""
    if not seconds:
        return {"count": 0}
    n = len(seconds)
    ms = sorted(int(math.floor(v * 1000 + 0.5)) for v in seconds)
    return {"count": n, "min": float(min(seconds)), "max": float(max(seconds)),
            "mean": math.fsum(seconds) / n,
            "p50": nearest_rank(ms, 50) / 1000, "p90": nearest_rank(ms, 90) / 1000,
            "p99": nearest_rank(ms, 99) / 1000}


def ratio(num, den):
    return None if den == 0 else num / den


class Aggregate:
    """One window x group: exact counts and the raw duration values."""

    def __init__(self):
        self.partitions = set()             # §4 input partitions that contributed
        self.created = self.solved = self.first_solved = self.fcr = 0
        self.reopened = self.escalated = 0
        self.first_response_ms = []
        self.resolution_ms = []
        self.handle_s = []
        self.csat_responses = self.csat_satisfied = self.csat_sum = 0
        self.nps_responses = self.nps_promoters = self.nps_passives = self.nps_detractors = 0
        self.ces_responses = self.ces_sum = 0
        self.sla_fr_achieved = self.sla_fr_breached = 0
        self.sla_res_achieved = self.sla_res_breached = 0
        self.orders_placed = 0
        self.revenue = []
        self.returned = self.warranty_claims = 0
        self.churned = 0
        # §5 blocks ({} group only)
        self.signalled = self.confirmed = self.expired_without_churn = 0
        self.cs_churned = self.churned_after_signal = 0
        self.rec_opened = self.rec_answered = self.rec_overdue = 0
        self.answer_ms = []
        self.repurchase = {band: {"converted": 0, "expired": 0}
                           for band in ("satisfied", "neutral", "dissatisfied", "unrated")}

    def record(self, size, start, group_names, group_values, is_empty_group, partial):
        rec = {
            "type": "kpi.window",
            "window": {"start": format_time(start), "end": format_time(start + size),
                       "size_seconds": size // SECOND},
            "group": dict(zip(group_names, group_values)),
            "tickets": {"created": self.created, "solved": self.solved,
                        "first_solved": self.first_solved, "fcr": self.fcr,
                        "reopened": self.reopened, "escalated": self.escalated},
            "first_response_seconds": summary_ms(self.first_response_ms),
            "resolution_seconds": summary_ms(self.resolution_ms),
            "handle_seconds": summary_handle(self.handle_s),
            "csat": {"responses": self.csat_responses, "satisfied": self.csat_satisfied,
                     "ratio": ratio(self.csat_satisfied, self.csat_responses),
                     "mean": ratio(self.csat_sum, self.csat_responses)},
            "nps": {"responses": self.nps_responses, "promoters": self.nps_promoters,
                    "passives": self.nps_passives, "detractors": self.nps_detractors,
                    "score": (None if self.nps_responses == 0 else
                              100 * (self.nps_promoters - self.nps_detractors) / self.nps_responses)},
            "ces": {"responses": self.ces_responses, "mean": ratio(self.ces_sum, self.ces_responses)},
            "sla": {"first_response": {"achieved": self.sla_fr_achieved,
                                       "breached": self.sla_fr_breached},
                    "resolution": {"achieved": self.sla_res_achieved,
                                   "breached": self.sla_res_breached}},
            "orders": {"placed": self.orders_placed, "revenue": math.fsum(self.revenue),
                       "returned": self.returned, "warranty_claims": self.warranty_claims},
            "customers": {"churned": self.churned},
        }
        if is_empty_group:
            # §5: these blocks are added in the {} group only.
            rec["churn_signals"] = {"signalled": self.signalled, "confirmed": self.confirmed,
                                    "expired_without_churn": self.expired_without_churn,
                                    "churned": self.cs_churned,
                                    "churned_after_signal": self.churned_after_signal}
            rec["recovery"] = {"opened": self.rec_opened, "answered": self.rec_answered,
                               "overdue": self.rec_overdue,
                               "answer_seconds": summary_ms(self.answer_ms)}
            rec["repurchase"] = {band: dict(v) for band, v in self.repurchase.items()}
        rec["partitions"] = sorted(self.partitions)
        rec["partial"] = partial
        return rec


# ---------------------------------------------------------------------------
# State
# ---------------------------------------------------------------------------

class Ticket:
    serial_counter = 0

    def __init__(self, ev):
        Ticket.serial_counter += 1
        self.serial = Ticket.serial_counter      # identifies this ticket instance
        self.id = ev["ticket"]
        self.customer = ev["customer"]           # §2: a ticket belongs to its creator
        self.team = ev["team"]
        self.created_team = ev["team"]
        self.escalations = []                    # (time, team) of escalations naming a
                                                 # team, in arrival order (§3 breach dims)
        self.channel = ev["channel"]
        self.priority = ev["priority"]
        self.category = ev["category"]
        self.created = ev["t"]
        self.last = ev["t"]                      # time of the ticket's last event
        self.solved = False                      # current status (solved / open)
        self.first_solved = False
        self.public_agent_messages = 0
        fr_target, res_target = SLA_TARGETS[self.priority]
        # §3 SLA clocks: sla name -> [running, due, late_for_section5]
        self.clocks = {"first_response": [True, self.created + fr_target, False],
                       "resolution": [True, self.created + res_target, False]}

    def dims(self):
        """The dimension values the ticket has now (after every event that has
        arrived, in arrival order)."""
        return {"team": self.team, "channel": self.channel,
                "priority": self.priority, "category": self.category}

    def dims_at(self, due):
        """§3: the dimensions "as they were at the due": after the ticket's events
        with time <= due (in arrival order) and before any with a later time.  Only
        an escalation naming a team changes a dimension; channel, priority and
        category are fixed at creation (which is always <= due)."""
        team = self.created_team
        for t, new_team in self.escalations:
            if t <= due:
                team = new_team
        return {"team": team, "channel": self.channel,
                "priority": self.priority, "category": self.category}

    def clock_running(self):
        return any(c[0] for c in self.clocks.values())


class Customer:
    def __init__(self, cid):
        self.id = cid
        self.last = None            # time of the customer's last event (for retention)
        # §5 churn risk
        self.score = 0.0
        self.tau = None
        self.reason_sums = {}
        self.risk_times = []        # times of this customer's churn.risk records
        self.pending_risks = []     # churn.risk times without an outcome yet
        # §5 repeat contact: times of (applied) ticket creations
        self.created_times = []
        # §5 service recovery: the open case or None
        self.case = None
        # §5 repurchase: pending cohort entries, latest csat per ticket instance
        self.cohort = []
        self.csat_by_ticket = {}

    def pending(self):
        return bool(self.case is not None or self.cohort or self.pending_risks)


# ---------------------------------------------------------------------------
# The engine: routing, window merge and output (shared by all partitions)
# ---------------------------------------------------------------------------

class Engine:
    def __init__(self, out, source_file, sizes, lateness, groups, partitions=1,
                 partitioner="crc32", now=None, max_future=MAX_FUTURE,
                 max_event_bytes=MAX_EVENT_BYTES):
        self.out = out
        self.source_file = source_file      # as given on the command line (§7 ids)
        self.sizes = sizes                  # window sizes in ms
        self.lateness = lateness            # ms
        self.groups = groups                # list of tuples of dimension names
        # §1 the reference clock of replay: --now, default the wall clock at start
        self.now = int(_time.time() * 1000) if now is None else now
        self.max_future = max_future        # ms
        self.max_event_bytes = max_event_bytes
        self.partition_of = PARTITIONERS[partitioner]
        self.route_cache = {}               # customer id -> partition number
        self.max_time = None                # M: largest applied event time, whole input
        self.windows = {}                   # (size, start, group index, values) -> Aggregate
        self.window_heap = []               # (end, size, group index, values, start)
        self.buffer = []                    # output records not yet written
        self.counters = {"invalid": 0, "duplicate": 0, "orphan": 0, "late": 0,
                         "late_contributions": 0, "evicted_tickets": 0,
                         "evicted_customers": 0}
        self.partitions = [Partition(self, n) for n in range(partitions)]

    # --- output -----------------------------------------------------------------

    def emit(self, record):
        self.buffer.append(ENCODER.encode(record))
        if len(self.buffer) >= 10000:
            self.flush()

    def flush(self):
        if self.buffer:
            self.out.write("\n".join(self.buffer))
            self.out.write("\n")
            self.buffer = []

    def deadletter(self, reason, error, payload, line, size=None):
        """§4 dead-letter record; §7 id deadletter|<file>|<line>, <file> as given on
        the command line (the same text as source.file)."""
        rec = {"type": "deadletter", "id": "deadletter|%s|%d" % (self.source_file, line),
               "reason": reason, "error": error, "payload": payload}
        if size is not None:
            rec["size"] = size              # §1 size: the full size of an oversized event
        rec["source"] = {"file": self.source_file, "line": line}
        self.emit(rec)

    # --- §2 routing ----------------------------------------------------------------

    def route(self, customer):
        """replay --partitions N: the partition a producer keyed by the customer id
        (its UTF-8 bytes) would write to."""
        p = self.route_cache.get(customer)
        if p is None:
            n = len(self.partitions)
            p = 0 if n == 1 else self.partition_of(customer.encode("utf-8"), n)
            self.route_cache[customer] = p
        return p

    # --- windows (§2): parts per partition, merged once complete ----------------------

    def measure(self, part, t, dims, apply):
        """Add one measurement of partition `part` at event time t to every window of
        every configured group whose dimensions the measurement has (§3).  A
        contribution to a window part that the partition has already closed is
        dropped and counted as late (§2).  The parts of all partitions are merged
        into one aggregate as they arrive (merging is a sum and a union), which
        records the partitions that contributed."""
        members = [(gi, tuple(dims[name] for name in names))
                   for gi, names in enumerate(self.groups)
                   if all(name in dims for name in names)]
        closed = part.closed_upto
        for size in self.sizes:
            start = (t // size) * size          # tumbling, aligned to the epoch
            end = start + size
            if closed is not None and end <= closed:
                self.counters["late_contributions"] += 1
                continue
            for gi, values in members:
                key = (size, start, gi, values)
                agg = self.windows.get(key)
                if agg is None:
                    agg = self.windows[key] = Aggregate()
                    heapq.heappush(self.window_heap, (end, size, gi, values, start))
                agg.partitions.add(part.number)
                apply(agg)

    def overall_watermark(self):
        """§2: the minimum over all partitions of the watermark at which each last
        closed its parts; None (-inf) while some partition has had no data."""
        lowest = None
        for p in self.partitions:
            if p.closed_upto is None:
                return None
            if lowest is None or p.closed_upto < lowest:
                lowest = p.closed_upto
        return lowest

    def emit_windows(self, upto=None, partial=False):
        """§2: a window is complete when every partition has closed its part (the
        overall watermark reached its end); its merged record is emitted once.
        Records of one step are sorted by (end, size, group index, group values).
        With partial=True every remaining window with data is emitted."""
        closing = []
        while self.window_heap and (partial or self.window_heap[0][0] <= upto):
            closing.append(heapq.heappop(self.window_heap))
        closing.sort()
        for end, size, gi, values, start in closing:
            agg = self.windows.pop((size, start, gi, values))
            names = self.groups[gi]
            self.emit(agg.record(size, start, names, values, len(names) == 0, partial))

    def emit_complete_windows(self):
        overall = self.overall_watermark()
        if overall is not None and self.window_heap and self.window_heap[0][0] <= overall:
            self.emit_windows(overall)

    # --- input ---------------------------------------------------------------------------

    def process_line(self, line_no, raw):
        """One input line (bytes, without its line end)."""
        # §1 size: a line larger than max_event_bytes is invalid (bad_length); its dead
        # letter carries the longest prefix whose JSON-escaped form fits in 64 KiB and
        # the full size.
        if len(raw) > self.max_event_bytes:
            self.counters["invalid"] += 1
            text = raw.decode("utf-8", "replace")
            self.deadletter("bad_length", "event of %d bytes is larger than max_event_bytes (%d)"
                            % (len(raw), self.max_event_bytes),
                            escaped_prefix(text), line_no, size=len(raw))
            return
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as e:
            self.counters["invalid"] += 1
            self.deadletter("invalid_json", "not UTF-8: %s" % e,
                            raw.decode("utf-8", "replace"), line_no)
            return
        try:
            ev = decode(text, self.now, self.max_future)
        except Invalid as e:
            self.counters["invalid"] += 1
            self.deadletter(e.reason, str(e), text, line_no)
            return
        # §2 each valid line goes to the partition of its customer.  CHOICE: an
        # invalid line is dead-lettered before routing (it changes no state of any
        # partition, so which partition it would reach is not observable here).
        part = self.partitions[self.route(ev["customer"])]
        if part.process(line_no, text, ev):
            self.emit_complete_windows()

    def finish(self):
        """§2 end of a finite input: every partition's watermark moves to M, the
        largest event time of an applied event in the whole input; each partition's
        timers strictly before M fire and its §5 inputs at M are applied (timers at
        M stay pending); windows whose end <= M are complete; every remaining window
        with data is emitted with "partial": true."""
        if self.max_time is None:
            return
        m = self.max_time
        for part in self.partitions:
            part.finish(m)
        self.emit_windows(m)
        self.emit_windows(partial=True)


# ---------------------------------------------------------------------------
# One input partition (§2): its own watermark, timers, holds, dedup, retention
# ---------------------------------------------------------------------------

class Partition:
    def __init__(self, engine, number):
        self.engine = engine
        self.number = number
        self.counters = engine.counters
        self.lateness = engine.lateness
        self.wm = None                      # watermark; None = no event yet (-inf)
        self.max_time = None                # largest event time applied here
        self.closed_upto = None             # watermark of the last window-part close step
        self.seen = {}                      # dedup memory: id -> t_seen
        self.seen_limit = 100000
        self.tickets = {}                   # (customer id, ticket id) -> Ticket
        self.customers = {}                 # customer id -> Customer
        self.customer_expiry = []           # heap (last + retention, customer id)
        self.customer_blocked = set()       # past retention but with a pending outcome
        self.queue = []                     # §5 queue: (time, 0=input/1=timer, seq, fn)
        self.seq = 0

    def emit(self, record):
        self.engine.emit(record)

    def measure(self, t, dims, apply):
        self.engine.measure(self, t, dims, apply)

    # --- §5 queue: held inputs and timers --------------------------------------------

    def _push(self, time, kind, fn):
        self.seq += 1
        heapq.heappush(self.queue, (time, kind, self.seq, fn))

    def hold_input(self, time, fn):
        """§5: an input is held until the watermark is strictly past its time."""
        self._push(time, 0, fn)

    def set_timer(self, due, fn):
        self._push(due, 1, fn)

    def run_queue(self, ready):
        """Apply held inputs and fire timers in time order; at equal times inputs
        (arrival order) before timers (order set)."""
        while self.queue and ready(self.queue[0]):
            _, _, _, fn = heapq.heappop(self.queue)
            fn()

    # --- state lookups ------------------------------------------------------------------

    def lookup_ticket(self, customer, ticket_id):
        """§2: a ticket is identified by (customer, ticket id); a ticket of another
        customer is an unknown ticket.  Returns the ticket, or None if it never
        existed or has been evicted.
        §1 retention: 30 d after the last event once solved, 90 d while open;
        never while an SLA clock is running.  Evicting lazily here is equivalent
        to evicting at every watermark step: nothing about an untouched ticket
        changes between that step and this lookup."""
        key = (customer, ticket_id)
        tk = self.tickets.get(key)
        if tk is None:
            return None
        if self.wm is not None and not tk.clock_running():
            keep = TICKET_RETENTION_SOLVED if tk.solved else TICKET_RETENTION_OPEN
            if tk.last + keep < self.wm:
                del self.tickets[key]
                self.counters["evicted_tickets"] += 1
                return None
        return tk

    def customer(self, cid):
        c = self.customers.get(cid)
        if c is None:
            c = self.customers[cid] = Customer(cid)
        return c

    def touch_customer(self, cid, t):
        c = self.customer(cid)
        if c.last is None or t > c.last:
            c.last = t
            heapq.heappush(self.customer_expiry, (t + CUSTOMER_RETENTION, cid))

    def evict_customers(self):
        """Customer state is evicted 90 d after its last event unless an outcome
        is pending (§1, §5); eviction happens after the timers of the step."""
        while self.customer_expiry and self.customer_expiry[0][0] < self.wm:
            expiry, cid = heapq.heappop(self.customer_expiry)
            c = self.customers.get(cid)
            if c is None or c.last + CUSTOMER_RETENTION != expiry:
                continue                    # stale heap entry
            self.customer_blocked.add(cid)
        for cid in list(self.customer_blocked):
            c = self.customers.get(cid)
            if c is None or c.last + CUSTOMER_RETENTION >= self.wm:
                self.customer_blocked.discard(cid)
            elif not c.pending():
                del self.customers[cid]
                self.customer_blocked.discard(cid)
                self.counters["evicted_customers"] += 1

    # --- main loop ---------------------------------------------------------------------

    def process(self, line_no, payload, ev):
        """One valid event of this partition.  Returns True when it was applied
        (and the partition's watermark step ran)."""
        t = ev["t"]
        typ = ev["type"]
        cid = ev["customer"]

        # §1 duplicates: remembered id within the horizon of event time, within
        # this input partition.
        t_seen = self.seen.get(ev["id"])
        if t_seen is not None and (self.wm is None or self.wm <= t_seen + DEDUP_HORIZON):
            self.counters["duplicate"] += 1
            return False

        # §1 orphans and re-created tickets; §2 tickets are (customer, ticket id).
        ticket = None
        if typ in TICKET_EVENTS:
            ticket = self.lookup_ticket(cid, ev["ticket"])
            if ticket is None:
                self.counters["orphan"] += 1
                self.engine.deadletter(
                    "unknown ticket", "ticket %r of customer %r was never created (or was evicted)"
                    % (ev["ticket"], cid), payload, line_no)
                return False
        elif typ == "ticket.created":
            if self.lookup_ticket(cid, ev["ticket"]) is not None:
                self.engine.deadletter(
                    "ticket exists", "ticket %r of customer %r already exists"
                    % (ev["ticket"], cid), payload, line_no)
                return False

        self.seen[ev["id"]] = t

        # §2 late: event time before the partition's watermark.
        late = self.wm is not None and t < self.wm
        if late:
            self.counters["late"] += 1

        # §2 order of work, per partition: 1. apply to state
        self.apply(ev, ticket, late)

        # 2. the partition's watermark advances
        if self.max_time is None or t > self.max_time:
            self.max_time = t
        if self.engine.max_time is None or t > self.engine.max_time:
            self.engine.max_time = t
        new_wm = self.max_time - self.lateness
        if self.wm is None or new_wm > self.wm:
            self.wm = new_wm
        # 3. its timers (and §5 held inputs) strictly before the watermark, in order
        wm = self.wm
        self.run_queue(lambda item: item[0] < wm)
        # eviction after the timers of the same step (§5)
        self.evict_customers()
        # 4. its window parts whose end the watermark reached close
        self.closed_upto = wm

        if len(self.seen) > self.seen_limit:
            # forget ids that can never be duplicates again (t_seen + horizon < WM)
            self.seen = {k: v for k, v in self.seen.items() if v + DEDUP_HORIZON >= wm}
            self.seen_limit = max(100000, 2 * len(self.seen))
        return True

    def finish(self, m):
        """§2 end of input for this partition: its watermark moves to M (never back:
        M is at least its own largest event time)."""
        self.wm = m
        self.run_queue(lambda item: item[0] < m or (item[0] == m and item[1] == 0))
        self.evict_customers()
        self.closed_upto = m

    # --- §3 / §5: applying one accepted event -------------------------------------------

    def apply(self, ev, ticket, late):
        t = ev["t"]
        typ = ev["type"]
        cid = ev["customer"]
        # §2: a ticket is (customer, ticket id), so a ticket event's ticket always
        # belongs to the event's own customer: §5 inputs and customer retention
        # (§1 "customer state 90 days after the last event") both concern `cid`.
        self.touch_customer(cid, t)

        def section5(fn):
            # §5: an input late on arrival is counted as late and not applied.
            if not late:
                self.hold_input(t, fn)

        if typ == "ticket.created":
            tk = Ticket(ev)
            self.tickets[(cid, tk.id)] = tk
            for sla, clock in tk.clocks.items():
                # A clock whose due is already behind the watermark (late creation)
                # still fires at once, but its breach is a late §5 input.
                clock[2] = self.wm is not None and clock[1] < self.wm
                self.set_timer(clock[1], lambda tk=tk, sla=sla: self.sla_timer(tk, sla))

            def created(agg):
                agg.created += 1
            self.measure(t, tk.dims(), created)
            section5(lambda: self.s5_ticket_created(cid, t))

        elif typ == "ticket.message":
            ticket.last = max(ticket.last, t)
            # §3: only public agent messages count; system authors and internal
            # notes never do.
            if ev["author"] == "agent" and ev["public"]:
                ticket.public_agent_messages += 1
                if ticket.public_agent_messages == 1:
                    frt = max(0, t - ticket.created)

                    def first_response(agg):
                        agg.first_response_ms.append(frt)
                    self.measure(t, ticket.dims(), first_response)
                    self.stop_clock(ticket, "first_response", t)
                section5(lambda: self.s5_answer(cid, t))

        elif typ == "ticket.solved":
            ticket.last = max(ticket.last, t)
            first = not ticket.first_solved
            fcr = first and ticket.public_agent_messages <= 1
            resolution = max(0, t - ticket.created)

            def solved(agg):
                agg.solved += 1
                agg.resolution_ms.append(resolution)
                if first:
                    agg.first_solved += 1
                if fcr:
                    agg.fcr += 1
            self.measure(t, ticket.dims(), solved)
            ticket.solved = True
            if first:
                ticket.first_solved = True
                self.stop_clock(ticket, "first_response", t)
                self.stop_clock(ticket, "resolution", t)
                serial = ticket.serial
                section5(lambda: self.s5_first_solve(cid, serial, t))

        elif typ == "ticket.reopened":
            ticket.last = max(ticket.last, t)

            def reopened(agg):
                agg.reopened += 1
            self.measure(t, ticket.dims(), reopened)
            ticket.solved = False
            section5(lambda: self.s5_signal(cid, "reopen", t))

        elif typ == "ticket.escalated":
            ticket.last = max(ticket.last, t)

            def escalated(agg):
                agg.escalated += 1
            # §3: counted under the team the ticket had before the escalation
            self.measure(t, ticket.dims(), escalated)
            if ev["team"] is not None:
                ticket.team = ev["team"]
                # remembered for §3 "dimensions as they were at the due"
                ticket.escalations.append((t, ev["team"]))
            section5(lambda: self.s5_signal(cid, "escalation", t))

        elif typ == "contact.handled":
            # §3: its channel is its own; other dimensions from a known ticket
            # (§2: known = a ticket of this customer).
            dims = {"channel": ev["channel"]}
            if ev["ticket"] is not None:
                tk = self.lookup_ticket(cid, ev["ticket"])
                if tk is not None:
                    dims = tk.dims()
                    dims["channel"] = ev["channel"]
            seconds = ev["handle_seconds"]

            def handled(agg):
                agg.handle_s.append(float(seconds))
            self.measure(t, dims, handled)

        elif typ == "customer.contacted":
            section5(lambda: self.s5_answer(cid, t))

        elif typ in ("survey.csat", "survey.ces"):
            score = ev["score"]
            tk = self.survey_ticket(ev)
            dims = tk.dims() if tk is not None else {}
            if typ == "survey.csat":
                def csat(agg):
                    agg.csat_responses += 1
                    agg.csat_sum += score
                    if score >= 4:
                        agg.csat_satisfied += 1
                self.measure(t, dims, csat)
                serial = tk.serial if tk is not None else None
                named = ev["ticket"]
                section5(lambda: self.s5_csat(cid, t, score, serial, named))
            else:
                def ces(agg):
                    agg.ces_responses += 1
                    agg.ces_sum += score
                self.measure(t, dims, ces)
                if score <= 3:
                    section5(lambda: self.s5_signal(cid, "ces_high_effort", t))

        elif typ == "survey.nps":
            score = ev["score"]

            def nps(agg):
                agg.nps_responses += 1
                if score >= 9:
                    agg.nps_promoters += 1
                elif score >= 7:
                    agg.nps_passives += 1
                else:
                    agg.nps_detractors += 1
            self.measure(t, {}, nps)
            section5(lambda: self.s5_nps(cid, t, score))

        elif typ == "order.placed":
            amount = ev["amount"]

            def placed(agg):
                agg.orders_placed += 1
                agg.revenue.append(float(amount))
            self.measure(t, {}, placed)
            section5(lambda: self.s5_order(cid, t))

        elif typ == "order.returned":
            def returned(agg):
                agg.returned += 1
            self.measure(t, {}, returned)
            section5(lambda: self.s5_signal(cid, "return", t))

        elif typ == "warranty.claimed":
            def warranty(agg):
                agg.warranty_claims += 1
            self.measure(t, {}, warranty)
            section5(lambda: self.s5_signal(cid, "warranty_claim", t))

        elif typ == "customer.churned":
            def churned(agg):
                agg.churned += 1
            self.measure(t, {}, churned)
            section5(lambda: self.s5_churned(cid, t))

    def survey_ticket(self, ev):
        """§2/§5: a survey naming a ticket of another customer names an unknown
        ticket: tickets are looked up by (customer, ticket id)."""
        if ev["ticket"] is None:
            return None
        return self.lookup_ticket(ev["customer"], ev["ticket"])

    # --- §3 SLA ---------------------------------------------------------------------------

    def stop_clock(self, tk, sla, t):
        """§3: the clock stops at t.  Achieved if t <= due (event time: the stop);
        breached otherwise (event time: due)."""
        running, due, late5 = tk.clocks[sla]
        if not running:
            return
        tk.clocks[sla][0] = False
        if t <= due:
            def achieved(agg):
                if sla == "first_response":
                    agg.sla_fr_achieved += 1
                else:
                    agg.sla_res_achieved += 1
            self.measure(t, tk.dims(), achieved)
        else:
            # Stopped after due before the watermark passed due: breached, detected now.
            self.breach(tk, sla, due, from_timer=False, late5=late5)

    def sla_timer(self, tk, sla):
        """§3: detected when the watermark passes due with the clock still running."""
        running, due, late5 = tk.clocks[sla]
        if not running:
            return
        tk.clocks[sla][0] = False
        self.breach(tk, sla, due, from_timer=True, late5=late5)

    def breach(self, tk, sla, due, from_timer, late5):
        def breached(agg):
            if sla == "first_response":
                agg.sla_fr_breached += 1
            else:
                agg.sla_res_breached += 1
        # §3: a breach takes the ticket's dimensions as they were at the due, however
        # late it is detected (the measurement and the record alike).
        dims = tk.dims_at(due)
        self.measure(due, dims, breached)
        due_text = format_time(due)
        # §7 id: sla.breached|<customer>|<ticket>|<sla>|<due>
        self.emit({"type": "sla.breached",
                   "id": "sla.breached|%s|%s|%s|%s" % (tk.customer, tk.id, sla, due_text),
                   "time": due_text, "customer": tk.customer,
                   "ticket": tk.id, "sla": sla, "due": due_text,
                   "priority": dims["priority"], "team": dims["team"],
                   "channel": dims["channel"]})
        if late5:
            return
        cid = tk.customer
        if from_timer:
            # fired from the §5-ordered queue at its due: apply now
            self.s5_signal(cid, "sla_breach", due)
        else:
            # §5 input at its due, held until the watermark is past it
            self.hold_input(due, lambda: self.s5_signal(cid, "sla_breach", due))

    # --- §5 after-sales signals --------------------------------------------------------------

    def s5_signal(self, cid, name, t):
        """§5 churn risk: S <- max(0, S*2^(-(t-tau)/half_life) + w); tau <- t."""
        c = self.customer(cid)
        w = SIGNAL_WEIGHTS[name]
        factor = 1.0 if c.tau is None else 2.0 ** (-(t - c.tau) / HALF_LIFE)
        c.score = max(0.0, c.score * factor + w)
        for n in c.reason_sums:
            c.reason_sums[n] *= factor      # decayed at the same moments, no floor
        c.reason_sums[name] = c.reason_sums.get(name, 0.0) + w
        c.tau = t
        if w <= 0 or c.score < CHURN_THRESHOLD:
            return
        if any(t - CHURN_COOLDOWN < s <= t for s in c.risk_times):
            return
        reasons = sorted((n for n, v in c.reason_sums.items() if v > 0 and n != "positive"),
                         key=lambda n: (-c.reason_sums[n], n))
        # §7 id: churn.risk|<customer>|<time>
        self.emit({"type": "churn.risk", "id": "churn.risk|%s|%s" % (cid, format_time(t)),
                   "time": format_time(t), "customer": cid,
                   "score": c.score, "reasons": reasons})
        c.risk_times.append(t)
        c.pending_risks.append(t)

        def signalled(agg):
            agg.signalled += 1
        self.measure(t, {}, signalled)
        self.set_timer(t + EFFECTIVENESS_HORIZON, lambda: self.s5_risk_expired(cid, t))

    def s5_risk_expired(self, cid, s):
        c = self.customers.get(cid)
        if c is None or s not in c.pending_risks:
            return
        c.pending_risks.remove(s)

        def expired(agg):
            agg.expired_without_churn += 1
        self.measure(s + EFFECTIVENESS_HORIZON, {}, expired)

    def s5_churned(self, cid, t):
        c = self.customer(cid)
        after_signal = any(t - EFFECTIVENESS_HORIZON <= s <= t for s in c.risk_times)
        confirmed = [s for s in c.pending_risks if s <= t <= s + EFFECTIVENESS_HORIZON]
        for s in confirmed:
            c.pending_risks.remove(s)

        def churned(agg):
            agg.cs_churned += 1
            if after_signal:
                agg.churned_after_signal += 1
            agg.confirmed += len(confirmed)
        self.measure(t, {}, churned)

    def s5_ticket_created(self, cid, t):
        """repeat_contact: >= 2 other tickets created at times in [t - 7 d, t)."""
        c = self.customer(cid)
        c.created_times = [x for x in c.created_times if x >= t - REPEAT_CONTACT_WINDOW]
        others = sum(1 for x in c.created_times if t - REPEAT_CONTACT_WINDOW <= x < t)
        c.created_times.append(t)
        if others >= 2:
            self.s5_signal(cid, "repeat_contact", t)

    def s5_csat(self, cid, t, score, ticket_serial, named_ticket):
        c = self.customer(cid)
        if ticket_serial is not None:
            c.csat_by_ticket[ticket_serial] = score     # latest csat naming the ticket
        if score <= 2:
            self.s5_signal(cid, "csat_negative", t)
        elif score == 5:
            self.s5_signal(cid, "positive", t)
        if score <= 2:
            self.s5_open_recovery(cid, t, "csat", score, named_ticket)

    def s5_nps(self, cid, t, score):
        if score <= 6:
            self.s5_signal(cid, "nps_detractor", t)
            self.s5_open_recovery(cid, t, "nps", score, None)
        elif score >= 9:
            self.s5_signal(cid, "positive", t)

    def s5_open_recovery(self, cid, t, trigger, score, named_ticket):
        """§5 service recovery: opens a case if none is open."""
        c = self.customer(cid)
        if c.case is not None:
            return
        case = {"t": t, "due": t + RECOVERY_DUE, "trigger": trigger}
        c.case = case
        # §7 id: recovery.needed|<customer>|<time>
        rec = {"type": "recovery.needed", "id": "recovery.needed|%s|%s" % (cid, format_time(t)),
               "time": format_time(t), "customer": cid,
               "due": format_time(case["due"]), "trigger": trigger, "score": score}
        if named_ticket is not None:
            rec["ticket"] = named_ticket
        self.emit(rec)

        def opened(agg):
            agg.rec_opened += 1
        self.measure(t, {}, opened)
        self.set_timer(case["due"], lambda: self.s5_recovery_due(cid, case))

    def s5_answer(self, cid, t):
        """customer.contacted or a public agent message with time in [t, due]."""
        c = self.customers.get(cid)
        if c is None or c.case is None:
            return
        case = c.case
        if not case["t"] <= t <= case["due"]:
            return
        c.case = None
        answer_ms = t - case["t"]

        def answered(agg):
            agg.rec_answered += 1
            agg.answer_ms.append(answer_ms)
        self.measure(t, {}, answered)

    def s5_recovery_due(self, cid, case):
        c = self.customers.get(cid)
        if c is None or c.case is not case:
            return
        c.case = None
        due = case["due"]
        # §7 id: recovery.overdue|<customer>|<due>
        self.emit({"type": "recovery.overdue",
                   "id": "recovery.overdue|%s|%s" % (cid, format_time(due)),
                   "time": format_time(due), "customer": cid,
                   "due": format_time(due), "trigger": case["trigger"]})

        def overdue(agg):
            agg.rec_overdue += 1
        self.measure(due, {}, overdue)

    def s5_first_solve(self, cid, ticket_serial, t):
        """§5 repurchase: the first solve at t puts the ticket in the cohort."""
        c = self.customer(cid)
        entry = {"serial": ticket_serial, "t": t}
        c.cohort.append(entry)
        self.set_timer(t + REPURCHASE_HORIZON, lambda: self.s5_cohort_expired(cid, entry))

    def band(self, c, ticket_serial):
        score = c.csat_by_ticket.get(ticket_serial)
        if score is None:
            return "unrated"
        if score >= 4:
            return "satisfied"
        if score == 3:
            return "neutral"
        return "dissatisfied"

    def s5_order(self, cid, t):
        c = self.customer(cid)
        converted = [e for e in c.cohort if e["t"] < t <= e["t"] + REPURCHASE_HORIZON]
        for e in converted:
            c.cohort.remove(e)
            band = self.band(c, e["serial"])

            def conv(agg, band=band):
                agg.repurchase[band]["converted"] += 1
            self.measure(t, {}, conv)

    def s5_cohort_expired(self, cid, entry):
        c = self.customers.get(cid)
        if c is None or entry not in c.cohort:
            return
        c.cohort.remove(entry)
        band = self.band(c, entry["serial"])
        at = entry["t"] + REPURCHASE_HORIZON

        def expired(agg):
            agg.repurchase[band]["expired"] += 1
        self.measure(at, {}, expired)



# ---------------------------------------------------------------------------
# CLI
# ---------------------------------------------------------------------------

def parse_size(text):
    m = re.fullmatch(r"\s*([0-9]+)\s*(ms|s|m|h|d)\s*", text)
    if not m:
        raise argparse.ArgumentTypeError("bad window size %r" % text)
    unit = {"ms": 1, "s": SECOND, "m": MINUTE, "h": HOUR, "d": DAY}[m.group(2)]
    size = int(m.group(1)) * unit
    if size <= 0:
        raise argparse.ArgumentTypeError("window size must be positive")
    return size


def parse_group(text):
    names = tuple(n.strip() for n in text.replace("+", ",").split(",") if n.strip())
    for n in names:
        if n not in DIMENSIONS:
            raise argparse.ArgumentTypeError("unknown dimension %r" % n)
    return names


def parse_now(text):
    try:
        return parse_time(text)
    except Invalid as e:
        raise argparse.ArgumentTypeError(str(e))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("input")
    ap.add_argument("--windows", default="1m,1h",
                    help="comma-separated window sizes, e.g. 1m,1h")
    ap.add_argument("--lateness-seconds", type=float, default=30)
    ap.add_argument("--group-by", nargs="*", default=None,
                    help='group-by sets; "" is the {} group, "team,channel" a pair')
    ap.add_argument("--partitions", type=int, default=1,
                    help="split the input over N partitions by the customer id (SPEC §2)")
    ap.add_argument("--partitioner", choices=sorted(PARTITIONERS), default="crc32",
                    help="crc32: librdkafka's default, crc32(key) %% N; "
                         "murmur2: the Java client's, (murmur2(key) & 0x7fffffff) %% N")
    ap.add_argument("--now", type=parse_now, default=None,
                    help="the reference clock (RFC 3339) for max_future; "
                         "default: the wall clock at start")
    ap.add_argument("--max-future-seconds", type=float, default=MAX_FUTURE / SECOND)
    ap.add_argument("--max-event-bytes", type=int, default=MAX_EVENT_BYTES)
    args = ap.parse_args(argv)
    if args.partitions < 1:
        ap.error("--partitions must be at least 1")

    sizes = sorted({parse_size(s) for s in args.windows.split(",") if s.strip()})
    groups_text = ["", "team", "channel", "priority"] if args.group_by is None else args.group_by
    groups = []
    for g in groups_text:
        names = parse_group(g)
        if names not in groups:
            groups.append(names)
    lateness = int(round(args.lateness_seconds * 1000))
    max_future = int(round(args.max_future_seconds * 1000))

    out = sys.stdout
    engine = Engine(out, args.input, sizes, lateness, groups, partitions=args.partitions,
                    partitioner=args.partitioner, now=args.now, max_future=max_future,
                    max_event_bytes=args.max_event_bytes)
    with open(args.input, "rb") as f:
        data = f.read()
    lines = data.split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()                          # the final newline ends the last line
    for number, raw in enumerate(lines, start=1):
        if raw.endswith(b"\r"):
            raw = raw[:-1]                   # CHOICE: CRLF line ends accepted
        engine.process_line(number, raw)
    engine.finish()
    engine.flush()
    out.flush()
    print(json.dumps(engine.counters), file=sys.stderr)


if __name__ == "__main__":
    main()
