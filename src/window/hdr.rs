//! The `hdr` field of duration summaries (SPEC §4): the standard HdrHistogram V2 compressed
//! encoding, base64, so downstream consumers can merge windows and instances exactly. Written
//! by hand around the `hdrhistogram` crate's V2 serializer: what its `V2DeflateSerializer`
//! writes except that the zlib stream is level 0 (stored blocks, written here without a
//! compressor), which decodes to the same bytes (unit tests check it); with a direct path
//! from a small list of values that skips building a dense histogram.

use base64::Engine as _;
use hdrhistogram::serialization::Serializer;
use hdrhistogram::Histogram;

use super::duration::SIGFIG;

/// HdrHistogram V2 compressed encoding, base64 (standard alphabet, padded): what the Java,
/// Go and Rust HdrHistogram libraries decode.
///
/// What `hdrhistogram`'s `V2DeflateSerializer` writes (cookie, length, zlib of the V2
/// encoding) but with a level-0 zlib stream, and buffers reused per thread.
pub fn encode_hdr(h: &Histogram<u64>) -> String {
    base64_string(|out| write_hdr(h, out))
}

/// [`encode_hdr`], appended to `out` (the base64 text, without quotes).
pub fn write_hdr(h: &Histogram<u64>, out: &mut Vec<u8>) {
    ENCODER.with(|e| e.borrow_mut().encode(h, out))
}

/// [`encode_hdr`] of the histogram holding `values` (ms) with lowest discernible value 1,
/// 3 significant digits and highest trackable value max(2, largest value), written straight
/// from the sorted values: the same bytes as building that histogram and serializing it
/// (checked by a unit test), without its dense counts array.
pub fn encode_hdr_values(values: &[u64]) -> String {
    let mut sorted = values.to_vec();
    sorted.sort_unstable();
    base64_string(|out| write_hdr_sorted(&sorted, out))
}

/// [`encode_hdr_values`] of values already sorted (ascending), appended to `out`.
pub fn write_hdr_sorted(sorted: &[u64], out: &mut Vec<u8>) {
    ENCODER.with(|e| e.borrow_mut().encode_sorted(sorted, out))
}

thread_local! {
    /// Buffers reused by every encoding on this thread.
    static ENCODER: std::cell::RefCell<HdrEncoder> = std::cell::RefCell::new(HdrEncoder::new());
}

/// What `write` appended, as a String (base64 is ASCII).
fn base64_string(write: impl FnOnce(&mut Vec<u8>)) -> String {
    let mut out = Vec::new();
    write(&mut out);
    String::from_utf8(out).unwrap_or_default()
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
}

impl HdrEncoder {
    fn new() -> Self {
        HdrEncoder {
            v2: hdrhistogram::serialization::V2Serializer::new(),
            plain: Vec::new(),
            out: Vec::new(),
        }
    }

    fn encode(&mut self, h: &Histogram<u64>, dst: &mut Vec<u8>) {
        self.plain.clear();
        if self.v2.serialize(h, &mut self.plain).is_err() {
            return;
        }
        self.compress(dst)
    }

    fn encode_sorted(&mut self, sorted: &[u64], dst: &mut Vec<u8>) {
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
        self.compress(dst)
    }

    /// The V2 compressed form of `plain`: cookie, length, and `plain` as a zlib stream of
    /// stored blocks — what zlib writes at level 0 (header `78 01`, blocks of at most 65,535
    /// bytes, Adler-32). Any zlib level decodes to the same histogram (the `hdr` bytes were
    /// level 6 before issue 10: deflating took 40 % of a 1-minute-window replay, for 18 %
    /// smaller `hdr` fields).
    fn compress(&mut self, dst: &mut Vec<u8>) {
        let out = &mut self.out;
        out.clear();
        out.extend_from_slice(&V2_COMPRESSED_COOKIE.to_be_bytes());
        out.extend_from_slice(&[0; 4]);
        out.extend_from_slice(&[0x78, 0x01]);
        let mut chunks = self.plain.chunks(0xffff).peekable();
        if chunks.peek().is_none() {
            out.extend_from_slice(&[0x01, 0x00, 0x00, 0xff, 0xff]);
        }
        while let Some(chunk) = chunks.next() {
            out.push(u8::from(chunks.peek().is_none())); // BFINAL, BTYPE 00
            let n = chunk.len() as u16;
            out.extend_from_slice(&n.to_le_bytes());
            out.extend_from_slice(&(!n).to_le_bytes());
            out.extend_from_slice(chunk);
        }
        out.extend_from_slice(&adler32(&self.plain).to_be_bytes());
        let len = (out.len() - 8) as u32;
        out[4..8].copy_from_slice(&len.to_be_bytes());
        let start = dst.len();
        let n = base64::encoded_len(out.len(), true).unwrap_or(0);
        dst.resize(start + n, 0);
        let written = base64::engine::general_purpose::STANDARD
            .encode_slice(&*out, &mut dst[start..])
            .unwrap_or(0);
        dst.truncate(start + written);
    }
}

/// The Adler-32 checksum of zlib (RFC 1950).
fn adler32(data: &[u8]) -> u32 {
    const MOD: u32 = 65_521;
    let (mut a, mut b) = (1u32, 0u32);
    // 5552 bytes is the most that can be summed before `b` could overflow a u32.
    for chunk in data.chunks(5552) {
        for &x in chunk {
            a += u32::from(x);
            b += a;
        }
        a %= MOD;
        b %= MOD;
    }
    (b << 16) | a
}

/// Decodes what [`encode_hdr`] produced.
pub fn decode_hdr(s: &str) -> Option<Histogram<u64>> {
    let bytes = base64::engine::general_purpose::STANDARD.decode(s).ok()?;
    hdrhistogram::serialization::Deserializer::new()
        .deserialize(&mut std::io::Cursor::new(bytes))
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::window::DurationAgg;

    /// Cookie, length and the inflated V2 payload of an encoded histogram.
    fn unpack(bytes: &[u8]) -> (Vec<u8>, Vec<u8>) {
        use std::io::Read;
        let len = u32::from_be_bytes(bytes[4..8].try_into().unwrap()) as usize;
        assert_eq!(bytes.len(), 8 + len);
        let mut plain = Vec::new();
        flate2::read::ZlibDecoder::new(&bytes[8..])
            .read_to_end(&mut plain)
            .unwrap();
        (bytes[..4].to_vec(), plain)
    }

    fn decoded(s: &str) -> Vec<u8> {
        base64::engine::general_purpose::STANDARD.decode(s).unwrap()
    }

    #[test]
    fn hdr_encoding_is_the_standard_v2_deflate_one_at_level_0() {
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
        let ours = decoded(&encode_hdr(h));
        assert_eq!(unpack(&ours), unpack(&reference));
        assert_eq!(ours[8..10], [0x78, 0x01]);
        assert_eq!(decode_hdr(&encode_hdr(h)).as_ref(), Some(h));
        // and again, with the reused buffers
        assert_eq!(decoded(&encode_hdr(h)), ours);
    }

    #[test]
    fn stored_blocks_split_long_payloads() {
        let mut e = HdrEncoder::new();
        for n in [0usize, 1, 5552, 65_535, 65_536, 200_003] {
            e.plain = (0..n).map(|i| (i * 7 % 251) as u8).collect();
            let mut out = Vec::new();
            e.compress(&mut out);
            let (cookie, plain) = unpack(&decoded(&String::from_utf8(out).unwrap()));
            assert_eq!(cookie, V2_COMPRESSED_COOKIE.to_be_bytes());
            assert_eq!(plain, e.plain, "{n}");
        }
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
                let ours = decoded(&encode_hdr_values(&values));
                assert_eq!(unpack(&ours), unpack(&reference), "n={n} scale={scale}");
            }
        }
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
}
