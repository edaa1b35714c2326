//! JSON shaping of window records (SPEC §4): the KPI fields of a `kpi.window` record and the
//! duration summary object. Choices where SPEC allows several are in the README: every block
//! is present, an empty summary is `{"count":0}`, ratios are `null` without a denominator.

use serde_json::{json, Map, Value};

use super::aggregate::{band_idx, Aggregate};
use super::duration::{DurationAgg, SMALL};
use super::hdr::{encode_hdr, encode_hdr_values, write_hdr, write_hdr_sorted};
use crate::kpi::Band;
use crate::output::jsonw::Obj;

fn ratio(num: u64, den: u64) -> Value {
    if den == 0 {
        Value::Null
    } else {
        json!(num as f64 / den as f64)
    }
}

/// The summary object of SPEC §4: count, min, max, mean, p50, p90, p99 and `hdr`.
pub fn summary_json(d: &DurationAgg) -> Value {
    if d.count == 0 {
        return json!({"count": 0});
    }
    let mut m = Map::new();
    m.insert("count".into(), json!(d.count));
    m.insert("min".into(), json!(d.min));
    m.insert("max".into(), json!(d.max));
    m.insert("mean".into(), json!(d.sum / d.count as f64));
    if let Some([p50, p90, p99]) = d.percentiles([50, 90, 99]) {
        m.insert("p50".into(), json!(p50));
        m.insert("p90".into(), json!(p90));
        m.insert("p99".into(), json!(p99));
    }
    if let Some(h) = d.hist() {
        m.insert("hdr".into(), json!(encode_hdr(h)));
    } else if !d.small().is_empty() {
        m.insert("hdr".into(), json!(encode_hdr_values(d.small())));
    }
    Value::Object(m)
}

/// [`summary_json`], written straight into `out` (the same bytes as its `to_string()`).
pub fn write_summary(d: &DurationAgg, out: &mut Vec<u8>) {
    let mut o = Obj::new(out);
    o.int("count", d.count);
    if d.count > 0 {
        o.float("min", d.min);
        o.float("max", d.max);
        o.float("mean", d.sum / d.count as f64);
        // Small summaries: the kept values sorted once, for the percentiles and the `hdr`.
        let mut buf = [0; SMALL];
        let sorted = d.sorted_small(&mut buf);
        if let Some([p50, p90, p99]) = d.percentiles_sorted(sorted, [50, 90, 99]) {
            o.float("p50", p50);
            o.float("p90", p90);
            o.float("p99", p99);
        }
        if d.hist().is_some() || !sorted.is_empty() {
            // base64 needs no JSON escaping: written straight between the quotes.
            let out = o.key("hdr");
            out.push(b'"');
            match d.hist() {
                Some(h) => write_hdr(h, out),
                None => write_hdr_sorted(sorted, out),
            }
            out.push(b'"');
        }
    }
    o.end();
}

fn write_ratio(o: &mut Obj<'_>, k: &str, num: u64, den: u64) {
    o.opt_float(k, (den != 0).then(|| num as f64 / den as f64));
}

/// [`kpi_fields`], written straight into the object `o` (the same bytes).
pub fn write_kpi_fields(a: &Aggregate, o: &mut Obj<'_>, with_after_sales: bool) {
    let t = &a.tickets;
    o.obj("tickets", |o| {
        o.int("created", t.created);
        o.int("solved", t.solved);
        o.int("first_solved", t.first_solved);
        o.int("fcr", t.fcr);
        o.int("reopened", t.reopened);
        o.int("escalated", t.escalated);
    });
    write_summary(&a.first_response, o.key("first_response_seconds"));
    write_summary(&a.resolution, o.key("resolution_seconds"));
    write_summary(&a.handle, o.key("handle_seconds"));
    o.obj("csat", |o| {
        o.int("responses", a.csat_responses);
        o.int("satisfied", a.csat_satisfied);
        write_ratio(o, "ratio", a.csat_satisfied, a.csat_responses);
        write_ratio(o, "mean", a.csat_sum, a.csat_responses);
    });
    o.obj("nps", |o| {
        o.int("responses", a.nps_responses());
        o.int("promoters", a.nps_promoters);
        o.int("passives", a.nps_passives);
        o.int("detractors", a.nps_detractors);
        o.opt_float("score", a.nps_score());
    });
    o.obj("ces", |o| {
        o.int("responses", a.ces_responses);
        write_ratio(o, "mean", a.ces_sum, a.ces_responses);
    });
    let [fr, res] = a.sla;
    o.obj("sla", |o| {
        for (k, c) in [("first_response", fr), ("resolution", res)] {
            o.obj(k, |o| {
                o.int("achieved", c.achieved);
                o.int("breached", c.breached);
            });
        }
    });
    o.obj("orders", |o| {
        o.int("placed", a.orders_placed);
        o.float("revenue", a.revenue);
        o.int("returned", a.returned);
        o.int("warranty_claims", a.warranty_claims);
    });
    o.obj("customers", |o| o.int("churned", a.churned));
    if with_after_sales {
        let c = &a.churn_signals;
        o.obj("churn_signals", |o| {
            o.int("signalled", c.signalled);
            o.int("confirmed", c.confirmed);
            o.int("expired_without_churn", c.expired_without_churn);
            o.int("churned", c.churned);
            o.int("churned_after_signal", c.churned_after_signal);
        });
        o.obj("recovery", |o| {
            o.int("opened", a.recovery_opened);
            o.int("answered", a.recovery_answered);
            o.int("overdue", a.recovery_overdue);
            write_summary(&a.recovery_answer, o.key("answer_seconds"));
        });
        o.obj("repurchase", |o| {
            for b in Band::ALL {
                let r = a.repurchase[band_idx(b)];
                o.obj(b.as_str(), |o| {
                    o.int("converted", r.converted);
                    o.int("expired", r.expired);
                });
            }
        });
    }
}

/// The KPI fields of a `kpi.window` record (SPEC §4). `with_after_sales` adds the §5
/// blocks, which belong to the `{}` group only.
pub fn kpi_fields(a: &Aggregate, out: &mut Map<String, Value>, with_after_sales: bool) {
    let t = &a.tickets;
    out.insert(
        "tickets".into(),
        json!({"created": t.created, "solved": t.solved, "first_solved": t.first_solved,
               "fcr": t.fcr, "reopened": t.reopened, "escalated": t.escalated}),
    );
    out.insert(
        "first_response_seconds".into(),
        summary_json(&a.first_response),
    );
    out.insert("resolution_seconds".into(), summary_json(&a.resolution));
    out.insert("handle_seconds".into(), summary_json(&a.handle));
    out.insert(
        "csat".into(),
        json!({"responses": a.csat_responses, "satisfied": a.csat_satisfied,
               "ratio": ratio(a.csat_satisfied, a.csat_responses),
               "mean": ratio(a.csat_sum, a.csat_responses)}),
    );
    out.insert(
        "nps".into(),
        json!({"responses": a.nps_responses(), "promoters": a.nps_promoters,
               "passives": a.nps_passives, "detractors": a.nps_detractors,
               "score": a.nps_score()}),
    );
    out.insert(
        "ces".into(),
        json!({"responses": a.ces_responses, "mean": ratio(a.ces_sum, a.ces_responses)}),
    );
    let [fr, res] = a.sla;
    out.insert(
        "sla".into(),
        json!({"first_response": {"achieved": fr.achieved, "breached": fr.breached},
               "resolution": {"achieved": res.achieved, "breached": res.breached}}),
    );
    out.insert(
        "orders".into(),
        json!({"placed": a.orders_placed, "revenue": a.revenue,
               "returned": a.returned, "warranty_claims": a.warranty_claims}),
    );
    out.insert("customers".into(), json!({"churned": a.churned}));
    if with_after_sales {
        let c = &a.churn_signals;
        out.insert(
            "churn_signals".into(),
            json!({"signalled": c.signalled, "confirmed": c.confirmed,
                   "expired_without_churn": c.expired_without_churn,
                   "churned": c.churned, "churned_after_signal": c.churned_after_signal}),
        );
        out.insert(
            "recovery".into(),
            json!({"opened": a.recovery_opened, "answered": a.recovery_answered,
                   "overdue": a.recovery_overdue,
                   "answer_seconds": summary_json(&a.recovery_answer)}),
        );
        let mut rep = Map::new();
        for b in Band::ALL {
            let o = a.repurchase[band_idx(b)];
            rep.insert(
                b.as_str().into(),
                json!({"converted": o.converted, "expired": o.expired}),
            );
        }
        out.insert("repurchase".into(), Value::Object(rep));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ratios_are_null_without_denominator() {
        let a = Aggregate::default();
        let mut m = Map::new();
        kpi_fields(&a, &mut m, false);
        assert_eq!(m["csat"]["ratio"], Value::Null);
        assert_eq!(m["nps"]["score"], Value::Null);
        assert_eq!(m["first_response_seconds"], json!({"count": 0}));
        assert!(!m.contains_key("recovery"));
    }

    #[test]
    fn written_fields_are_the_values_fields() {
        let mut a = Aggregate::default();
        for i in 0..300i64 {
            a.apply(&crate::kpi::Kpi::FirstResponse(i * 7_919 % 500_000), 0);
            if i % 3 == 0 {
                a.apply(&crate::kpi::Kpi::Handle(i as f64 / 7.0), 2);
                a.apply(&crate::kpi::Kpi::Csat((i % 5 + 1) as u8), 1);
                a.apply(&crate::kpi::Kpi::OrderPlaced(i as f64 * 1.1), 1);
            }
        }
        a.apply(
            &crate::kpi::Kpi::Solved {
                resolution: 1234,
                first: true,
                fcr: false,
            },
            0,
        );
        for agg in [Aggregate::default(), a] {
            for after_sales in [false, true] {
                let mut m = Map::new();
                kpi_fields(&agg, &mut m, after_sales);
                let mut out = Vec::new();
                let mut o = Obj::new(&mut out);
                write_kpi_fields(&agg, &mut o, after_sales);
                o.end();
                assert_eq!(
                    String::from_utf8(out).unwrap(),
                    Value::Object(m).to_string()
                );
            }
        }
    }
}
