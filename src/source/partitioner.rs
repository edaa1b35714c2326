//! Which input partition a customer's events land on: what a Kafka producer does with the
//! customer id as message key (SPEC §1), so that `replay --partitions N` processes a file as
//! `run` processes an N-partition topic (SPEC §2).
//!
//! - [`Partitioner::Crc32`] (the default): librdkafka's default partitioner for keyed
//!   messages (`consistent_random`), CRC-32 (IEEE) of the key modulo N. It is what the Python,
//!   Go (confluent-kafka), .NET, C/C++ clients and kcat use.
//! - [`Partitioner::Murmur2`]: the Java client's default, `(murmur2(key) & 0x7fffffff) % N`.

/// A key → partition rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Partitioner {
    /// CRC-32 of the key modulo N (librdkafka).
    #[default]
    Crc32,
    /// Kafka's murmur2 of the key, made positive, modulo N (the Java client).
    Murmur2,
}

impl Partitioner {
    /// The partitioner named `s` (`crc32`, `murmur2`).
    pub fn parse(s: &str) -> Option<Partitioner> {
        match s {
            "crc32" => Some(Partitioner::Crc32),
            "murmur2" => Some(Partitioner::Murmur2),
            _ => None,
        }
    }

    /// The partition of `key` among `n` (≥ 1).
    pub fn partition(self, key: &[u8], n: i32) -> i32 {
        let n = n.max(1) as u32;
        let h = match self {
            Partitioner::Crc32 => crc32fast::hash(key),
            Partitioner::Murmur2 => murmur2(key) & 0x7fff_ffff,
        };
        (h % n) as i32
    }
}

/// Kafka's murmur2 (`org.apache.kafka.common.utils.Utils.murmur2`, seed 0x9747b28c).
pub fn murmur2(data: &[u8]) -> u32 {
    const SEED: u32 = 0x9747_b28c;
    const M: u32 = 0x5bd1_e995;
    const R: u32 = 24;
    let len = data.len();
    let mut h = SEED ^ len as u32;
    let mut chunks = data.chunks_exact(4);
    for c in &mut chunks {
        let mut k = u32::from_le_bytes([c[0], c[1], c[2], c[3]]);
        k = k.wrapping_mul(M);
        k ^= k >> R;
        k = k.wrapping_mul(M);
        h = h.wrapping_mul(M);
        h ^= k;
    }
    let rest = chunks.remainder();
    if rest.len() >= 3 {
        h ^= u32::from(rest[2]) << 16;
    }
    if rest.len() >= 2 {
        h ^= u32::from(rest[1]) << 8;
    }
    if !rest.is_empty() {
        h ^= u32::from(rest[0]);
        h = h.wrapping_mul(M);
    }
    h ^= h >> 13;
    h = h.wrapping_mul(M);
    h ^= h >> 15;
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn murmur2_matches_the_java_client() {
        // Vectors from Kafka's UtilsTest (murmur2 of these strings, as signed Java ints).
        for (s, want) in [
            ("21", -973932308i32),
            ("foobar", -790332482),
            ("a-little-bit-long-string", -985981536),
            ("a-little-bit-longer-string", -1486304829),
            (
                "lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8",
                -58897971,
            ),
            ("abc", 479470107),
        ] {
            assert_eq!(murmur2(s.as_bytes()) as i32, want, "{s}");
        }
        // librdkafka's rdmurmur2.c unit test.
        for (s, want) in [
            ("kafka", 0xd067cf64u32),
            ("giberish123456789", 0x8f552b0c),
            ("1234", 0x9fc97b14),
            ("234", 0xe7c009ca),
            ("34", 0x873930da),
            ("4", 0x5a4b5ca1),
            ("", 0x106e08d9),
        ] {
            assert_eq!(murmur2(s.as_bytes()), want, "{s}");
        }
    }

    #[test]
    fn crc32_is_the_ieee_one() {
        assert_eq!(crc32fast::hash(b"123456789"), 0xcbf4_3926);
        assert_eq!(
            Partitioner::Crc32.partition(b"123456789", 7),
            (0xcbf4_3926u32 % 7) as i32
        );
    }
}
