//! Writing records (chunks, entity versions, voids) and reading a state partition back: the
//! last record per key ([`LogImage`]), the latest complete checkpoint in it ([`restore`]), or
//! what earlier runs left without one ([`leftovers`]).

use std::collections::BTreeMap;

use thiserror::Error;

use super::codec::{CodecError, Reader, Writer};
use super::{Key, Manifest, StateRecord, CHUNK, FORMAT_VERSION};
use crate::ts::Millis;

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
