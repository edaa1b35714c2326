//! JSON shaping of window records (SPEC §4): the KPI fields of a `kpi.window` record and the
//! duration summary object. Choices where SPEC allows several are in the README: every block
//! is present, an empty summary is `{"count":0}`, ratios are `null` without a denominator.

use serde_json::{json, Map, Value};

use super::aggregate::{band_idx, Aggregate};
use super::duration::DurationAgg;
use super::hdr::{encode_hdr, encode_hdr_values};
use crate::kpi::Band;

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
}
