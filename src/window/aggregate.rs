//! Mergeable window aggregates: exact counts and sums, exact min/max/mean, and an HDR
//! histogram (3 significant digits over milliseconds) per duration.

use base64::Engine as _;
use hdrhistogram::serialization::Serializer;
use hdrhistogram::Histogram;
use serde_json::{json, Map, Value};

use crate::kpi::{csat_satisfied, Band, Kpi, NpsClass, SlaKind};

/// Significant digits of every duration histogram (SPEC §4: at least 3).
pub const SIGFIG: u8 = 3;

/// A duration summary: exact count/sum/min/max in seconds plus an HDR histogram in ms.
#[derive(Debug, Clone, Default)]
pub struct DurationAgg {
    pub count: u64,
    pub sum: f64,
    pub min: f64,
    pub max: f64,
    /// The ms values themselves while there are at most [`SMALL`] of them (most window ×
    /// group summaries): exact percentiles and a sparse `hdr` encoding, without the dense
    /// counts array of an HDR histogram (up to ~19k counters for values of days).
    small: Vec<u64>,
    hist: Option<Histogram<u64>>,
}

/// Summaries with at most this many values keep them instead of a histogram.
pub const SMALL: usize = 128;

impl DurationAgg {
    /// Records a duration given in ms.
    pub fn record_ms(&mut self, ms: i64) {
        self.record(ms as f64 / 1000.0, ms.max(0) as u64);
    }

    /// Records a duration given in seconds (kept exactly for min/max/mean), rounded to the
    /// millisecond for the histogram.
    pub fn record_seconds(&mut self, seconds: f64) {
        let ms = (seconds * 1000.0).round();
        let ms = if ms.is_finite() && ms >= 0.0 {
            ms.min(u64::MAX as f64 / 4.0) as u64
        } else {
            0
        };
        self.record(seconds, ms);
    }

    fn record(&mut self, seconds: f64, ms: u64) {
        if self.count == 0 {
            self.min = seconds;
            self.max = seconds;
        } else {
            self.min = self.min.min(seconds);
            self.max = self.max.max(seconds);
        }
        self.count += 1;
        self.sum += seconds;
        match &mut self.hist {
            // Auto-resizing histogram: recording cannot fail for any u64 we pass.
            Some(h) => {
                let _ = h.record(ms);
            }
            None if self.small.len() < SMALL => self.small.push(ms),
            None => {
                let h = self.materialize();
                let _ = h.record(ms);
            }
        }
    }

    /// Moves the kept values into a histogram (from now on the summary uses it).
    fn materialize(&mut self) -> &mut Histogram<u64> {
        let mut h = new_histogram();
        for v in self.small.drain(..) {
            let _ = h.record(v);
        }
        self.hist.insert(h)
    }

    pub fn merge(&mut self, other: &DurationAgg) {
        if other.count == 0 {
            return;
        }
        if self.count == 0 {
            self.min = other.min;
            self.max = other.max;
        } else {
            self.min = self.min.min(other.min);
            self.max = self.max.max(other.max);
        }
        self.count += other.count;
        self.sum += other.sum;
        if self.hist.is_none()
            && other.hist.is_none()
            && self.small.len() + other.small.len() <= SMALL
        {
            self.small.extend_from_slice(&other.small);
            return;
        }
        let h = match self.hist {
            Some(ref mut h) => h,
            None => self.materialize(),
        };
        match &other.hist {
            Some(oh) => {
                let _ = h.add(oh);
            }
            None => {
                for v in &other.small {
                    let _ = h.record(*v);
                }
            }
        }
    }

    /// The values as an HDR histogram (built from the kept values for small summaries).
    pub fn histogram(&self) -> Option<std::borrow::Cow<'_, Histogram<u64>>> {
        if let Some(h) = &self.hist {
            return Some(std::borrow::Cow::Borrowed(h));
        }
        if self.small.is_empty() {
            return None;
        }
        let mut h = new_histogram();
        for v in &self.small {
            let _ = h.record(*v);
        }
        Some(std::borrow::Cow::Owned(h))
    }

    /// Nearest-rank percentile in seconds: the value of rank ⌈p·n/100⌉ (SPEC §4), read from the
    /// histogram and clamped to the exact min and max.
    pub fn percentile(&self, p: u64) -> Option<f64> {
        self.percentiles([p]).map(|[v]| v)
    }

    /// Several nearest-rank percentiles (ascending `ps`) in one pass over the histogram.
    pub fn percentiles<const N: usize>(&self, ps: [u64; N]) -> Option<[f64; N]> {
        if self.hist.is_none() && !self.small.is_empty() {
            // Exact nearest-rank over the kept values.
            let mut v = self.small.clone();
            v.sort_unstable();
            let n = v.len() as u64;
            return Some(ps.map(|p| {
                let rank = (p * n).div_ceil(100).max(1) as usize;
                (v[rank - 1] as f64 / 1000.0).clamp(self.min, self.max)
            }));
        }
        let h = self.hist.as_ref()?;
        let n = h.len();
        if n == 0 {
            return None;
        }
        // Quantile (rank − ½)/n makes the histogram's ⌈q·n⌉ land exactly on the rank, free of
        // floating-point error (0.99 · 100 is 99.000…01 in binary).
        let qs = ps.map(|p| ((p * n).div_ceil(100).max(1) as f64 - 0.5) / n as f64);
        let mut out = [self.max; N];
        for (o, ms) in out.iter_mut().zip(h.value_at_quantiles(qs)) {
            *o = (ms as f64 / 1000.0).clamp(self.min, self.max);
        }
        Some(out)
    }

    /// The summary object of SPEC §4: count, min, max, mean, p50, p90, p99 and `hdr`.
    pub fn to_json(&self) -> Value {
        if self.count == 0 {
            return json!({"count": 0});
        }
        let mut m = Map::new();
        m.insert("count".into(), json!(self.count));
        m.insert("min".into(), json!(self.min));
        m.insert("max".into(), json!(self.max));
        m.insert("mean".into(), json!(self.sum / self.count as f64));
        if let Some([p50, p90, p99]) = self.percentiles([50, 90, 99]) {
            m.insert("p50".into(), json!(p50));
            m.insert("p90".into(), json!(p90));
            m.insert("p99".into(), json!(p99));
        }
        if let Some(h) = &self.hist {
            m.insert("hdr".into(), json!(encode_hdr(h)));
        } else if !self.small.is_empty() {
            m.insert("hdr".into(), json!(encode_hdr_values(&self.small)));
        }
        Value::Object(m)
    }
}

fn new_histogram() -> Histogram<u64> {
    // 3 significant digits, auto-resizing: values are ms from 0 up.
    Histogram::new(SIGFIG).expect("3 significant digits is a valid HDR configuration")
}

/// HdrHistogram V2 compressed encoding, base64 (standard alphabet, padded): what the Java,
/// Go and Rust HdrHistogram libraries decode.
///
/// Byte for byte what `hdrhistogram`'s `V2DeflateSerializer` writes (cookie, length, zlib of
/// the V2 encoding), but with the zlib compressor and buffers reused per thread: allocating a
/// fresh compressor for each of hundreds of thousands of window summaries dominated replay.
pub fn encode_hdr(h: &Histogram<u64>) -> String {
    thread_local! {
        static ENCODER: std::cell::RefCell<HdrEncoder> = std::cell::RefCell::new(HdrEncoder::new());
    }
    ENCODER.with(|e| e.borrow_mut().encode(h))
}

/// [`encode_hdr`] of the histogram holding `values` (ms) with lowest discernible value 1,
/// 3 significant digits and highest trackable value max(2, largest value), written straight
/// from the sorted values: the same bytes as building that histogram and serializing it
/// (checked by a unit test), without its dense counts array.
pub fn encode_hdr_values(values: &[u64]) -> String {
    thread_local! {
        static ENCODER: std::cell::RefCell<HdrEncoder> = std::cell::RefCell::new(HdrEncoder::new());
    }
    ENCODER.with(|e| e.borrow_mut().encode_values(values))
}

/// Counts-array index of `v` for lowest discernible value 1 and 3 significant digits:
/// sub-bucket count 2048 (half 1024), unit magnitude 0, leading-zero base 64 − 11.
fn hdr_index(v: u64) -> u64 {
    let bucket = 53 - (v | 2047).leading_zeros() as u64;
    let sub_bucket = v >> bucket;
    ((bucket + 1) << 10) + sub_bucket - 1024
}

fn push_varint(out: &mut Vec<u8>, n: i64) {
    // zig-zag, then LEB128 (the 9-byte form only differs beyond 2^56, unreachable here)
    let mut z = ((n << 1) ^ (n >> 63)) as u64;
    loop {
        let byte = (z & 0x7f) as u8;
        z >>= 7;
        if z == 0 {
            out.push(byte);
            return;
        }
        out.push(byte | 0x80);
    }
}

/// The V2 (uncompressed) cookie and the V2 compressed cookie of the HdrHistogram format.
const V2_COOKIE: u32 = 0x1c84_9313;
const V2_COMPRESSED_COOKIE: u32 = 0x1c84_9314;

struct HdrEncoder {
    v2: hdrhistogram::serialization::V2Serializer,
    plain: Vec<u8>,
    out: Vec<u8>,
    zlib: flate2::Compress,
}

impl HdrEncoder {
    fn new() -> Self {
        HdrEncoder {
            v2: hdrhistogram::serialization::V2Serializer::new(),
            plain: Vec::new(),
            out: Vec::new(),
            zlib: flate2::Compress::new(flate2::Compression::default(), true),
        }
    }

    fn encode(&mut self, h: &Histogram<u64>) -> String {
        self.plain.clear();
        if self.v2.serialize(h, &mut self.plain).is_err() {
            return String::new();
        }
        self.compress()
    }

    fn encode_values(&mut self, values: &[u64]) -> String {
        let mut sorted = values.to_vec();
        sorted.sort_unstable();
        let highest = sorted.last().copied().unwrap_or(0).max(2);
        let p = &mut self.plain;
        p.clear();
        p.extend_from_slice(&V2_COOKIE.to_be_bytes());
        p.extend_from_slice(&[0; 4]); // payload length, below
        p.extend_from_slice(&0u32.to_be_bytes()); // normalizing index offset
        p.extend_from_slice(&u32::from(SIGFIG).to_be_bytes());
        p.extend_from_slice(&1u64.to_be_bytes()); // lowest discernible value
        p.extend_from_slice(&highest.to_be_bytes());
        p.extend_from_slice(&1.0f64.to_be_bytes()); // integer to double ratio
        let header = p.len();
        let mut next = 0u64; // next counts index to write
        let mut i = 0;
        while i < sorted.len() {
            let idx = hdr_index(sorted[i]);
            let mut count = 0i64;
            while i < sorted.len() && hdr_index(sorted[i]) == idx {
                count += 1;
                i += 1;
            }
            match idx - next {
                0 => {}
                1 => push_varint(p, 0),
                gap => push_varint(p, -(gap as i64)),
            }
            push_varint(p, count);
            next = idx + 1;
        }
        let len = (p.len() - header) as u32;
        p[4..8].copy_from_slice(&len.to_be_bytes());
        self.compress()
    }

    fn compress(&mut self) -> String {
        self.out.clear();
        self.out
            .extend_from_slice(&V2_COMPRESSED_COOKIE.to_be_bytes());
        self.out.extend_from_slice(&[0; 4]);
        self.out.reserve(self.plain.len() + 64);
        self.zlib.reset();
        loop {
            let consumed = self.zlib.total_in() as usize;
            match self.zlib.compress_vec(
                &self.plain[consumed..],
                &mut self.out,
                flate2::FlushCompress::Finish,
            ) {
                Ok(flate2::Status::StreamEnd) => break,
                Ok(_) => self.out.reserve(self.out.capacity().max(64)),
                Err(_) => return String::new(),
            }
        }
        let len = (self.out.len() - 8) as u32;
        self.out[4..8].copy_from_slice(&len.to_be_bytes());
        base64::engine::general_purpose::STANDARD.encode(&self.out)
    }
}

/// Decodes what [`encode_hdr`] produced.
pub fn decode_hdr(s: &str) -> Option<Histogram<u64>> {
    let bytes = base64::engine::general_purpose::STANDARD.decode(s).ok()?;
    hdrhistogram::serialization::Deserializer::new()
        .deserialize(&mut std::io::Cursor::new(bytes))
        .ok()
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TicketCounts {
    pub created: u64,
    pub solved: u64,
    pub first_solved: u64,
    pub fcr: u64,
    pub reopened: u64,
    pub escalated: u64,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SlaCounts {
    pub achieved: u64,
    pub breached: u64,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ChurnSignalCounts {
    pub signalled: u64,
    pub confirmed: u64,
    pub expired_without_churn: u64,
    pub churned: u64,
    pub churned_after_signal: u64,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Outcomes {
    pub converted: u64,
    pub expired: u64,
}

/// Everything one window × group accumulates.
#[derive(Debug, Clone, Default)]
pub struct Aggregate {
    pub tickets: TicketCounts,
    pub first_response: DurationAgg,
    pub resolution: DurationAgg,
    pub handle: DurationAgg,
    pub csat_responses: u64,
    pub csat_satisfied: u64,
    pub csat_sum: u64,
    pub nps_promoters: u64,
    pub nps_passives: u64,
    pub nps_detractors: u64,
    pub ces_responses: u64,
    pub ces_sum: u64,
    pub sla: [SlaCounts; 2],
    pub orders_placed: u64,
    pub revenue: f64,
    pub returned: u64,
    pub warranty_claims: u64,
    pub churned: u64,
    pub churn_signals: ChurnSignalCounts,
    pub recovery_opened: u64,
    pub recovery_answered: u64,
    pub recovery_overdue: u64,
    pub recovery_answer: DurationAgg,
    pub repurchase: [Outcomes; 4],
    /// Sorted input partitions whose events contributed.
    pub partitions: Vec<i32>,
}

fn sla_idx(k: SlaKind) -> usize {
    match k {
        SlaKind::FirstResponse => 0,
        SlaKind::Resolution => 1,
    }
}

fn band_idx(b: Band) -> usize {
    match b {
        Band::Satisfied => 0,
        Band::Neutral => 1,
        Band::Dissatisfied => 2,
        Band::Unrated => 3,
    }
}

fn ratio(num: u64, den: u64) -> Value {
    if den == 0 {
        Value::Null
    } else {
        json!(num as f64 / den as f64)
    }
}

impl Aggregate {
    /// Adds one measurement (SPEC §3 and §5 table rows).
    pub fn apply(&mut self, kpi: &Kpi, partition: i32) {
        if let Err(i) = self.partitions.binary_search(&partition) {
            self.partitions.insert(i, partition);
        }
        let t = &mut self.tickets;
        match *kpi {
            Kpi::Created => t.created += 1,
            Kpi::FirstResponse(ms) => self.first_response.record_ms(ms),
            Kpi::Solved {
                resolution,
                first,
                fcr,
            } => {
                t.solved += 1;
                self.resolution.record_ms(resolution);
                if first {
                    t.first_solved += 1;
                    if fcr {
                        t.fcr += 1;
                    }
                }
            }
            Kpi::Reopened => t.reopened += 1,
            Kpi::Escalated => t.escalated += 1,
            Kpi::Handle(s) => self.handle.record_seconds(s),
            Kpi::Csat(score) => {
                self.csat_responses += 1;
                self.csat_sum += score as u64;
                if csat_satisfied(score) {
                    self.csat_satisfied += 1;
                }
            }
            Kpi::Nps(score) => match NpsClass::of(score) {
                NpsClass::Promoter => self.nps_promoters += 1,
                NpsClass::Passive => self.nps_passives += 1,
                NpsClass::Detractor => self.nps_detractors += 1,
            },
            Kpi::Ces(score) => {
                self.ces_responses += 1;
                self.ces_sum += score as u64;
            }
            Kpi::Sla { kind, breached } => {
                let c = &mut self.sla[sla_idx(kind)];
                if breached {
                    c.breached += 1
                } else {
                    c.achieved += 1
                }
            }
            Kpi::OrderPlaced(amount) => {
                self.orders_placed += 1;
                self.revenue += amount;
            }
            Kpi::Returned => self.returned += 1,
            Kpi::WarrantyClaim => self.warranty_claims += 1,
            Kpi::Churned => self.churned += 1,
            Kpi::ChurnSignalled => self.churn_signals.signalled += 1,
            Kpi::ChurnConfirmed => self.churn_signals.confirmed += 1,
            Kpi::ChurnExpired => self.churn_signals.expired_without_churn += 1,
            Kpi::ChurnOutcome { after_signal } => {
                self.churn_signals.churned += 1;
                if after_signal {
                    self.churn_signals.churned_after_signal += 1;
                }
            }
            Kpi::RecoveryOpened => self.recovery_opened += 1,
            Kpi::RecoveryAnswered(ms) => {
                self.recovery_answered += 1;
                self.recovery_answer.record_ms(ms);
            }
            Kpi::RecoveryOverdue => self.recovery_overdue += 1,
            Kpi::Repurchase { band, converted } => {
                let o = &mut self.repurchase[band_idx(band)];
                if converted {
                    o.converted += 1
                } else {
                    o.expired += 1
                }
            }
        }
    }

    /// Adds another aggregate of the same window × group (counts add, histograms merge).
    pub fn merge(&mut self, o: &Aggregate) {
        let t = &mut self.tickets;
        t.created += o.tickets.created;
        t.solved += o.tickets.solved;
        t.first_solved += o.tickets.first_solved;
        t.fcr += o.tickets.fcr;
        t.reopened += o.tickets.reopened;
        t.escalated += o.tickets.escalated;
        self.first_response.merge(&o.first_response);
        self.resolution.merge(&o.resolution);
        self.handle.merge(&o.handle);
        self.csat_responses += o.csat_responses;
        self.csat_satisfied += o.csat_satisfied;
        self.csat_sum += o.csat_sum;
        self.nps_promoters += o.nps_promoters;
        self.nps_passives += o.nps_passives;
        self.nps_detractors += o.nps_detractors;
        self.ces_responses += o.ces_responses;
        self.ces_sum += o.ces_sum;
        for i in 0..2 {
            self.sla[i].achieved += o.sla[i].achieved;
            self.sla[i].breached += o.sla[i].breached;
        }
        self.orders_placed += o.orders_placed;
        self.revenue += o.revenue;
        self.returned += o.returned;
        self.warranty_claims += o.warranty_claims;
        self.churned += o.churned;
        let c = &mut self.churn_signals;
        c.signalled += o.churn_signals.signalled;
        c.confirmed += o.churn_signals.confirmed;
        c.expired_without_churn += o.churn_signals.expired_without_churn;
        c.churned += o.churn_signals.churned;
        c.churned_after_signal += o.churn_signals.churned_after_signal;
        self.recovery_opened += o.recovery_opened;
        self.recovery_answered += o.recovery_answered;
        self.recovery_overdue += o.recovery_overdue;
        self.recovery_answer.merge(&o.recovery_answer);
        for i in 0..4 {
            self.repurchase[i].converted += o.repurchase[i].converted;
            self.repurchase[i].expired += o.repurchase[i].expired;
        }
        for p in &o.partitions {
            if let Err(i) = self.partitions.binary_search(p) {
                self.partitions.insert(i, *p);
            }
        }
    }

    pub fn csat_ratio(&self) -> Option<f64> {
        (self.csat_responses > 0).then(|| self.csat_satisfied as f64 / self.csat_responses as f64)
    }

    pub fn fcr_ratio(&self) -> Option<f64> {
        (self.tickets.first_solved > 0)
            .then(|| self.tickets.fcr as f64 / self.tickets.first_solved as f64)
    }

    pub fn nps_responses(&self) -> u64 {
        self.nps_promoters + self.nps_passives + self.nps_detractors
    }

    /// NPS = 100 × (promoters − detractors) / responses.
    pub fn nps_score(&self) -> Option<f64> {
        let n = self.nps_responses();
        (n > 0).then(|| 100.0 * (self.nps_promoters as f64 - self.nps_detractors as f64) / n as f64)
    }

    /// The KPI fields of a `kpi.window` record (SPEC §4). `with_after_sales` adds the §5
    /// blocks, which belong to the `{}` group only.
    pub fn kpi_fields(&self, out: &mut Map<String, Value>, with_after_sales: bool) {
        let t = &self.tickets;
        out.insert(
            "tickets".into(),
            json!({"created": t.created, "solved": t.solved, "first_solved": t.first_solved,
                   "fcr": t.fcr, "reopened": t.reopened, "escalated": t.escalated}),
        );
        out.insert(
            "first_response_seconds".into(),
            self.first_response.to_json(),
        );
        out.insert("resolution_seconds".into(), self.resolution.to_json());
        out.insert("handle_seconds".into(), self.handle.to_json());
        out.insert(
            "csat".into(),
            json!({"responses": self.csat_responses, "satisfied": self.csat_satisfied,
                   "ratio": ratio(self.csat_satisfied, self.csat_responses),
                   "mean": ratio(self.csat_sum, self.csat_responses)}),
        );
        out.insert(
            "nps".into(),
            json!({"responses": self.nps_responses(), "promoters": self.nps_promoters,
                   "passives": self.nps_passives, "detractors": self.nps_detractors,
                   "score": self.nps_score()}),
        );
        out.insert(
            "ces".into(),
            json!({"responses": self.ces_responses, "mean": ratio(self.ces_sum, self.ces_responses)}),
        );
        let [fr, res] = self.sla;
        out.insert(
            "sla".into(),
            json!({"first_response": {"achieved": fr.achieved, "breached": fr.breached},
                   "resolution": {"achieved": res.achieved, "breached": res.breached}}),
        );
        out.insert(
            "orders".into(),
            json!({"placed": self.orders_placed, "revenue": self.revenue,
                   "returned": self.returned, "warranty_claims": self.warranty_claims}),
        );
        out.insert("customers".into(), json!({"churned": self.churned}));
        if with_after_sales {
            let c = &self.churn_signals;
            out.insert(
                "churn_signals".into(),
                json!({"signalled": c.signalled, "confirmed": c.confirmed,
                       "expired_without_churn": c.expired_without_churn,
                       "churned": c.churned, "churned_after_signal": c.churned_after_signal}),
            );
            out.insert(
                "recovery".into(),
                json!({"opened": self.recovery_opened, "answered": self.recovery_answered,
                       "overdue": self.recovery_overdue,
                       "answer_seconds": self.recovery_answer.to_json()}),
            );
            let mut rep = Map::new();
            for b in Band::ALL {
                let o = self.repurchase[band_idx(b)];
                rep.insert(
                    b.as_str().into(),
                    json!({"converted": o.converted, "expired": o.expired}),
                );
            }
            out.insert("repurchase".into(), Value::Object(rep));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_are_nearest_rank() {
        let mut d = DurationAgg::default();
        for s in 1..=100 {
            d.record_ms(s * 1000);
        }
        // rank ⌈50·100/100⌉ = 50 → 50 s; ⌈90⌉ → 90 s; ⌈99⌉ → 99 s, within 0.1 %.
        for (p, want) in [(50, 50.0), (90, 90.0), (99, 99.0)] {
            let got = d.percentile(p).unwrap();
            assert!((got - want).abs() <= want * 0.001, "p{p} = {got}");
        }
        let mut d = DurationAgg::default();
        for ms in [4_000, 300_000, 5_400_000] {
            d.record_ms(ms);
        }
        // n = 3: p50 → rank 2, p90 → rank 3, p99 → rank 3.
        assert!((d.percentile(50).unwrap() - 300.0).abs() <= 0.3);
        assert_eq!(d.percentile(90).unwrap(), 5400.0);
        assert_eq!(d.percentile(99).unwrap(), 5400.0);
    }

    #[test]
    fn hdr_encoding_is_the_standard_v2_deflate_one() {
        use hdrhistogram::serialization::V2DeflateSerializer;
        let mut d = DurationAgg::default();
        for ms in [0, 3, 999, 1_000, 5_400_000, 86_400_000] {
            d.record_ms(ms);
        }
        let h = &*d.histogram().unwrap();
        let mut reference = Vec::new();
        V2DeflateSerializer::new()
            .serialize(h, &mut reference)
            .unwrap();
        let ours = base64::engine::general_purpose::STANDARD
            .decode(encode_hdr(h))
            .unwrap();
        assert_eq!(ours, reference);
        // and again, with the reused compressor
        assert_eq!(
            base64::engine::general_purpose::STANDARD
                .decode(encode_hdr(h))
                .unwrap(),
            reference
        );
    }

    #[test]
    fn sparse_hdr_encoding_equals_the_histograms() {
        use hdrhistogram::serialization::V2DeflateSerializer;
        let mut x: u64 = 0x2545F4914F6CDD1D;
        for n in [1usize, 2, 5, 50, 128] {
            for scale in [1u64, 2_000, 3_000_000, 400_000_000] {
                let values: Vec<u64> = (0..n)
                    .map(|_| {
                        x ^= x << 13;
                        x ^= x >> 7;
                        x ^= x << 17;
                        x % scale
                    })
                    .collect();
                let highest = values.iter().copied().max().unwrap().max(2);
                let mut h = Histogram::<u64>::new_with_bounds(1, highest, SIGFIG).unwrap();
                for v in &values {
                    h.record(*v).unwrap();
                }
                let mut reference = Vec::new();
                V2DeflateSerializer::new()
                    .serialize(&h, &mut reference)
                    .unwrap();
                let ours = base64::engine::general_purpose::STANDARD
                    .decode(encode_hdr_values(&values))
                    .unwrap();
                assert_eq!(ours, reference, "n={n} scale={scale}");
            }
        }
    }

    #[test]
    fn small_and_histogram_summaries_agree_within_hdr_precision() {
        let mut small = DurationAgg::default();
        let mut big = DurationAgg::default();
        for i in 0..(SMALL as i64) {
            small.record_ms(i * 7_919 % 5_000_000);
            big.record_ms(i * 7_919 % 5_000_000);
        }
        big.materialize();
        let (a, b) = (
            small.percentiles([50, 90, 99]).unwrap(),
            big.percentiles([50, 90, 99]).unwrap(),
        );
        for (x, y) in a.iter().zip(b) {
            assert!((x - y).abs() <= x * 0.001 + 0.001, "{x} vs {y}");
        }
        let decoded = decode_hdr(small.to_json()["hdr"].as_str().unwrap()).unwrap();
        assert_eq!(decoded.len(), SMALL as u64);
    }

    #[test]
    fn hdr_round_trips() {
        let mut d = DurationAgg::default();
        for ms in [0, 1, 999, 1_000, 86_400_000] {
            d.record_ms(ms);
        }
        let h = decode_hdr(&encode_hdr(&d.histogram().unwrap())).unwrap();
        assert_eq!(h.len(), 5);
        assert_eq!(h.max(), d.histogram().unwrap().max());
    }

    #[test]
    fn ratios_are_null_without_denominator() {
        let a = Aggregate::default();
        let mut m = Map::new();
        a.kpi_fields(&mut m, false);
        assert_eq!(m["csat"]["ratio"], Value::Null);
        assert_eq!(m["nps"]["score"], Value::Null);
        assert_eq!(m["first_response_seconds"], json!({"count": 0}));
        assert!(!m.contains_key("recovery"));
    }
}
