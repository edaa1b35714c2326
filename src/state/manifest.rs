//! The manifest: the record that makes a checkpoint complete (SPEC §7).

use super::codec::{CodecError, Reader, Writer};
use super::FORMAT_VERSION;
use crate::ts::Millis;

/// What makes a checkpoint complete (SPEC §7), and what `cxstream state inspect` shows.
#[derive(Debug, Clone, PartialEq)]
pub struct Manifest {
    /// [`FORMAT_VERSION`] of the writer.
    pub format: u32,
    /// Fingerprint of the configuration that shapes results.
    pub fingerprint: u64,
    /// Partition count of the input topics when it was written.
    pub input_partitions: i32,
    /// The input partition.
    pub partition: i32,
    /// Generation of this checkpoint.
    pub gen: u64,
    /// Wall clock when it was written (ms).
    pub written_at: Millis,
    /// Input position: the next offset per input topic.
    pub positions: Vec<(String, i64)>,
    /// The last idle advance included in the state ([`Key::Advance`] sequence).
    pub advance_seq: u64,
    /// Core chunks of this generation.
    pub core_chunks: u32,
    /// Live dedup segments: generation and chunk count.
    pub dedup: Vec<(u64, u32)>,
    /// The partition's watermark (for inspection).
    pub watermark: Option<Millis>,
    /// Tickets held (for inspection).
    pub tickets: u64,
    /// Customers held (for inspection).
    pub customers: u64,
    /// Window parts open or sealed (for inspection).
    pub window_parts: u64,
    /// Bytes this checkpoint wrote (for inspection).
    pub bytes: u64,
}

impl Manifest {
    /// The manifest's bytes.
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::new();
        w.u64(u64::from(self.format));
        w.u64(self.fingerprint);
        w.i64(i64::from(self.input_partitions));
        w.i64(i64::from(self.partition));
        w.u64(self.gen);
        w.i64(self.written_at);
        w.len(self.positions.len());
        for (t, o) in &self.positions {
            w.str(t);
            w.i64(*o);
        }
        w.u64(self.advance_seq);
        w.u64(u64::from(self.core_chunks));
        w.len(self.dedup.len());
        for (g, n) in &self.dedup {
            w.u64(*g);
            w.u64(u64::from(*n));
        }
        w.opt_i64(self.watermark);
        for v in [self.tickets, self.customers, self.window_parts, self.bytes] {
            w.u64(v);
        }
        w.buf
    }

    /// Reads a manifest.
    pub fn decode(b: &[u8]) -> Result<Manifest, CodecError> {
        let mut r = Reader::new(b);
        let format = r.u32()?;
        if format != FORMAT_VERSION {
            // Later fields may mean something else: stop here, the caller reports it.
            return Ok(Manifest {
                format,
                ..Manifest::empty()
            });
        }
        let i32_of = |v: i64| i32::try_from(v).map_err(|_| CodecError("i32".into()));
        let mut m = Manifest {
            format,
            fingerprint: r.u64()?,
            input_partitions: i32_of(r.i64()?)?,
            partition: i32_of(r.i64()?)?,
            gen: r.u64()?,
            written_at: r.i64()?,
            ..Manifest::empty()
        };
        let n = r.len()?;
        for _ in 0..n {
            m.positions.push((r.str()?.to_string(), r.i64()?));
        }
        m.advance_seq = r.u64()?;
        m.core_chunks = r.u32()?;
        let n = r.len()?;
        for _ in 0..n {
            m.dedup.push((r.u64()?, r.u32()?));
        }
        m.watermark = r.opt_i64()?;
        m.tickets = r.u64()?;
        m.customers = r.u64()?;
        m.window_parts = r.u64()?;
        m.bytes = r.u64()?;
        Ok(m)
    }

    /// A manifest with nothing in it.
    pub fn empty() -> Manifest {
        Manifest {
            format: FORMAT_VERSION,
            fingerprint: 0,
            input_partitions: 0,
            partition: 0,
            gen: 0,
            written_at: 0,
            positions: Vec::new(),
            advance_seq: 0,
            core_chunks: 0,
            dedup: Vec::new(),
            watermark: None,
            tickets: 0,
            customers: 0,
            window_parts: 0,
            bytes: 0,
        }
    }
}
