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


def kpi(start, end, size, group=None, partial=False, **over):
    rec = zero_record({} if group is None else group)
    rec["window"] = {"start": start, "end": end, "size_seconds": size}
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


def main():
    for name, records in CASES.items():
        path = os.path.join(HERE, name + ".expected.jsonl")
        with open(path, "w", encoding="utf-8") as f:
            for r in records:
                f.write(json.dumps(r, ensure_ascii=False, separators=(",", ":")) + "\n")
        print("wrote", os.path.relpath(path), len(records), "records")


if __name__ == "__main__":
    main()
