#!/usr/bin/env python3
"""Writes cases/*.expected.jsonl from values worked out BY HAND from SPEC.md.

This script reads no input and runs no part of cxref.py: every number below was
derived on paper from the case's .jsonl file (the derivation is in the
comments).  The helpers only fill in the zero-valued blocks of a kpi.window
record so that the hand-written part stays readable.

    python3 tests/reference/cases/build_expected.py   # rewrites the .expected files
"""

import copy
import json
import os

HERE = os.path.dirname(os.path.abspath(__file__))


def S1(v):
    """Duration summary of a single value v (seconds)."""
    return {"count": 1, "min": v, "max": v, "mean": v, "p50": v, "p90": v, "p99": v}


def S(count, mn, mx, mean, p50, p90, p99):
    return {"count": count, "min": mn, "max": mx, "mean": mean, "p50": p50, "p90": p90, "p99": p99}


def zero_record(group):
    rec = {
        "type": "kpi.window",
        "window": None,
        "group": group,
        "tickets": {"created": 0, "solved": 0, "first_solved": 0, "fcr": 0, "reopened": 0, "escalated": 0},
        "first_response_seconds": {"count": 0},
        "resolution_seconds": {"count": 0},
        "handle_seconds": {"count": 0},
        "csat": {"responses": 0, "satisfied": 0, "ratio": None, "mean": None},
        "nps": {"responses": 0, "promoters": 0, "passives": 0, "detractors": 0, "score": None},
        "ces": {"responses": 0, "mean": None},
        "sla": {"first_response": {"achieved": 0, "breached": 0}, "resolution": {"achieved": 0, "breached": 0}},
        "orders": {"placed": 0, "revenue": 0.0, "returned": 0, "warranty_claims": 0},
        "customers": {"churned": 0},
    }
    if group == {}:
        rec["churn_signals"] = {"signalled": 0, "confirmed": 0, "expired_without_churn": 0,
                                "churned": 0, "churned_after_signal": 0}
        rec["recovery"] = {"opened": 0, "answered": 0, "overdue": 0, "answer_seconds": {"count": 0}}
        rec["repurchase"] = {b: {"converted": 0, "expired": 0}
                             for b in ("satisfied", "neutral", "dissatisfied", "unrated")}
    rec["partitions"] = [0]
    rec["partial"] = False
    return rec


def merge(base, over):
    for k, v in over.items():
        if isinstance(v, dict) and isinstance(base.get(k), dict) and k not in (
                "first_response_seconds", "resolution_seconds", "handle_seconds", "answer_seconds"):
            merge(base[k], v)
        else:
            base[k] = copy.deepcopy(v)


def kpi(start, end, size, group=None, partial=False, partitions=(0,), **over):
    """partitions: the input partitions that contributed (SPEC §4), [0] in a
    replay of one partition."""
    rec = zero_record({} if group is None else group)
    rec["window"] = {"start": start, "end": end, "size_seconds": size}
    rec["partitions"] = list(partitions)
    rec["partial"] = partial
    merge(rec, over)
    return rec


def sla(fr=(0, 0), res=(0, 0)):
    return {"first_response": {"achieved": fr[0], "breached": fr[1]},
            "resolution": {"achieved": res[0], "breached": res[1]}}


# The alert, signal and dead-letter records carry the SPEC §7 "id"; these helpers
# only spell it out from the fields given by hand (times as in the record).

def breach(time, customer, ticket, which, priority, team, channel):
    """sla.breached: `time` = the due; team / channel / priority as at the due."""
    return {"type": "sla.breached",
            "id": "sla.breached|%s|%s|%s|%s" % (customer, ticket, which, time),
            "time": time, "customer": customer, "ticket": ticket,
            "sla": which, "due": time, "priority": priority, "team": team, "channel": channel}


def risk(time, customer, score, reasons):
    return {"type": "churn.risk", "id": "churn.risk|%s|%s" % (customer, time),
            "time": time, "customer": customer, "score": score, "reasons": reasons}


def needed(time, customer, due, trigger, score, ticket=None):
    rec = {"type": "recovery.needed", "id": "recovery.needed|%s|%s" % (customer, time),
           "time": time, "customer": customer, "due": due, "trigger": trigger, "score": score}
    if ticket is not None:
        rec["ticket"] = ticket
    return rec


def overdue(due, customer, trigger):
    return {"type": "recovery.overdue", "id": "recovery.overdue|%s|%s" % (customer, due),
            "time": due, "customer": customer, "due": due, "trigger": trigger}


def deadletter(reason, payload_line, line, case, size=None):
    """compare.py compares the base name of the file (in source.file and in the
    id), and ignores the free-worded "error", which is therefore left out here."""
    path = "tests/reference/cases/%s.jsonl" % case
    rec = {"type": "deadletter", "id": "deadletter|%s|%d" % (path, line),
           "reason": reason, "payload": payload_line}
    if size is not None:
        rec["size"] = size
    rec["source"] = {"file": path, "line": line}
    return rec


CASES = {}

# ---------------------------------------------------------------------------
# first_response_fcr  (--windows 1h --group-by "")
#
# T1 normal (c1): system msg, internal note, customer msg are not first
#   responses; the public agent msg at 10:05 is: FR 300 s, FR SLA achieved.
#   Solve 10:10: solved, first solved, FCR (1 public agent msg), resolution
#   600 s, resolution SLA achieved.  Reopen 10:12.  2nd public agent msg
#   10:14.  Solve 10:20: solved only, resolution 1200 s; no FCR, no SLA.
# T2 urgent (c2): internal note 10:31; solve 10:32 stops the FR clock ->
#   FR achieved (10:32 <= 10:45), resolution achieved, resolution 120 s,
#   FCR (0 msgs).  Public agent msg 10:40 after the solve is still the first
#   response: FR 600 s (no SLA effect).
# T3 high (c3): two public agent msgs (FR 60 s, FR achieved) then first solve
#   10:44: first solved but no FCR; resolution 180 s, achieved.
# T4 low (c4): agent msg at 10:49:45, 15 s before creation (10:50:00, not late
#   since WM = 10:49:30): FR clamped to 0, FR achieved at 10:49:45.
#   Resolution clock (due 11-25) still running at the end: no outcome.
# Totals in [10:00, 11:00): created 4, solved 4 (T1 x2, T2, T3), first 3,
#   fcr 2 (T1, T2), reopened 1.  FR [0, 60, 300, 600]: mean 240,
#   p50 rank 2 = 60, p90 rank 4 = 600, p99 rank 4 = 600.
#   Resolution [120, 180, 600, 1200]: mean 525, p50 180, p90/p99 1200.
#   SLA FR achieved 4 (T1, T2, T3, T4), resolution achieved 3.
# M = 10:50:00 < 11:00 -> the only window is partial.
# ---------------------------------------------------------------------------
CASES["first_response_fcr"] = [
    kpi("2026-11-22T10:00:00Z", "2026-11-22T11:00:00Z", 3600, partial=True,
        tickets={"created": 4, "solved": 4, "first_solved": 3, "fcr": 2, "reopened": 1},
        first_response_seconds=S(4, 0.0, 600.0, 240.0, 60.0, 600.0, 600.0),
        resolution_seconds=S(4, 120.0, 1200.0, 525.0, 180.0, 1200.0, 1200.0),
        sla=sla(fr=(4, 0), res=(3, 0))),
]

# ---------------------------------------------------------------------------
# sla_breach  (--windows 1m,1h --group-by "")   lateness 30 s
#
# A urgent c1 10:00:00 (FR due 10:15:00, team ops); B urgent c2 10:00:50 (FR
# due 10:15:50); C high c3 10:10:00 (FR due 11:10:00).
# L3 (10:10:00): WM 10:09:30 closes 1m [10:00) (created A, B).
# L4 (10:15:40, customer msg): WM 10:15:10 > 10:15:00 -> A's FR breach fires,
#   reported before any reply (team ops).  B's due 10:15:50 is not < 10:15:10.
#   Closes 1m [10:10) (created C).
# L5 (10:16:20) escalates B to tier2: counted in [10:16); WM 10:15:50, B's due
#   is not strictly before it.
# L6 (10:20:00, D urgent c4, FR due 10:35:00): WM 10:19:30 jumps past B's due
#   and past the end of [10:15,10:16): B's breach still lands in [10:15) which
#   then closes (2 FR breaches), then [10:16).
#   REVISED SPEC §3: a breach takes the ticket's dimensions AS THEY WERE AT THE
#   DUE.  B's only escalation (10:16:20, to tier2) is after its due 10:15:50, so
#   it does not count, although it arrived before the breach was detected: the
#   record says team "unassigned" (B was created without a team).  The earlier
#   version of this case expected "tier2" (dimensions as at detection).
# L7 (10:25) first agent reply on A: FR 1500 s, no SLA outcome (already
#   breached).  WM 10:24:30 closes [10:20) (created D).
# L8 (10:36) D's reply after due while the WM (10:24:30) has not passed due:
#   breached at due 10:35:00 -> [10:35); FR 960 s -> [10:36).  Closes [10:25).
# L9 F urgent c5 10:59:59 (FR due 11:14:59): closes [10:35), [10:36).
# L10 E urgent c6 11:00:00 (FR due 11:15:00).
# L11 (11:10:00) reply on C exactly at due: achieved, FR 3600 s.  WM 11:09:30
#   closes [10:59,11:00) 1m, then [10:00,11:00) 1h (same end, smaller size
#   first), then [11:00,11:01) 1m.
# L12 (11:15:00) customer.contacted (no measurement): WM 11:14:30 closes [11:10).
# End: WM := M = 11:15:00: F's timer 11:14:59 fires (breach in [11:14), which
#   then closes complete); E's due 11:15:00 = M stays pending: no outcome.
#   [11:00,12:00) 1h is partial.
# 1h [10:00): created 5 (A B C D F), escalated 1, FR [960, 1500] (mean 1230,
#   p50 rank 1 = 960, p90 rank 2 = 1500), FR breached 3 (A B D).
# 1h [11:00): created 1 (E), FR [3600], FR achieved 1 (C), FR breached 1 (F).
# No churn risk (c1: 2; c2: 2 + 1; c4: 2; c5: 2).
# ---------------------------------------------------------------------------
CASES["sla_breach"] = [
    kpi("2026-11-22T10:00:00Z", "2026-11-22T10:01:00Z", 60, tickets={"created": 2}),
    breach("2026-11-22T10:15:00Z", "c1", "A", "first_response", "urgent", "ops", "email"),
    kpi("2026-11-22T10:10:00Z", "2026-11-22T10:11:00Z", 60, tickets={"created": 1}),
    breach("2026-11-22T10:15:50Z", "c2", "B", "first_response", "urgent", "unassigned", "chat"),
    kpi("2026-11-22T10:15:00Z", "2026-11-22T10:16:00Z", 60, sla=sla(fr=(0, 2))),
    kpi("2026-11-22T10:16:00Z", "2026-11-22T10:17:00Z", 60, tickets={"escalated": 1}),
    kpi("2026-11-22T10:20:00Z", "2026-11-22T10:21:00Z", 60, tickets={"created": 1}),
    breach("2026-11-22T10:35:00Z", "c4", "D", "first_response", "urgent", "unassigned", "web_form"),
    kpi("2026-11-22T10:25:00Z", "2026-11-22T10:26:00Z", 60, first_response_seconds=S1(1500.0)),
    kpi("2026-11-22T10:35:00Z", "2026-11-22T10:36:00Z", 60, sla=sla(fr=(0, 1))),
    kpi("2026-11-22T10:36:00Z", "2026-11-22T10:37:00Z", 60, first_response_seconds=S1(960.0)),
    kpi("2026-11-22T10:59:00Z", "2026-11-22T11:00:00Z", 60, tickets={"created": 1}),
    kpi("2026-11-22T10:00:00Z", "2026-11-22T11:00:00Z", 3600,
        tickets={"created": 5, "escalated": 1},
        first_response_seconds=S(2, 960.0, 1500.0, 1230.0, 960.0, 1500.0, 1500.0),
        sla=sla(fr=(0, 3))),
    kpi("2026-11-22T11:00:00Z", "2026-11-22T11:01:00Z", 60, tickets={"created": 1}),
    kpi("2026-11-22T11:10:00Z", "2026-11-22T11:11:00Z", 60,
        first_response_seconds=S1(3600.0), sla=sla(fr=(1, 0))),
    breach("2026-11-22T11:14:59Z", "c5", "F", "first_response", "urgent", "unassigned", "email"),
    kpi("2026-11-22T11:14:00Z", "2026-11-22T11:15:00Z", 60, sla=sla(fr=(0, 1))),
    kpi("2026-11-22T11:00:00Z", "2026-11-22T12:00:00Z", 3600, partial=True,
        tickets={"created": 1}, first_response_seconds=S1(3600.0), sla=sla(fr=(1, 1))),
]

# ---------------------------------------------------------------------------
# dimensions  (--windows 1h, default groups {}, team, channel, priority)
# All in [10:00, 11:00); M = 10:14 -> every record partial.
#
# T1 (c1, email, high, billing): created, FR 60 s + FR achieved under billing;
#   escalated 10:02 counted under billing, then team = tech; solve 10:03 under
#   tech: solved/first/fcr (1 public agent msg), resolution 180 s, achieved.
# d5 handled 120.5 s, channel phone, ticket T1 -> tech / phone / high.
# d6 handled 30 s chat, no ticket -> {} and channel=chat only.
# d7 handled 45.25 s chat, unknown ticket NOPE -> {} and channel=chat only.
# d8 csat 4 naming T1 (c1's) -> tech / email / high.
# d9 csat 2 by c2 naming T1 (c1's ticket) -> unknown ticket -> {} only;
#   recovery.needed carries ticket "T1"; opened 1 in {}.
# d10 ces 6 naming T1 -> tech / email / high.  d11 nps 10 -> {} only.
# d12 ces 5 no ticket -> {} only.  d13 order 99.5 -> {} only; it converts T1's
#   cohort entry (first solve 10:03 < 10:12 <= +30 d), band from latest csat
#   naming T1 = 4 -> satisfied.
# T2 (c3, chat, low, unassigned) created 10:13; csat 3 naming T2 -> its dims.
# handle in {}: [30, 45.25, 120.5] -> mean 65.25, p50 rank 2 = 45.25,
#   p90 rank 3 = 120.5.   chat: [30, 45.25] -> mean 37.625, p50 rank 1 = 30.
# ---------------------------------------------------------------------------
W0, W1 = "2026-11-22T10:00:00Z", "2026-11-22T11:00:00Z"
CASES["dimensions"] = [
    needed("2026-11-22T10:08:00Z", "c2", "2026-11-23T10:08:00Z", "csat", 2, "T1"),
    kpi(W0, W1, 3600, {}, True,
        tickets={"created": 2, "solved": 1, "first_solved": 1, "fcr": 1, "escalated": 1},
        first_response_seconds=S1(60.0), resolution_seconds=S1(180.0),
        handle_seconds=S(3, 30.0, 120.5, 65.25, 45.25, 120.5, 120.5),
        csat={"responses": 3, "satisfied": 1, "ratio": 1 / 3, "mean": 3.0},
        nps={"responses": 1, "promoters": 1, "score": 100.0},
        ces={"responses": 2, "mean": 5.5},
        sla=sla(fr=(1, 0), res=(1, 0)),
        orders={"placed": 1, "revenue": 99.5},
        recovery={"opened": 1},
        repurchase={"satisfied": {"converted": 1}}),
    kpi(W0, W1, 3600, {"team": "billing"}, True,
        tickets={"created": 1, "escalated": 1},
        first_response_seconds=S1(60.0), sla=sla(fr=(1, 0))),
    kpi(W0, W1, 3600, {"team": "tech"}, True,
        tickets={"solved": 1, "first_solved": 1, "fcr": 1},
        resolution_seconds=S1(180.0), handle_seconds=S1(120.5),
        csat={"responses": 1, "satisfied": 1, "ratio": 1.0, "mean": 4.0},
        ces={"responses": 1, "mean": 6.0}, sla=sla(res=(1, 0))),
    kpi(W0, W1, 3600, {"team": "unassigned"}, True,
        tickets={"created": 1},
        csat={"responses": 1, "satisfied": 0, "ratio": 0.0, "mean": 3.0}),
    kpi(W0, W1, 3600, {"channel": "chat"}, True,
        tickets={"created": 1},
        handle_seconds=S(2, 30.0, 45.25, 37.625, 30.0, 45.25, 45.25),
        csat={"responses": 1, "satisfied": 0, "ratio": 0.0, "mean": 3.0}),
    kpi(W0, W1, 3600, {"channel": "email"}, True,
        tickets={"created": 1, "solved": 1, "first_solved": 1, "fcr": 1, "escalated": 1},
        first_response_seconds=S1(60.0), resolution_seconds=S1(180.0),
        csat={"responses": 1, "satisfied": 1, "ratio": 1.0, "mean": 4.0},
        ces={"responses": 1, "mean": 6.0}, sla=sla(fr=(1, 0), res=(1, 0))),
    kpi(W0, W1, 3600, {"channel": "phone"}, True, handle_seconds=S1(120.5)),
    kpi(W0, W1, 3600, {"priority": "high"}, True,
        tickets={"created": 1, "solved": 1, "first_solved": 1, "fcr": 1, "escalated": 1},
        first_response_seconds=S1(60.0), resolution_seconds=S1(180.0),
        handle_seconds=S1(120.5),
        csat={"responses": 1, "satisfied": 1, "ratio": 1.0, "mean": 4.0},
        ces={"responses": 1, "mean": 6.0}, sla=sla(fr=(1, 0), res=(1, 0))),
    kpi(W0, W1, 3600, {"priority": "low"}, True,
        tickets={"created": 1},
        csat={"responses": 1, "satisfied": 0, "ratio": 0.0, "mean": 3.0}),
]

# ---------------------------------------------------------------------------
# input_hygiene  (--windows 1h --group-by "")
#
# L1 created T1 at 12:00+02:00 = 10:00:00Z; team/category null = defaults.
# L2 same id within horizon: duplicate, no output.
# L3 ticket.created T1 again (new id): "ticket exists".
# L4 message on T9: "unknown ticket" (and its id e3 is NOT remembered).
# L5 id e3 again, on T1, time 05:02:30.1239-05:00 = 10:02:30.123Z (digits
#   beyond ms dropped): accepted; FR 150.123 s, FR achieved.
# L6-L13 invalid: bad JSON, missing score, score 4.0, unknown type, channel
#   "Email", time with a space, time without offset, csat score 6.
# L14 nps 7 (extra field ignored, ticket null): passive; NPS score 0.0.
# L15 id e11 again (other content) with WM 10:03:30 <= 10:04 + 24 h: duplicate.
# L16 order o1 10 at 10:05.
# L17 order o2 20.25 at 11-23 10:06: WM 11-23 10:05:30 > T1's resolution due
#   (11-23 10:00, normal 24 h) -> breach at 11-23 10:00 (window [11-23 10:00)),
#   and 1h [11-22 10:00) closes.
# L18 id o1 again at 11-23 10:07: WM 11-23 10:05:30 > 11-22 10:05 + 24 h ->
#   not a duplicate: a second order of 10.
# L19 warranty at 11-24 10:06:30: WM 11-24 10:06:00; closes [11-23 10:00).
# L20 id o2 again: WM 11-24 10:06:00 <= 11-23 10:06 + 24 h -> duplicate.
# L21 warranty at 11-24 10:06:31: WM 11-24 10:06:01.
# L22 id o2 again: WM 11-24 10:06:01 > 11-24 10:06:00 -> accepted (5).
# End M = 11-24 10:06:40: [11-24 10:00) partial.
# ---------------------------------------------------------------------------
with open(os.path.join(HERE, "input_hygiene.jsonl"), encoding="utf-8") as _f:
    _HYG = _f.read().split("\n")   # only to copy the payload text into deadletters


def _dl(reason, line):
    return deadletter(reason, _HYG[line - 1], line, "input_hygiene")


CASES["input_hygiene"] = [
    _dl("ticket exists", 3),
    _dl("unknown ticket", 4),
    # reason codes: compare.py checks bad_timestamp / out_of_range exactly and
    # the others only as "invalid"
    _dl("invalid_json", 6),
    _dl("missing_field", 7),
    _dl("wrong_type", 8),           # score 4.0 is not a JSON integer
    _dl("unknown_type", 9),
    _dl("invalid_enum", 10),
    _dl("bad_timestamp", 11),
    _dl("bad_timestamp", 12),
    _dl("out_of_range", 13),        # csat score 6
    breach("2026-11-23T10:00:00Z", "c1", "T1", "resolution", "normal", "unassigned", "email"),
    kpi("2026-11-22T10:00:00Z", "2026-11-22T11:00:00Z", 3600,
        tickets={"created": 1}, first_response_seconds=S1(150.123), sla=sla(fr=(1, 0)),
        nps={"responses": 1, "passives": 1, "score": 0.0},
        orders={"placed": 1, "revenue": 10.0}),
    kpi("2026-11-23T10:00:00Z", "2026-11-23T11:00:00Z", 3600,
        sla=sla(res=(0, 1)), orders={"placed": 2, "revenue": 30.25}),
    kpi("2026-11-24T10:00:00Z", "2026-11-24T11:00:00Z", 3600, partial=True,
        orders={"placed": 1, "revenue": 5.0, "warranty_claims": 2}),
]

# ---------------------------------------------------------------------------
# late_events  (--windows 1m,1h --group-by "")
#
# L1 T1 10:00:00, L2 T2 10:00:50, L3 order 10:02:00 -> WM 10:01:30 closes 1m
#   [10:00) with created 2.
# L4 agent msg T1 at 10:00:40 < WM: late.  Still the first response (FR 40 s,
#   FR achieved at 10:00:40): dropped from the closed 1m [10:00), counted in
#   the open 1h [10:00).  Not a §5 input.
# L5 csat c1 1 at 10:01:30 = WM: not late; held for §5.
# L6 csat c2 1 at 10:01:00 < WM: late, but 1m [10:01) is still open (end
#   10:02 > 10:01:30): counted there and in 1h; not applied in §5 (no
#   recovery for c2).
# L7 nps c2 0 at 10:00:59.999: late, 1m [10:00) closed -> dropped; 1h counts a
#   detractor; not applied in §5.
# L8 agent msg T1 10:03:00 (2nd, no measurement): WM 10:02:30 -> L5 applied:
#   recovery.needed c1 (opened in [10:01)); then [10:01) closes:
#   csat 2 responses, 0 satisfied, mean 1.0, opened 1.
# L9 contacted c1 10:04: WM 10:03:30 -> L8's public agent msg (10:03) answers
#   c1's case: answered, 90 s, in [10:03).  [10:02) closes (order).
# End M = 10:04: contacted (no case open) applied; [10:03) closes complete;
#   1h [10:00) partial.
# ---------------------------------------------------------------------------
CASES["late_events"] = [
    kpi("2026-11-22T10:00:00Z", "2026-11-22T10:01:00Z", 60, tickets={"created": 2}),
    needed("2026-11-22T10:01:30Z", "c1", "2026-11-23T10:01:30Z", "csat", 1),
    kpi("2026-11-22T10:01:00Z", "2026-11-22T10:02:00Z", 60,
        csat={"responses": 2, "satisfied": 0, "ratio": 0.0, "mean": 1.0},
        recovery={"opened": 1}),
    kpi("2026-11-22T10:02:00Z", "2026-11-22T10:03:00Z", 60,
        orders={"placed": 1, "revenue": 1.0}),
    kpi("2026-11-22T10:03:00Z", "2026-11-22T10:04:00Z", 60,
        recovery={"answered": 1, "answer_seconds": S1(90.0)}),
    kpi("2026-11-22T10:00:00Z", "2026-11-22T11:00:00Z", 3600, partial=True,
        tickets={"created": 2}, first_response_seconds=S1(40.0), sla=sla(fr=(1, 0)),
        csat={"responses": 2, "satisfied": 0, "ratio": 0.0, "mean": 1.0},
        nps={"responses": 1, "detractors": 1, "score": -100.0},
        orders={"placed": 1, "revenue": 1.0},
        recovery={"opened": 1, "answered": 1, "answer_seconds": S1(90.0)}),
]

# ---------------------------------------------------------------------------
# churn_risk  (--windows 1h --group-by "")      t0 = 2026-11-01T10:00Z
#
# k1 at t0 (same instant, factor 1): return +2, warranty +1, ces 2 +2 -> S = 5
#   >= 5: churn.risk #1, score 5.0, reasons by sum then name:
#   ces_high_effort 2, return 2, warranty_claim 1.
# k2 at t0: csat 5 -> positive -0.25, S floored at 0.
# k2 tickets X1 11:00, X2 12:00, X3 13:00 (each solved a minute later:
#   FR and resolution achieved, resolution 60 s, FCR).  At X3, 2 other
#   tickets in [t-7d, t): repeat_contact +2 -> S = 2; return at 13:00 -> 4;
#   ces 1 at 13:00 -> 6: churn.risk score 6.0, reasons (tie at 2, by name)
#   ces_high_effort, repeat_contact, return.
# k1 t0+3.5d return: S = 5*2^-0.25 + 2 = 6.2045; cooldown (risk at t0) -> none.
# k1 t0+7d csat 5: S = 5*2^-0.5 + 2*2^-0.25 - 0.25 = 4.96733 (negative weight,
#   no check); warranty +1 at the same instant: S = 5.9673267364401665;
#   last risk at t0 is not in (t0, t0+7d] -> churn.risk #2.  Reason sums:
#   return 2*2^-0.5 + 2*2^-0.25 = 3.0960, warranty 2^-0.5 + 1 = 1.7071,
#   ces 2*2^-0.5 = 1.4142 -> [return, warranty_claim, ces_high_effort].
# k1 churns t0+10d: churned 1, after signal 1, confirms both risks (2).
# Repurchase: X1/X2/X3 first solves (11:01, 12:01, 13:01) expire unrated at
#   +30 d = 12-01 11:01, 12:01, 13:01.
# k2's risk (s = 11-01 13:00) expires without churn at s + 90 d =
#   2027-01-30 13:00.
# Last event 2027-02-01 00:00 (WM 01-31 23:59:30) fires all of these; every
#   window is complete.
# ---------------------------------------------------------------------------
ticket_hour = dict(tickets={"created": 1, "solved": 1, "first_solved": 1, "fcr": 1},
                   resolution_seconds=S1(60.0), sla=sla(fr=(1, 0), res=(1, 0)))
CASES["churn_risk"] = [
    risk("2026-11-01T10:00:00Z", "k1", 5.0,
         ["ces_high_effort", "return", "warranty_claim"]),
    kpi("2026-11-01T10:00:00Z", "2026-11-01T11:00:00Z", 3600,
        orders={"returned": 1, "warranty_claims": 1},
        csat={"responses": 1, "satisfied": 1, "ratio": 1.0, "mean": 5.0},
        ces={"responses": 1, "mean": 2.0},
        churn_signals={"signalled": 1}),
    kpi("2026-11-01T11:00:00Z", "2026-11-01T12:00:00Z", 3600, **ticket_hour),
    risk("2026-11-01T13:00:00Z", "k2", 6.0,
         ["ces_high_effort", "repeat_contact", "return"]),
    kpi("2026-11-01T12:00:00Z", "2026-11-01T13:00:00Z", 3600, **ticket_hour),
    kpi("2026-11-01T13:00:00Z", "2026-11-01T14:00:00Z", 3600,
        orders={"returned": 1}, ces={"responses": 1, "mean": 1.0},
        churn_signals={"signalled": 1}, **ticket_hour),
    kpi("2026-11-04T22:00:00Z", "2026-11-04T23:00:00Z", 3600, orders={"returned": 1}),
    risk("2026-11-08T10:00:00Z", "k1", 5.9673267364401665,
         ["return", "warranty_claim", "ces_high_effort"]),
    kpi("2026-11-08T10:00:00Z", "2026-11-08T11:00:00Z", 3600,
        csat={"responses": 1, "satisfied": 1, "ratio": 1.0, "mean": 5.0},
        orders={"warranty_claims": 1}, churn_signals={"signalled": 1}),
    kpi("2026-11-11T10:00:00Z", "2026-11-11T11:00:00Z", 3600,
        customers={"churned": 1},
        churn_signals={"confirmed": 2, "churned": 1, "churned_after_signal": 1}),
    kpi("2026-12-01T11:00:00Z", "2026-12-01T12:00:00Z", 3600, repurchase={"unrated": {"expired": 1}}),
    kpi("2026-12-01T12:00:00Z", "2026-12-01T13:00:00Z", 3600, repurchase={"unrated": {"expired": 1}}),
    kpi("2026-12-01T13:00:00Z", "2026-12-01T14:00:00Z", 3600, repurchase={"unrated": {"expired": 1}}),
    kpi("2027-01-30T13:00:00Z", "2027-01-30T14:00:00Z", 3600,
        churn_signals={"expired_without_churn": 1}),
]

# ---------------------------------------------------------------------------
# recovery  (--windows 1h --group-by "")
#
# r1 csat 1 at 10:00 naming unknown ticket Q1: case (ticket "Q1" carried),
#   due 11-23 10:00.  csat 2 at 10:30 while open: no new case, but
#   csat_negative again: S = 3*2^(-30min/14d) + 3 = 5.996907188287871 -> risk
#   [csat_negative].  contacted 11:30 answers: 5400 s.  nps 5 at 12:00 opens a
#   new case (due 11-23 12:00), never answered -> overdue at 11-23 12:00
#   (the cooldown suppresses a second churn.risk).
# r2 nps 3 at 10:00:10: case due 11-23 10:00:10.  Internal note and system
#   message on P2 do not answer; the contact at 11-23 10:00:11 is after due ->
#   overdue at 11-23 10:00:10.
# r3 R3 (low) solved 10:01 (FR achieved via the solve, resolution 180 s).
#   csat 2 at 10:05 naming R3: case (ticket R3) due 11-23 10:05:00; the public
#   agent msg on R3 at exactly 11-23 10:05:00 answers it (inputs before timers
#   at equal times): 86400 s; it is also R3's first response: 86820 s.
# r4 contacted at 10:40 arrives before the csat 1 at 10:40: no case yet, so
#   it is not an answer -> overdue at 11-23 10:40.
# P2 (r2, low) created 09:59 solved 10:20: resolution 1260 s, FR + resolution
#   achieved, FCR.  R3 created 09:58.
# [10:00): solved 2, first 2, fcr 2, resolution [180, 1260] (mean 720,
#   p50 180, p90 1260); csat 4 responses (1,2,2,1) mean 1.5; nps 1 detractor;
#   opened 4 (r1, r2, r3, r4); signalled 1.
# Last event 11-23 12:30 (WM 12:29:30) fires the three overdue timers;
#   [11-23 12:00) is partial.
# ---------------------------------------------------------------------------
CASES["recovery"] = [
    needed("2026-11-22T10:00:00Z", "r1", "2026-11-23T10:00:00Z", "csat", 1, "Q1"),
    needed("2026-11-22T10:00:10Z", "r2", "2026-11-23T10:00:10Z", "nps", 3),
    kpi("2026-11-22T09:00:00Z", "2026-11-22T10:00:00Z", 3600, tickets={"created": 2}),
    needed("2026-11-22T10:05:00Z", "r3", "2026-11-23T10:05:00Z", "csat", 2, "R3"),
    risk("2026-11-22T10:30:00Z", "r1", 5.996907188287871,
         ["csat_negative"]),
    needed("2026-11-22T10:40:00Z", "r4", "2026-11-23T10:40:00Z", "csat", 1),
    kpi("2026-11-22T10:00:00Z", "2026-11-22T11:00:00Z", 3600,
        tickets={"solved": 2, "first_solved": 2, "fcr": 2},
        resolution_seconds=S(2, 180.0, 1260.0, 720.0, 180.0, 1260.0, 1260.0),
        sla=sla(fr=(2, 0), res=(2, 0)),
        csat={"responses": 4, "satisfied": 0, "ratio": 0.0, "mean": 1.5},
        nps={"responses": 1, "detractors": 1, "score": -100.0},
        churn_signals={"signalled": 1},
        recovery={"opened": 4}),
    needed("2026-11-22T12:00:00Z", "r1", "2026-11-23T12:00:00Z", "nps", 5),
    kpi("2026-11-22T11:00:00Z", "2026-11-22T12:00:00Z", 3600,
        recovery={"answered": 1, "answer_seconds": S1(5400.0)}),
    kpi("2026-11-22T12:00:00Z", "2026-11-22T13:00:00Z", 3600,
        nps={"responses": 1, "detractors": 1, "score": -100.0},
        recovery={"opened": 1}),
    overdue("2026-11-23T10:00:10Z", "r2", "nps"),
    overdue("2026-11-23T10:40:00Z", "r4", "csat"),
    overdue("2026-11-23T12:00:00Z", "r1", "nps"),
    kpi("2026-11-23T10:00:00Z", "2026-11-23T11:00:00Z", 3600,
        first_response_seconds=S1(86820.0),
        recovery={"answered": 1, "overdue": 2, "answer_seconds": S1(86400.0)}),
    kpi("2026-11-23T12:00:00Z", "2026-11-23T13:00:00Z", 3600, partial=True,
        recovery={"overdue": 1}),
]

# ---------------------------------------------------------------------------
# repurchase  (--windows 1h --group-by "")
#
# All tickets urgent, solved a minute after creation: FR and resolution
# achieved, resolution 60 s, FCR.
# p1 S1 solved 10:01; csat 5 then 4 naming S1 -> latest 4 = satisfied.
#   p5's csat 2 naming S1 (p1's ticket) is an unknown ticket: no effect on
#   S1's band; it opens p5's case (ticket "S1"), overdue at 11-23 10:05.
#   p1's order 11-25 10:00 converts S1: satisfied converted.
# p2 S2 solved 10:11; the order at 10:11:00 (same instant, after the solve)
#   is not in (t, t+30d]; csat 3 -> neutral; expires 12-22 10:11.
# p3 S3 solved 10:21; csat 1 -> dissatisfied, opens a case (ticket "S3")
#   answered by the contact at 10:23 (60 s).  Order at 12-22 10:21:00 = t+30d:
#   input before the expiry timer at the same instant -> converted,
#   dissatisfied.  The csat 5 at 12-22 10:30 comes after the outcome.
# p4 S4 solved 10:31, S5 solved 10:33; S4 reopened 10:40 and solved 10:50
#   (not a first solve; resolution 1200 s).  Order 12-01 09:00 converts both
#   (unrated x2); order 12-01 09:30 converts nothing.
# S1 reopened 12-20 10:00 (last event 11-22 10:01 + 30 d not yet passed).
# Message on S2 at 12-23 00:00: S2 (solved, last event 11-22 10:11) was
#   evicted once the WM passed 12-22 10:11 -> "unknown ticket".
# [11-22 10:00): created 5, solved 6, first 5, fcr 5, reopened 1,
#   resolution [60 x5, 1200]: mean 250, p50 rank 3 = 60, p90 rank 6 = 1200;
#   csat (5,4,2,3,1): 5 responses, 2 satisfied, ratio 0.4, mean 3.0;
#   order 50; opened 2, answered 1 (60 s).
# ---------------------------------------------------------------------------
with open(os.path.join(HERE, "repurchase.jsonl"), encoding="utf-8") as _f:
    _REP = _f.read().split("\n")

CASES["repurchase"] = [
    needed("2026-11-22T10:05:00Z", "p5", "2026-11-23T10:05:00Z", "csat", 2, "S1"),
    needed("2026-11-22T10:22:00Z", "p3", "2026-11-23T10:22:00Z", "csat", 1, "S3"),
    overdue("2026-11-23T10:05:00Z", "p5", "csat"),
    kpi("2026-11-22T10:00:00Z", "2026-11-22T11:00:00Z", 3600,
        tickets={"created": 5, "solved": 6, "first_solved": 5, "fcr": 5, "reopened": 1},
        resolution_seconds=S(6, 60.0, 1200.0, 250.0, 60.0, 1200.0, 1200.0),
        sla=sla(fr=(5, 0), res=(5, 0)),
        csat={"responses": 5, "satisfied": 2, "ratio": 0.4, "mean": 3.0},
        orders={"placed": 1, "revenue": 50.0},
        recovery={"opened": 2, "answered": 1, "answer_seconds": S1(60.0)}),
    kpi("2026-11-23T10:00:00Z", "2026-11-23T11:00:00Z", 3600, recovery={"overdue": 1}),
    kpi("2026-11-25T10:00:00Z", "2026-11-25T11:00:00Z", 3600,
        orders={"placed": 1, "revenue": 20.0}, repurchase={"satisfied": {"converted": 1}}),
    kpi("2026-12-01T09:00:00Z", "2026-12-01T10:00:00Z", 3600,
        orders={"placed": 2, "revenue": 70.0}, repurchase={"unrated": {"converted": 2}}),
    kpi("2026-12-20T10:00:00Z", "2026-12-20T11:00:00Z", 3600, tickets={"reopened": 1}),
    deadletter("unknown ticket", _REP[25], 26, "repurchase"),
    kpi("2026-12-22T10:00:00Z", "2026-12-22T11:00:00Z", 3600,
        orders={"placed": 1, "revenue": 60.0},
        csat={"responses": 1, "satisfied": 1, "ratio": 1.0, "mean": 5.0},
        repurchase={"neutral": {"expired": 1}, "dissatisfied": {"converted": 1}}),
]

# ---------------------------------------------------------------------------
# end_of_replay  (--windows 1m,1h --group-by "")
#
# U2 urgent c3 09:59:59 (FR due 10:14:59); U1 urgent c1 10:00:00 (FR due
# 10:15:00).  Order 12.5 at 10:14:40 -> WM 10:14:10: closes 1m [09:59),
# 1h [09:00), 1m [10:00).  csat 1 by c1 at 10:15:00 = M (WM 10:14:30).
# End: WM := 10:15:00.  U2's timer (10:14:59 < M) fires: breach in [10:14),
# which closes complete (order + breach).  The csat at M is applied: c1's
# case opens (recovery.needed at 10:15, opened in [10:15)).  U1's timer at M
# stays pending: no outcome.  Partial: 1m [10:15), 1h [10:00).
# ---------------------------------------------------------------------------
CASES["end_of_replay"] = [
    kpi("2026-11-22T09:59:00Z", "2026-11-22T10:00:00Z", 60, tickets={"created": 1}),
    kpi("2026-11-22T09:00:00Z", "2026-11-22T10:00:00Z", 3600, tickets={"created": 1}),
    kpi("2026-11-22T10:00:00Z", "2026-11-22T10:01:00Z", 60, tickets={"created": 1}),
    breach("2026-11-22T10:14:59Z", "c3", "U2", "first_response", "urgent", "unassigned", "email"),
    needed("2026-11-22T10:15:00Z", "c1", "2026-11-23T10:15:00Z", "csat", 1),
    kpi("2026-11-22T10:14:00Z", "2026-11-22T10:15:00Z", 60,
        sla=sla(fr=(0, 1)), orders={"placed": 1, "revenue": 12.5}),
    kpi("2026-11-22T10:15:00Z", "2026-11-22T10:16:00Z", 60, partial=True,
        csat={"responses": 1, "satisfied": 0, "ratio": 0.0, "mean": 1.0},
        recovery={"opened": 1}),
    kpi("2026-11-22T10:00:00Z", "2026-11-22T11:00:00Z", 3600, partial=True,
        tickets={"created": 1}, sla=sla(fr=(0, 1)),
        csat={"responses": 1, "satisfied": 0, "ratio": 0.0, "mean": 1.0},
        orders={"placed": 1, "revenue": 12.5}, recovery={"opened": 1}),
]


def _lines(case):
    """The raw lines of a case input, only to copy payload text into deadletters."""
    with open(os.path.join(HERE, case + ".jsonl"), encoding="utf-8", newline="") as f:
        return f.read().split("\n")


# ---------------------------------------------------------------------------
# breach_dims  (--windows 1h --group-by "" team)   lateness 30 s
#
# REVISED SPEC §3: a breach takes the ticket's dimensions as they were at the
# due: after the ticket's events with time <= due, in ARRIVAL order, ignoring
# any with a later time, however late the breach is detected.
#
# L1 Q1 urgent d1 email team t0 10:00:00 (FR due 10:15:00, res due 14:00:00).
# L2 Q2 urgent d2 chat team t0 10:01:00 (FR due 10:16:00, res due 14:01:00).
# L3 Q2 escalated -> A at 10:10:00: counted under t0.  WM 10:09:30.
# L4 Q2 escalated -> C at 10:05:00: late (< WM 10:09:30) but it still updates
#   the ticket; counted under A (the team it had before) in the open 1h window.
# L5 Q1 escalated -> late1 at 10:15:20, AFTER Q1's due: counted under t0.
#   WM 10:14:50 has not passed 10:15:00: no detection yet.
# L6 Q2 escalated -> B at 10:16:10, after Q2's due: counted under C.
#   WM 10:15:40 > 10:15:00: Q1's FR breach is detected now.  Q1's events with
#   time <= 10:15:00: only the creation (L5 arrived before the detection but is
#   after the due) -> team t0 (not late1, its team at detection).
# L7 order d9 10:20:00: WM 10:19:30 > 10:16:00: Q2's FR breach.  Q2's events
#   with time <= 10:16:00 in arrival order: L3 (A), L4 (C) -> team C.  (Its team
#   now is B; sorting by time instead of arrival would give A.)
# L8 Q2 solved 10:30:00 under its current team B: solved, first solved, FCR
#   (no public agent message), resolution 1740 s, resolution SLA achieved.
# L9 Q3 urgent d3 phone team t0 13:50:00 (FR due 14:05:00): WM 13:49:30
#   closes 1h [10:00, 11:00).
# L10 Q3 escalated -> Z at 14:05:20 (counted under t0): WM 14:04:50 > 14:00:00:
#   Q1's resolution breach: its events <= 14:00 include L5 -> team late1.
#   Closes [13:00, 14:00) (created Q3).
# End: WM := M = 14:05:20: Q3's FR due 14:05:00 < M fires at the end of input:
#   L10 (14:05:20) arrived before this detection but is after the due -> team
#   t0.  Q3's resolution (due 17:50) has no outcome.  [14:00, 15:00) partial.
# §5: d1 = 2 + 1 + 2 (decayed), d2 = 1 + 2 + 1 (L4 is late: not applied),
#   d3 = 2 + 1: all below 5, no churn.risk.
# [10:00) {}: created 2, escalated 4, solved/first/fcr 1, resolution 1740,
#   FR breached 2, resolution achieved 1, order 5.
#   team A: escalated 1 (L4).  B: the solve.  C: escalated 1 (L6), FR breached
#   1 (Q2).  t0: created 2, escalated 2 (L3, L5), FR breached 1 (Q1).
# [14:00) {}: escalated 1 (L10), FR breached 1 (Q3), resolution breached 1
#   (Q1); late1: resolution breached 1; t0: escalated 1, FR breached 1.
# ---------------------------------------------------------------------------
H10, H11 = "2026-11-22T10:00:00Z", "2026-11-22T11:00:00Z"
CASES["breach_dims"] = [
    breach("2026-11-22T10:15:00Z", "d1", "Q1", "first_response", "urgent", "t0", "email"),
    breach("2026-11-22T10:16:00Z", "d2", "Q2", "first_response", "urgent", "C", "chat"),
    kpi(H10, H11, 3600, {},
        tickets={"created": 2, "solved": 1, "first_solved": 1, "fcr": 1, "escalated": 4},
        resolution_seconds=S1(1740.0), sla=sla(fr=(0, 2), res=(1, 0)),
        orders={"placed": 1, "revenue": 5.0}),
    kpi(H10, H11, 3600, {"team": "A"}, tickets={"escalated": 1}),
    kpi(H10, H11, 3600, {"team": "B"},
        tickets={"solved": 1, "first_solved": 1, "fcr": 1},
        resolution_seconds=S1(1740.0), sla=sla(res=(1, 0))),
    kpi(H10, H11, 3600, {"team": "C"}, tickets={"escalated": 1}, sla=sla(fr=(0, 1))),
    kpi(H10, H11, 3600, {"team": "t0"}, tickets={"created": 2, "escalated": 2},
        sla=sla(fr=(0, 1))),
    breach("2026-11-22T14:00:00Z", "d1", "Q1", "resolution", "urgent", "late1", "email"),
    kpi("2026-11-22T13:00:00Z", "2026-11-22T14:00:00Z", 3600, {}, tickets={"created": 1}),
    kpi("2026-11-22T13:00:00Z", "2026-11-22T14:00:00Z", 3600, {"team": "t0"},
        tickets={"created": 1}),
    breach("2026-11-22T14:05:00Z", "d3", "Q3", "first_response", "urgent", "t0", "phone"),
    kpi("2026-11-22T14:00:00Z", "2026-11-22T15:00:00Z", 3600, {}, True,
        tickets={"escalated": 1}, sla=sla(fr=(0, 1), res=(0, 1))),
    kpi("2026-11-22T14:00:00Z", "2026-11-22T15:00:00Z", 3600, {"team": "late1"}, True,
        sla=sla(res=(0, 1))),
    kpi("2026-11-22T14:00:00Z", "2026-11-22T15:00:00Z", 3600, {"team": "t0"}, True,
        tickets={"escalated": 1}, sla=sla(fr=(0, 1))),
]

# ---------------------------------------------------------------------------
# ids  (--windows 1h --group-by "")
#
# SPEC §7 ids on every alert, signal and dead-letter record, times exactly as
# in the record (UTC "Z", ".mmm" only when non-zero), whatever the input's offset.
# L1 csat 1 k1 at 11:00:00.250+01:00 = 10:00:00.250Z; L2 nps 2 k1 at
#   10:00:00.250Z; both held.
# L3 Z1 urgent k2 10:01:00 (FR due 10:16:00, res due 14:01:00): WM 10:00:30 >
#   10:00:00.250: L1 applied: csat_negative 3, recovery.needed (due
#   2026-11-23T10:00:00.250Z); L2: nps_detractor 3 at the same instant: S = 6
#   -> churn.risk 6.0, reasons tied at 3 -> by name [csat_negative,
#   nps_detractor]; the case is already open.
# L4 message on Z9 (never created): unknown ticket, id deadletter|<file>|4.
# L5 Z1 created again by k2: ticket exists, id deadletter|<file>|5.
# L6 invalid JSON: id deadletter|<file>|6.
# L7 contacted k3 11-23 10:30:00: WM 11-23 10:29:30 fires Z1's FR breach
#   (10:16:00), resolution breach (14:01:00), k1's recovery due
#   (11-23 10:00:00.250 -> recovery.overdue); closes [11-22 10:00) and
#   [11-22 14:00).  k2: 2 + 2 decayed < 5.
# End M = 11-23 10:30: [11-23 10:00) partial (overdue).
# ---------------------------------------------------------------------------
_IDS = _lines("ids")
CASES["ids"] = [
    needed("2026-11-22T10:00:00.250Z", "k1", "2026-11-23T10:00:00.250Z", "csat", 1),
    risk("2026-11-22T10:00:00.250Z", "k1", 6.0, ["csat_negative", "nps_detractor"]),
    deadletter("unknown ticket", _IDS[3], 4, "ids"),
    deadletter("ticket exists", _IDS[4], 5, "ids"),
    deadletter("invalid_json", _IDS[5], 6, "ids"),
    breach("2026-11-22T10:16:00Z", "k2", "Z1", "first_response", "urgent", "unassigned", "email"),
    breach("2026-11-22T14:01:00Z", "k2", "Z1", "resolution", "urgent", "unassigned", "email"),
    overdue("2026-11-23T10:00:00.250Z", "k1", "csat"),
    kpi(H10, H11, 3600,
        tickets={"created": 1},
        csat={"responses": 1, "satisfied": 0, "ratio": 0.0, "mean": 1.0},
        nps={"responses": 1, "detractors": 1, "score": -100.0},
        sla=sla(fr=(0, 1)), churn_signals={"signalled": 1}, recovery={"opened": 1}),
    kpi("2026-11-22T14:00:00Z", "2026-11-22T15:00:00Z", 3600, sla=sla(res=(0, 1))),
    kpi("2026-11-23T10:00:00Z", "2026-11-23T11:00:00Z", 3600, partial=True,
        recovery={"overdue": 1}),
]

# ---------------------------------------------------------------------------
# partitions  (--partitions 2 --windows 1m --group-by "")   lateness 30 s
#
# Routing, crc32 (zlib/IEEE) of the customer id's bytes modulo 2:
#   crc32("fast") = 0x256649c4 = 627460548, even -> partition 0
#   crc32("slow") = 0x350771dd = 889680349, odd  -> partition 1
# WM0 / WM1 = the partitions' watermarks; a window is complete when
# min(WM0, WM1) reaches its end.
# L1 fast e1 order 1 at 10:00:10: WM0 09:59:40.  P1 has no data: nothing can
#   be complete.
# L2 slow e1 order 2 at 10:00:20: the same id, but P1's dedup memory is its
#   own -> accepted.  WM1 09:59:50.
# L3 fast e2 order 4 at 10:05:00: WM0 10:04:30 closes P0's parts up to 10:04.
# L4 slow e3 T1 urgent email at 10:00:40: not late in P1 (WM1 09:59:50),
#   although P0 is past it: counted in [10:00) (FR due 10:15:40).  WM1 10:00:10.
# L5 fast e4 order 8 at 10:02:00: late in P0 (WM0 10:04:30) and P0's part of
#   [10:02) is closed -> dropped (late), though P1's part of it is open.
# L6 slow e5 order 16 at 10:02:30: WM1 10:02:00; min = 10:02:00 -> [10:00,
#   10:01) complete: orders 2 (1 + 2 = 3.0), created 1, partitions [0, 1].
# L7 fast e1 again at 10:05:10: duplicate in P0 (WM0 10:04:30 <= 10:00:10 +
#   24 h) -> nothing.
# L8 fast nps 0 at 10:06:00 (held); WM0 10:05:30.
# L9 fast contacted 10:20:00: WM0 10:19:30 applies L8: recovery.needed (due
#   11-23 10:06), opened in [10:06).  T1's FR due 10:15:40 is behind WM0 but T1
#   is P1's: P1's watermark (10:02:00) decides -> no breach yet.
# End: M = 10:20:00 for both partitions.  P0: the contact at M answers the
#   case: answered at 10:20, 840 s.  P1: T1's FR timer 10:15:40 < M fires ->
#   sla.breached, in [10:15).  Complete (end <= M): [10:02) order 16 [1];
#   [10:05) order 4 [0]; [10:06) nps detractor + opened [0]; [10:15) FR
#   breached [1].  Partial: [10:20) answered [0].
# (With one partition, L2 and L7 would be duplicates, L4 late and dropped from
#   the closed [10:00), and T1 would breach at L9.)
# ---------------------------------------------------------------------------
CASES["partitions"] = [
    kpi("2026-11-22T10:00:00Z", "2026-11-22T10:01:00Z", 60,
        tickets={"created": 1}, orders={"placed": 2, "revenue": 3.0}, partitions=[0, 1]),
    needed("2026-11-22T10:06:00Z", "fast", "2026-11-23T10:06:00Z", "nps", 0),
    breach("2026-11-22T10:15:40Z", "slow", "T1", "first_response", "urgent", "unassigned", "email"),
    kpi("2026-11-22T10:02:00Z", "2026-11-22T10:03:00Z", 60,
        orders={"placed": 1, "revenue": 16.0}, partitions=[1]),
    kpi("2026-11-22T10:05:00Z", "2026-11-22T10:06:00Z", 60,
        orders={"placed": 1, "revenue": 4.0}, partitions=[0]),
    kpi("2026-11-22T10:06:00Z", "2026-11-22T10:07:00Z", 60,
        nps={"responses": 1, "detractors": 1, "score": -100.0},
        recovery={"opened": 1}, partitions=[0]),
    kpi("2026-11-22T10:15:00Z", "2026-11-22T10:16:00Z", 60,
        sla=sla(fr=(0, 1)), partitions=[1]),
    kpi("2026-11-22T10:20:00Z", "2026-11-22T10:21:00Z", 60, partial=True,
        recovery={"answered": 1, "answer_seconds": S1(840.0)}, partitions=[0]),
]

# ---------------------------------------------------------------------------
# partitions_murmur2  (--partitions 3 --partitioner murmur2 --windows 1h
#   --group-by "")
#
# Routing, the Java client's murmur2 of the customer id, & 0x7fffffff, mod 3:
#   murmur2("m4") = 0x692a2676 -> 1764370038 = 3 * 588123346      -> P0
#   murmur2("m2") = 0xa8770df3 -> 0x28770df3 = 678890995 = 3 * 226296998 + 1 -> P1
#   murmur2("m0") = 0x1d393fcf -> 490291151 = 3 * 163430383 + 2   -> P2
# L1 id "x": R1 urgent m4 11-01 10:00 (P0).  L2 solved 10:01: FR and
#   resolution achieved, resolution 60 s, FCR.
# L3 id "x" again, csat 1 by m0 at 11-01 10:30 (P2): P2's dedup memory is its
#   own -> accepted (held; WM2 11-01 10:29:30).
# L4 order 7 by m2 at 12-05 10:00 (P1): WM1 12-05 09:59:30.
# L5 R1 reopened at 11-20 10:00 (P0): R1 (solved, last event 11-01 10:01) is
#   kept 30 d by P0's OWN watermark (11-01 10:00:30): not evicted, reopened.
#   (One partition: WM 12-05 09:59:30 > 12-01 10:01 -> evicted -> "unknown
#   ticket".)  WM0 11-20 09:59:30; P0 applies R1's first solve (§5): cohort
#   entry, expiry 12-01 10:01.  min(WM0, WM1, WM2) = WM2 11-01 10:29:30: the
#   window [11-01 10:00) waits for P2.
# End: M = 12-05 10:00 everywhere.  P0: reopen signal; cohort expiry 12-01
#   10:01 < M -> unrated expired.  P1: order at M applied.  P2: the csat opens
#   a case at 10:30 (recovery.needed), overdue at 11-02 10:30 < M.
#   [11-01 10:00) (P0 ticket KPIs + P2 csat/opened) partitions [0, 2];
#   [11-02 10:00) overdue [2]; [11-20 10:00) reopened [0]; [12-01 10:00)
#   unrated expired [0]; partial [12-05 10:00) order [1].
# ---------------------------------------------------------------------------
CASES["partitions_murmur2"] = [
    needed("2026-11-01T10:30:00Z", "m0", "2026-11-02T10:30:00Z", "csat", 1),
    overdue("2026-11-02T10:30:00Z", "m0", "csat"),
    kpi("2026-11-01T10:00:00Z", "2026-11-01T11:00:00Z", 3600,
        tickets={"created": 1, "solved": 1, "first_solved": 1, "fcr": 1},
        resolution_seconds=S1(60.0), sla=sla(fr=(1, 0), res=(1, 0)),
        csat={"responses": 1, "satisfied": 0, "ratio": 0.0, "mean": 1.0},
        recovery={"opened": 1}, partitions=[0, 2]),
    kpi("2026-11-02T10:00:00Z", "2026-11-02T11:00:00Z", 3600,
        recovery={"overdue": 1}, partitions=[2]),
    kpi("2026-11-20T10:00:00Z", "2026-11-20T11:00:00Z", 3600,
        tickets={"reopened": 1}, partitions=[0]),
    kpi("2026-12-01T10:00:00Z", "2026-12-01T11:00:00Z", 3600,
        repurchase={"unrated": {"expired": 1}}, partitions=[0]),
    kpi("2026-12-05T10:00:00Z", "2026-12-05T11:00:00Z", 3600, partial=True,
        orders={"placed": 1, "revenue": 7.0}, partitions=[1]),
]

# ---------------------------------------------------------------------------
# ticket_identity  (--windows 1h --group-by "" priority)
#
# REVISED SPEC §2: a ticket is (customer, ticket id).
# L1 a's T1 (normal, email) 10:00.
# L2 b's agent message on T1: b has no T1 -> orphan, "unknown ticket" (a's T1
#   is not b's); it counts nowhere, not even as a public agent message.
# L3 b creates T1 (high, chat) 10:02: a NEW ticket, not "ticket exists".
# L4 b's agent message 10:03: b's T1 first response 60 s, FR achieved (high).
# L5 a solves T1 10:04: a's T1: resolution 240 s, FCR (0 messages), FR
#   achieved at the solve, resolution achieved (normal).
# L6 a creates T1 again: a's T1 exists -> "ticket exists".
# L7 b's handled contact naming T1 (100 s): b's T1 -> priority high.
# L8 c's handled contact naming T1 (50 s): c has no T1 -> {} only.
# L9 b's csat 5 naming T1 -> high.   L10 a reopens T1 (normal).
# L11 b solves T1 10:10: resolution 480 s, FCR (exactly 1 public agent
#   message: L4), resolution achieved (high).
# M = 10:10: the 1h window is partial.
# {}: resolution [240, 480] mean 360, p50 rank 1 = 240, p90 rank 2 = 480;
#   handle [50, 100] mean 75, p50 50, p90 100.
# ---------------------------------------------------------------------------
_TID = _lines("ticket_identity")
CASES["ticket_identity"] = [
    deadletter("unknown ticket", _TID[1], 2, "ticket_identity"),
    deadletter("ticket exists", _TID[5], 6, "ticket_identity"),
    kpi(H10, H11, 3600, {}, True,
        tickets={"created": 2, "solved": 2, "first_solved": 2, "fcr": 2, "reopened": 1},
        first_response_seconds=S1(60.0),
        resolution_seconds=S(2, 240.0, 480.0, 360.0, 240.0, 480.0, 480.0),
        handle_seconds=S(2, 50.0, 100.0, 75.0, 50.0, 100.0, 100.0),
        csat={"responses": 1, "satisfied": 1, "ratio": 1.0, "mean": 5.0},
        sla=sla(fr=(2, 0), res=(2, 0))),
    kpi(H10, H11, 3600, {"priority": "high"}, True,
        tickets={"created": 1, "solved": 1, "first_solved": 1, "fcr": 1},
        first_response_seconds=S1(60.0), resolution_seconds=S1(480.0),
        handle_seconds=S1(100.0),
        csat={"responses": 1, "satisfied": 1, "ratio": 1.0, "mean": 5.0},
        sla=sla(fr=(1, 0), res=(1, 0))),
    kpi(H10, H11, 3600, {"priority": "normal"}, True,
        tickets={"created": 1, "solved": 1, "first_solved": 1, "fcr": 1, "reopened": 1},
        resolution_seconds=S1(240.0), sla=sla(fr=(1, 0), res=(1, 0))),
]

# ---------------------------------------------------------------------------
# max_future  (--windows 1h --group-by "" --now 2026-11-22T12:30:00Z
#   --max-future-seconds 1800)
#
# Invalid (bad_timestamp, "... in the future") iff time - now > 1800 s, i.e.
# after 13:00:00.000Z, compared after the offset and ms truncation.
# L1 order 10 at 11:00 (WM 10:59:30).
# L2 F1 created at 2027-01-01: in the future -> dead letter; it neither
#   creates F1 nor moves the watermark.
# L3 message on F1 at 11:01: F1 was never created -> "unknown ticket".
# L4 order 20 at 11:30: not late (had L2 been applied, WM would be 2026-12-31
#   23:59:30 and every window closed).  WM 11:29:30.
# L5 order 40 at 13:00:00: exactly 1800 s ahead -> valid.  WM 12:59:30 closes
#   [11:00, 12:00): orders 2, revenue 30.
# L6 13:00:00.001Z and L7 14:00:00.001+01:00 (= 13:00:00.001Z): 1800.001 s
#   -> invalid.
# L8 13:00:00.0009Z: the digits beyond the ms are dropped first -> 13:00:00.000
#   -> valid (80).  L9 14:00:00+01:00 = 13:00:00Z -> valid (160).
# End M = 13:00: [13:00) partial: orders 3, revenue 280.
# ---------------------------------------------------------------------------
_MF = _lines("max_future")
CASES["max_future"] = [
    deadletter("bad_timestamp", _MF[1], 2, "max_future"),
    deadletter("unknown ticket", _MF[2], 3, "max_future"),
    kpi("2026-11-22T11:00:00Z", "2026-11-22T12:00:00Z", 3600,
        orders={"placed": 2, "revenue": 30.0}),
    deadletter("bad_timestamp", _MF[5], 6, "max_future"),
    deadletter("bad_timestamp", _MF[6], 7, "max_future"),
    kpi("2026-11-22T13:00:00Z", "2026-11-22T14:00:00Z", 3600, partial=True,
        orders={"placed": 3, "revenue": 280.0}),
]

# ---------------------------------------------------------------------------
# number_bounds  (--windows 1h --group-by "")
#
# REVISED SPEC §1: numbers are finite; handle_seconds <= 604,800 and amount
# <= 10^12; beyond: invalid, reason out_of_range.
# Valid: L1 handle 604800 (the bound), L5 handle 0.25, L7 amount
#   1000000000000 and L8 1e12 (both = 10^12), L12 amount 0.
# out_of_range: L2 604800.001, L3 604801, L4 -0.5 (< 0), L9 1000000000000.5,
#   L10 1e13, L11 1e400 (a JSON number beyond any double: not finite, and
#   above 10^12 anyway), L14 nps 11, L15 csat 0, L17 nps 99999999999999999999
#   (a JSON integer out of range).
# Other invalid: L6 handle "5" (wrong type), L13 NaN (not JSON), L16 ces 1e0
#   (not a JSON integer).
# M = 10:00:11 (L12): [10:00) partial: handle [0.25, 604800]: mean
#   302400.125, p50 rank 1 = 0.25, p90/p99 rank 2 = 604800; orders 3, revenue
#   2 * 10^12.
# ---------------------------------------------------------------------------
_NB = _lines("number_bounds")
CASES["number_bounds"] = [
    deadletter(reason, _NB[line - 1], line, "number_bounds")
    for line, reason in ((2, "out_of_range"), (3, "out_of_range"), (4, "out_of_range"),
                         (6, "wrong_type"), (9, "out_of_range"), (10, "out_of_range"),
                         (11, "out_of_range"), (13, "invalid_json"), (14, "out_of_range"),
                         (15, "out_of_range"), (16, "wrong_type"), (17, "out_of_range"))
] + [
    kpi(H10, H11, 3600, partial=True,
        handle_seconds=S(2, 0.25, 604800.0, 302400.125, 0.25, 604800.0, 604800.0),
        orders={"placed": 3, "revenue": 2000000000000.0}),
]

# ---------------------------------------------------------------------------
# event_size  (--windows 1h --group-by "" --max-event-bytes 200)
# input written by make_size_cases.py
#
# L1 exactly 200 bytes: not larger than the limit -> accepted (order 1).
# L2 201 bytes -> bad_length; its escaped form is far below 64 KiB: the whole
#   payload, "size": 201.
# L3 196 characters but 296 bytes (100 x U+00FC, 2 bytes each) -> bad_length,
#   size 296 (bytes, not characters), whole payload.
# L4 order 4.  M = 10:00:03: [10:00) partial, orders 2, revenue 5.
# ---------------------------------------------------------------------------
_ES = _lines("event_size")
CASES["event_size"] = [
    deadletter("bad_length", _ES[1], 2, "event_size", size=201),
    deadletter("bad_length", _ES[2], 3, "event_size", size=296),
    kpi(H10, H11, 3600, partial=True, orders={"placed": 2, "revenue": 5.0}),
]

# ---------------------------------------------------------------------------
# payload_truncation  (--windows 1h --group-by "" --max-event-bytes 1000)
# input written by make_size_cases.py
#
# SPEC §1: the dead letter of an oversized event carries the longest prefix of
# the payload whose JSON-escaped form fits in 64 KiB = 65536 bytes.  Measure
# (see README): the bytes of the escaped string content as the record writes
# it, WITHOUT the two enclosing quotes; '"' '\' TAB etc. take 2 bytes, other
# controls 6 (\u00XX), other characters their UTF-8 length; the prefix never
# splits a character.
# L1 'x'*10 + '"'*32800 (32810 bytes): 10 + 2k <= 65536 -> k = 32763, exactly
#   65536 bytes escaped.
# L2 U+0001 * 10922 + "abcde" (10927 bytes): 6 * 10922 = 65532; "abcd" fills
#   the last 4 bytes exactly; "e" would make 65537.
# L3 '\'*32766 + TAB + U+1F600 + "z" (32772 bytes): 65532 + 2 = 65534; the
#   emoji (4 bytes) would make 65538 -> cut before it, even though "z" alone
#   would still fit: a prefix is contiguous.
# L4 order 3 (valid).  L5 1001 bytes: too large, but it fits escaped: whole.
# M = 10:00:00 (L4): [10:00) partial, order 3.
# ---------------------------------------------------------------------------
_PT = _lines("payload_truncation")
CASES["payload_truncation"] = [
    deadletter("bad_length", "x" * 10 + '"' * 32763, 1, "payload_truncation", size=32810),
    deadletter("bad_length", "\x01" * 10922 + "abcd", 2, "payload_truncation", size=10927),
    deadletter("bad_length", "\\" * 32766 + "\t", 3, "payload_truncation", size=32772),
    deadletter("bad_length", _PT[4], 5, "payload_truncation", size=1001),
    kpi(H10, H11, 3600, partial=True, orders={"placed": 1, "revenue": 3.0}),
]

def main():
    for name, records in CASES.items():
        path = os.path.join(HERE, name + ".expected.jsonl")
        with open(path, "w", encoding="utf-8") as f:
            for r in records:
                f.write(json.dumps(r, ensure_ascii=False, separators=(",", ":")) + "\n")
        print("wrote", os.path.relpath(path), len(records), "records")


if __name__ == "__main__":
    main()
