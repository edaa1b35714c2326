//! The state topic (SPEC §7): how a partition's checkpoints are laid out as Kafka records, and
//! how a restore reads them back — independent of Kafka itself, so that the same code runs
//! against a broker, an in-memory log in tests, and a simulated compaction.
//!
//! # Layout
//!
//! Each input partition *p* checkpoints to partition *p* of the state topic (created with the
//! input's partition count, `cleanup.policy=compact`). Keys are small binary strings:
//!
//! | key | value |
//! |---|---|
//! | `M` | the [`Manifest`] of the latest complete checkpoint (written last) |
//! | `K` gen i | chunk *i* of the partition's core state (watermark, clock, interner, held inputs, …) at checkpoint *gen* |
//! | `D` gen i | chunk *i* of the dedup segment of checkpoint *gen*: the event ids remembered since the previous one |
//! | `E` kind slot i id | chunk *i* of a version of entity *id* (ticket, customer, window part) in *slot* 1 or 2 |
//! | `A` seq | an idle advance of the watermark (SPEC §2): its input position and watermark |
//! | `S` nonce | a restore's sentinel: read the partition up to here |
//! | `R` | a reset marker: everything before it is ignored (`cxstream state reset`) |
//!
//! Values larger than [`CHUNK`] are split over several records, so no record comes near the
//! broker's message size limit.
//!
//! # Why restores never see a partial checkpoint, whatever compaction removed
//!
//! - A checkpoint writes its chunks and entity versions first; the manifest last, only once
//!   they *and every output derived before the checkpoint's input position* are acknowledged.
//!   A manifest in the log therefore always describes a complete checkpoint.
//! - Immutable data (core chunks, dedup segments) is keyed by generation: a newer checkpoint
//!   never overwrites an older one's.
//! - A mutable entity alternates between two slots: a checkpoint writes the slot that does
//!   *not* hold the entity's version in the latest complete checkpoint, so a checkpoint that
//!   never completes cannot shadow a complete one, and compaction (which keeps the last record
//!   per key) cannot remove a version the latest manifest still needs. A restore takes, per
//!   entity, the slot version with the highest generation not above the manifest's.
//! - Versions written by a checkpoint that never completed (a crash between its records and
//!   its manifest) are overwritten by a *void* record at restore, before anything new is
//!   written — not by a tombstone, which some brokers never show to consumers (GUIDE §5).
//! - Deleting an entity writes a deletion marker into its other slot; only after that
//!   checkpoint is complete are both slots tombstoned, older version first, so compaction can
//!   never remove the marker and keep the value.
//! - Generations after a restore continue above every generation seen in the partition.

pub mod codec;

use std::collections::BTreeMap;

use thiserror::Error;

use codec::{CodecError, Reader, Writer};

use crate::ts::Millis;

/// Version of this layout and of the encodings of the state it holds; a checkpoint of
/// another version is not restored silently.
pub const FORMAT_VERSION: u32 = 1;

/// The largest value of one state record (payload bytes); bigger values are chunked.
pub const CHUNK: usize = 256 * 1024;

/// Entity kinds.
pub mod kind {
    /// A ticket: id = customer, 0xff, ticket id.
    pub const TICKET: u8 = b't';
    /// A customer: id = customer id.
    pub const CUSTOMER: u8 = b'c';
    /// A window part: id = its window key.
    pub const WINDOW: u8 = b'w';
}

/// One record for a state topic partition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StateRecord {
    /// The key (see the layout above).
    pub key: Vec<u8>,
    /// The value; `None` is a tombstone.
    pub value: Option<Vec<u8>>,
}

/// A parsed key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Key<'a> {
    /// The manifest.
    Manifest,
    /// A core chunk.
    Core {
        /// Checkpoint generation.
        gen: u64,
        /// Chunk index.
        i: u32,
    },
    /// A dedup segment chunk.
    Dedup {
        /// Checkpoint generation.
        gen: u64,
        /// Chunk index.
        i: u32,
    },
    /// An entity version chunk.
    Entity {
        /// [`kind`].
        kind: u8,
        /// 1 or 2.
        slot: u8,
        /// Chunk index.
        i: u32,
        /// The entity id.
        id: &'a [u8],
    },
    /// An idle advance.
    Advance(u64),
    /// A restore sentinel.
    Sentinel(u64),
    /// A reset marker.
    Reset,
}

impl Key<'_> {
    /// The key's bytes.
    pub fn bytes(&self) -> Vec<u8> {
        let mut k = Vec::with_capacity(16);
        match self {
            Key::Manifest => k.push(b'M'),
            Key::Core { gen, i } | Key::Dedup { gen, i } => {
                k.push(if matches!(self, Key::Core { .. }) {
                    b'K'
                } else {
                    b'D'
                });
                k.extend_from_slice(&gen.to_be_bytes());
                k.extend_from_slice(&i.to_be_bytes());
            }
            Key::Entity { kind, slot, i, id } => {
                k.extend_from_slice(&[b'E', *kind, *slot]);
                k.extend_from_slice(&i.to_be_bytes());
                k.extend_from_slice(id);
            }
            Key::Advance(seq) => {
                k.push(b'A');
                k.extend_from_slice(&seq.to_be_bytes());
            }
            Key::Sentinel(n) => {
                k.push(b'S');
                k.extend_from_slice(&n.to_be_bytes());
            }
            Key::Reset => k.push(b'R'),
        }
        k
    }

    /// Parses a key; `None` for keys this version does not know (left alone).
    pub fn parse(k: &[u8]) -> Option<Key<'_>> {
        let u64_at = |at: usize| -> Option<u64> {
            Some(u64::from_be_bytes(k.get(at..at + 8)?.try_into().ok()?))
        };
        let u32_at = |at: usize| -> Option<u32> {
            Some(u32::from_be_bytes(k.get(at..at + 4)?.try_into().ok()?))
        };
        Some(match *k.first()? {
            b'M' if k.len() == 1 => Key::Manifest,
            b'R' if k.len() == 1 => Key::Reset,
            b'K' if k.len() == 13 => Key::Core {
                gen: u64_at(1)?,
                i: u32_at(9)?,
            },
            b'D' if k.len() == 13 => Key::Dedup {
                gen: u64_at(1)?,
                i: u32_at(9)?,
            },
            b'E' if k.len() >= 7 => Key::Entity {
                kind: k[1],
                slot: k[2],
                i: u32_at(3)?,
                id: &k[7..],
            },
            b'A' if k.len() == 9 => Key::Advance(u64_at(1)?),
            b'S' if k.len() == 9 => Key::Sentinel(u64_at(1)?),
            _ => return None,
        })
    }
}

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

/// `payload` split into records keyed by `key(i)`.
pub fn chunks(payload: &[u8], key: impl Fn(u32) -> Vec<u8>) -> Vec<StateRecord> {
    let mut out: Vec<StateRecord> = payload
        .chunks(CHUNK)
        .enumerate()
        .map(|(i, c)| StateRecord {
            key: key(i as u32),
            value: Some(c.to_vec()),
        })
        .collect();
    if out.is_empty() {
        out.push(StateRecord {
            key: key(0),
            value: Some(Vec::new()),
        });
    }
    out
}

/// The records of one entity version: its value in `slot` at generation `gen`, or (`None`) a
/// deletion marker. Each chunk's value starts with the generation and the chunk count (0
/// for a deletion marker; a *void* record is generation 0).
pub fn entity_version(
    kind: u8,
    slot: u8,
    id: &[u8],
    gen: u64,
    payload: Option<&[u8]>,
) -> Vec<StateRecord> {
    let parts: Vec<&[u8]> = match payload {
        None => vec![&[]],
        Some(p) if p.is_empty() => vec![p],
        Some(p) => p.chunks(CHUNK).collect(),
    };
    let n = if payload.is_none() { 0 } else { parts.len() };
    parts
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let mut w = Writer::new();
            w.u64(gen);
            w.u64(n as u64);
            w.buf.extend_from_slice(c);
            StateRecord {
                key: Key::Entity {
                    kind,
                    slot,
                    i: i as u32,
                    id,
                }
                .bytes(),
                value: Some(w.buf),
            }
        })
        .collect()
}

/// A void record: overwrites a version that a restore must never see again.
pub fn void(key: Vec<u8>) -> StateRecord {
    let mut w = Writer::new();
    w.u64(0);
    w.u64(0);
    StateRecord {
        key,
        value: Some(w.buf),
    }
}

/// A state partition as a restore sees it: the last record per key after the last reset
/// marker (a tombstone removes its key) — what compaction preserves.
#[derive(Debug, Default, Clone)]
pub struct LogImage {
    /// Last value per key.
    records: BTreeMap<Vec<u8>, Vec<u8>>,
    /// A reset marker was seen.
    pub reset: bool,
    /// Bytes read.
    pub bytes: u64,
}

impl LogImage {
    /// Applies the next record of the partition, in offset order.
    pub fn apply(&mut self, key: &[u8], value: Option<&[u8]>) {
        self.bytes += (key.len() + value.map_or(0, <[u8]>::len)) as u64;
        if Key::parse(key) == Some(Key::Reset) && value.is_some() {
            self.records.clear();
            self.reset = true;
            return;
        }
        match value {
            Some(v) => {
                self.records.insert(key.to_vec(), v.to_vec());
            }
            None => {
                self.records.remove(key);
            }
        }
    }

    /// Every key present (for `state reset`).
    pub fn keys(&self) -> impl Iterator<Item = &Vec<u8>> {
        self.records.keys()
    }

    /// The number of keys present.
    pub fn len(&self) -> usize {
        self.records.len()
    }

    /// Whether no key is present.
    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }
}

/// A checkpoint that cannot be used, and what to do about it.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum StateError {
    /// A record does not decode.
    #[error("{0}")]
    Codec(#[from] CodecError),
    /// Something the manifest lists is missing (the state topic lost data).
    #[error("checkpoint {gen} of partition {partition} is incomplete: {what} is missing from the state topic")]
    Missing {
        /// The partition.
        partition: i32,
        /// The checkpoint generation.
        gen: u64,
        /// What is missing.
        what: String,
    },
}

/// One entity of a restored checkpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RestoredEntity {
    /// [`kind`].
    pub kind: u8,
    /// Its id bytes.
    pub id: Vec<u8>,
    /// The slot its version was read from.
    pub slot: u8,
    /// Its encoded state.
    pub payload: Vec<u8>,
}

/// The latest complete checkpoint of a partition, as read back.
#[derive(Debug, Clone)]
pub struct Restored {
    /// Its manifest.
    pub manifest: Manifest,
    /// The core state.
    pub core: Vec<u8>,
    /// The live entities.
    pub entities: Vec<RestoredEntity>,
    /// The live dedup segments, oldest first.
    pub dedup: Vec<Vec<u8>>,
    /// Idle advances after the checkpoint, in order: (sequence, value).
    pub advances: Vec<(u64, Vec<u8>)>,
    /// Records to write before anything else: voids over versions of checkpoints that never
    /// completed, and tombstones for garbage.
    pub cleanup: Vec<StateRecord>,
    /// The highest generation seen anywhere (the next checkpoint continues above it).
    pub max_gen: u64,
    /// The highest advance sequence seen.
    pub max_advance: u64,
}

fn gen_and_count(v: &[u8]) -> Result<(u64, u64, &[u8]), CodecError> {
    let mut r = Reader::new(v);
    let gen = r.u64()?;
    let n = r.u64()?;
    Ok((gen, n, r.remaining()))
}

/// The latest complete checkpoint in `image`, or `None` if there is none.
pub fn restore(image: &LogImage) -> Result<Option<Restored>, StateError> {
    let Some(mb) = image.records.get(&Key::Manifest.bytes()) else {
        return Ok(None);
    };
    let manifest = Manifest::decode(mb)?;
    let mut out = Restored {
        core: Vec::new(),
        entities: Vec::new(),
        dedup: Vec::new(),
        advances: Vec::new(),
        cleanup: Vec::new(),
        max_gen: manifest.gen,
        max_advance: manifest.advance_seq,
        manifest,
    };
    if out.manifest.format != FORMAT_VERSION {
        return Ok(Some(out));
    }
    let (gen, partition) = (out.manifest.gen, out.manifest.partition);
    let missing = |what: String| StateError::Missing {
        partition,
        gen,
        what,
    };
    // Entities: (kind, id) → per slot: chunks by index.
    type Slots<'a> = [BTreeMap<u32, &'a [u8]>; 2];
    let mut ents: BTreeMap<(u8, &[u8]), Slots<'_>> = BTreeMap::new();
    for (k, v) in &image.records {
        match Key::parse(k) {
            Some(Key::Core { gen: g, i }) => {
                out.max_gen = out.max_gen.max(g);
                if g == gen && i < out.manifest.core_chunks {
                    // Collected below in order.
                } else if g != gen {
                    out.cleanup.push(StateRecord {
                        key: k.clone(),
                        value: None,
                    });
                }
            }
            Some(Key::Dedup { gen: g, .. }) => {
                out.max_gen = out.max_gen.max(g);
                if !out.manifest.dedup.iter().any(|(dg, _)| *dg == g) {
                    out.cleanup.push(StateRecord {
                        key: k.clone(),
                        value: None,
                    });
                }
            }
            Some(Key::Entity { kind, slot, i, id }) if slot == 1 || slot == 2 => {
                ents.entry((kind, id)).or_default()[usize::from(slot - 1)].insert(i, v);
            }
            Some(Key::Advance(seq)) => {
                out.max_advance = out.max_advance.max(seq);
                if seq > out.manifest.advance_seq {
                    out.advances.push((seq, v.clone()));
                } else {
                    out.cleanup.push(StateRecord {
                        key: k.clone(),
                        value: None,
                    });
                }
            }
            Some(Key::Sentinel(_)) => out.cleanup.push(StateRecord {
                key: k.clone(),
                value: None,
            }),
            _ => {}
        }
    }
    for i in 0..out.manifest.core_chunks {
        let k = Key::Core { gen, i }.bytes();
        let c = image
            .records
            .get(&k)
            .ok_or_else(|| missing(format!("core chunk {i}")))?;
        out.core.extend_from_slice(c);
    }
    for (g, n) in out.manifest.dedup.clone() {
        let mut seg = Vec::new();
        for i in 0..n {
            let k = Key::Dedup { gen: g, i }.bytes();
            let c = image
                .records
                .get(&k)
                .ok_or_else(|| missing(format!("dedup segment {g} chunk {i}")))?;
            seg.extend_from_slice(c);
        }
        out.dedup.push(seg);
    }
    for ((kind, id), slots) in ents {
        // The version of each slot: complete if every chunk carries chunk 0's generation.
        let mut best: Option<(u64, u8, Option<Vec<u8>>)> = None;
        for (s, chunks) in slots.iter().enumerate() {
            let slot = s as u8 + 1;
            let Some(c0) = chunks.get(&0) else { continue };
            let (g, n, first) = gen_and_count(c0)?;
            out.max_gen = out.max_gen.max(g);
            if g > gen {
                // Written by a checkpoint that never completed: void it before anything new.
                for i in chunks.keys() {
                    let key = Key::Entity {
                        kind,
                        slot,
                        i: *i,
                        id,
                    }
                    .bytes();
                    out.cleanup.push(void(key));
                }
                continue;
            }
            if g == 0 {
                continue; // void
            }
            let mut payload = (n > 0).then(|| first.to_vec());
            for i in 1..n {
                let c = chunks
                    .get(&(i as u32))
                    .ok_or_else(|| missing(format!("chunk {i} of an entity")))?;
                let (gi, _, rest) = gen_and_count(c)?;
                if gi != g {
                    return Err(missing(format!("chunk {i} of an entity at generation {g}")));
                }
                if let Some(p) = payload.as_mut() {
                    p.extend_from_slice(rest);
                }
            }
            if best.as_ref().is_none_or(|(bg, _, _)| g > *bg) {
                best = Some((g, slot, payload));
            }
        }
        if let Some((_, slot, Some(payload))) = best {
            out.entities.push(RestoredEntity {
                kind,
                id: id.to_vec(),
                slot,
                payload,
            });
        }
    }
    out.advances.sort_by_key(|(s, _)| *s);
    Ok(Some(out))
}

/// What a partition without a complete checkpoint has in the state topic: versions of
/// checkpoints that never completed (to void before anything new is written), sentinels, and
/// the idle advances of a run that started from the same position (to replay).
#[derive(Debug, Clone, Default)]
pub struct Leftovers {
    /// Voids and tombstones to write first.
    pub cleanup: Vec<StateRecord>,
    /// Idle advances, in order: (sequence, value).
    pub advances: Vec<(u64, Vec<u8>)>,
    /// The highest generation seen.
    pub max_gen: u64,
    /// The highest advance sequence seen.
    pub max_advance: u64,
}

/// The [`Leftovers`] of an image without a manifest.
pub fn leftovers(image: &LogImage) -> Result<Leftovers, CodecError> {
    let mut out = Leftovers::default();
    for (k, v) in &image.records {
        match Key::parse(k) {
            Some(Key::Core { gen, .. }) | Some(Key::Dedup { gen, .. }) => {
                out.max_gen = out.max_gen.max(gen);
                out.cleanup.push(StateRecord {
                    key: k.clone(),
                    value: None,
                });
            }
            Some(Key::Entity { .. }) => {
                let (g, _, _) = gen_and_count(v)?;
                out.max_gen = out.max_gen.max(g);
                if g > 0 {
                    out.cleanup.push(void(k.clone()));
                }
            }
            Some(Key::Advance(seq)) => {
                out.max_advance = out.max_advance.max(seq);
                out.advances.push((seq, v.clone()));
            }
            Some(Key::Sentinel(_)) => out.cleanup.push(StateRecord {
                key: k.clone(),
                value: None,
            }),
            _ => {}
        }
    }
    out.advances.sort_by_key(|(s, _)| *s);
    Ok(out)
}

/// An idle advance record's value: the input position (next offset per topic) at which it
/// happened, and the watermark it moved to.
pub fn encode_advance(positions: &[(String, i64)], watermark: Millis) -> Vec<u8> {
    let mut w = Writer::new();
    w.len(positions.len());
    for (t, o) in positions {
        w.str(t);
        w.i64(*o);
    }
    w.i64(watermark);
    w.buf
}

/// Reads an idle advance record's value.
pub fn decode_advance(b: &[u8]) -> Result<(Vec<(String, i64)>, Millis), CodecError> {
    let mut r = Reader::new(b);
    let n = r.len()?;
    let mut pos = Vec::with_capacity(n);
    for _ in 0..n {
        pos.push((r.str()?.to_string(), r.i64()?));
    }
    Ok((pos, r.i64()?))
}
