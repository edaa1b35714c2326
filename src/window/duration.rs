//! Duration summaries (SPEC §4): exact count, sum, min and max in seconds, and the values in
//! milliseconds for nearest-rank percentiles and the `hdr` encoding — kept as a plain list
//! while small (most window × group summaries), as an HDR histogram (3 significant digits)
//! beyond that.

use hdrhistogram::serialization::Serializer as _;
use hdrhistogram::Histogram;

use crate::state::codec::{CodecError, Reader, Writer};

/// Significant digits of every duration histogram (SPEC §4: at least 3).
pub const SIGFIG: u8 = 3;

/// A duration summary: exact count/sum/min/max in seconds plus an HDR histogram in ms.
#[derive(Debug, Clone, Default)]
pub struct DurationAgg {
    /// Number of values.
    pub count: u64,
    /// Exact sum in seconds (mean = sum / count).
    pub sum: f64,
    /// Exact smallest value in seconds (meaningless while `count` is 0).
    pub min: f64,
    /// Exact largest value in seconds (meaningless while `count` is 0).
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

    /// Holds an HDR histogram (more than [`SMALL`] values): ≈ 105 KB instead of ≤ 1 KB.
    pub fn is_dense(&self) -> bool {
        self.hist.is_some()
    }

    /// Moves the kept values into a histogram (from now on the summary uses it).
    fn materialize(&mut self) -> &mut Histogram<u64> {
        let mut h = new_histogram();
        for v in self.small.drain(..) {
            let _ = h.record(v);
        }
        self.hist.insert(h)
    }

    /// Adds the values of `other` (exact for count, sum, min and max; the histograms add).
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

    /// The histogram, once the summary has more than [`SMALL`] values.
    pub fn hist(&self) -> Option<&Histogram<u64>> {
        self.hist.as_ref()
    }

    /// The values (ms) while the summary has at most [`SMALL`] of them.
    pub fn small(&self) -> &[u64] {
        &self.small
    }

    /// Writes the summary for a checkpoint: exact fields, and the kept values or the
    /// histogram (its V2 encoding: counts and bounds, exactly).
    pub fn encode(&self, w: &mut Writer) {
        w.u64(self.count);
        w.f64(self.sum);
        w.f64(self.min);
        w.f64(self.max);
        match &self.hist {
            None => {
                w.u8(0);
                w.len(self.small.len());
                for v in &self.small {
                    w.u64(*v);
                }
            }
            Some(h) => {
                w.u8(1);
                let mut b = Vec::new();
                // Serializing an in-memory histogram into a Vec cannot fail.
                let _ = hdrhistogram::serialization::V2Serializer::new().serialize(h, &mut b);
                w.bytes(&b);
            }
        }
    }

    /// Reads what [`Self::encode`] wrote.
    pub fn decode(r: &mut Reader<'_>) -> Result<DurationAgg, CodecError> {
        Self::read(r, true)
    }

    /// Reads past what [`Self::encode`] wrote, checking its form: a histogram's bytes only
    /// for their V2 header (cookie, payload length), without building its counts.
    pub fn skip(r: &mut Reader<'_>) -> Result<(), CodecError> {
        Self::read(r, false).map(drop)
    }

    fn read(r: &mut Reader<'_>, build: bool) -> Result<DurationAgg, CodecError> {
        let mut d = DurationAgg {
            count: r.u64()?,
            sum: r.f64()?,
            min: r.f64()?,
            max: r.f64()?,
            ..DurationAgg::default()
        };
        match r.u8()? {
            0 => {
                let n = r.len()?;
                if n > SMALL {
                    return Err(CodecError(format!(
                        "duration summary with {n} kept values (at most {SMALL})"
                    )));
                }
                if !build {
                    r.skip_u64s(n)?;
                    return Ok(d);
                }
                d.small.reserve(n);
                for _ in 0..n {
                    d.small.push(r.u64()?);
                }
            }
            1 if !build => check_v2_header(r.bytes()?)?,
            1 => {
                let b = r.bytes()?;
                let mut h: Histogram<u64> = hdrhistogram::serialization::Deserializer::new()
                    .deserialize(&mut std::io::Cursor::new(b))
                    .map_err(|e| CodecError(format!("histogram: {e:?}")))?;
                h.auto(true);
                d.hist = Some(h);
            }
            t => return Err(CodecError(format!("duration summary tag {t}"))),
        }
        Ok(d)
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
        let mut buf = [0; SMALL];
        self.percentiles_sorted(self.sorted_small(&mut buf), ps)
    }

    /// The kept values, sorted, in `buf` (no allocation); empty once the summary holds a
    /// histogram.
    pub fn sorted_small<'a>(&self, buf: &'a mut [u64; SMALL]) -> &'a [u64] {
        if self.hist.is_some() {
            return &[];
        }
        // At most SMALL by construction (`record`, `merge`, and `read` refuses more).
        let n = self.small.len().min(SMALL);
        let v = &mut buf[..n];
        v.copy_from_slice(&self.small[..n]);
        v.sort_unstable();
        v
    }

    /// [`Self::percentiles`], given what [`Self::sorted_small`] returned.
    pub fn percentiles_sorted<const N: usize>(
        &self,
        sorted: &[u64],
        ps: [u64; N],
    ) -> Option<[f64; N]> {
        if !sorted.is_empty() {
            // Exact nearest-rank over the kept values.
            let n = sorted.len() as u64;
            return Some(ps.map(|p| {
                let rank = (p * n).div_ceil(100).max(1) as usize;
                (sorted[rank - 1] as f64 / 1000.0).clamp(self.min, self.max)
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
}

/// The uncompressed V2 encoding's cookie (`hdrhistogram`'s `V2_COOKIE`: the base 0x1c849303
/// with the word size 0x10), and its header: cookie, payload length, normalizing offset,
/// significant digits (4 bytes each), lowest and highest trackable value and
/// integer-to-double ratio (8 bytes each), all big-endian.
const V2_COOKIE: u32 = 0x1c84_9313;
const V2_HEADER: usize = 40;

/// Whether `b` has the form of an HDR histogram's V2 encoding: its cookie, and as many bytes
/// after the header as the header says.
fn check_v2_header(b: &[u8]) -> Result<(), CodecError> {
    let word = |i: usize| {
        b.get(i..i + 4)
            .and_then(|w| w.try_into().ok())
            .map(u32::from_be_bytes)
    };
    match (word(0), word(4)) {
        (Some(V2_COOKIE), Some(n)) if b.len() == V2_HEADER + n as usize => Ok(()),
        _ => Err(CodecError(
            "histogram: not a V2 encoding of its length".into(),
        )),
    }
}

fn new_histogram() -> Histogram<u64> {
    // 3 significant digits, auto-resizing: values are ms from 0 up.
    Histogram::new(SIGFIG).expect("3 significant digits is a valid HDR configuration")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::window::hdr::decode_hdr;

    /// `skip` reads past exactly what `decode` reads, small summaries and histograms alike,
    /// and refuses a histogram's bytes that are not a V2 encoding of their length.
    #[test]
    fn skip_reads_past_what_decode_reads_and_checks_the_histogram_header() {
        let mut small = DurationAgg::default();
        small.record_ms(1_500);
        let mut dense = DurationAgg::default();
        for i in 0..(3 * SMALL as i64) {
            dense.record_ms(i * 7_919 % 5_000_000);
        }
        assert!(dense.is_dense());
        for d in [&DurationAgg::default(), &small, &dense] {
            let mut w = Writer::new();
            d.encode(&mut w);
            w.u8(42);
            let (mut a, mut b) = (Reader::new(&w.buf), Reader::new(&w.buf));
            DurationAgg::decode(&mut a).unwrap();
            DurationAgg::skip(&mut b).unwrap();
            assert_eq!(a.remaining(), [42]);
            assert_eq!(b.remaining(), [42]);
        }
        let mut w = Writer::new();
        dense.encode(&mut w);
        let at = (0..w.buf.len())
            .find(|&i| w.buf[i..].starts_with(&V2_COOKIE.to_be_bytes()))
            .unwrap();
        let mut bad = w.buf.clone();
        bad[at] ^= 1;
        assert!(DurationAgg::skip(&mut Reader::new(&bad)).is_err());
        assert!(DurationAgg::decode(&mut Reader::new(&bad)).is_err());
        let mut short = w.buf.clone();
        short[at + 7] = short[at + 7].wrapping_add(1);
        assert!(DurationAgg::skip(&mut Reader::new(&short)).is_err());
        assert!(DurationAgg::skip(&mut Reader::new(&w.buf[..w.buf.len() - 1])).is_err());
    }

    /// A summary never keeps more than SMALL values (a histogram takes over), so a
    /// checkpoint that says it does is refused; at most SMALL are read back.
    #[test]
    fn more_kept_values_than_small_are_refused() {
        for n in [SMALL, SMALL + 1] {
            let mut w = Writer::new();
            w.u64(n as u64);
            w.f64(n as f64);
            w.f64(1.0);
            w.f64(1.0);
            w.u8(0);
            w.len(n);
            for _ in 0..n {
                w.u64(1_000);
            }
            let d = DurationAgg::decode(&mut Reader::new(&w.buf));
            let s = DurationAgg::skip(&mut Reader::new(&w.buf));
            assert_eq!(d.is_ok(), n <= SMALL, "{n}");
            assert_eq!(s.is_ok(), n <= SMALL, "{n}");
            if let Ok(d) = d {
                let mut buf = [0; SMALL];
                assert_eq!(d.sorted_small(&mut buf), &[1_000; SMALL][..]);
                assert_eq!(d.percentiles([50, 99]), Some([1.0, 1.0]));
            }
        }
    }

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
        let decoded = decode_hdr(
            crate::window::output::summary_json(&small)["hdr"]
                .as_str()
                .unwrap(),
        )
        .unwrap();
        assert_eq!(decoded.len(), SMALL as u64);
    }
}
