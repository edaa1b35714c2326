//! The parts topic's record format (SPEC §7): a version byte, the configuration's
//! fingerprint, a type byte, then the record's fields in the state codec
//! ([`crate::state::codec`]). A part's aggregate is its last field, so the merge step can keep
//! it in the bytes it came in ([`PackedPart`]).

use super::{Mark, Packed, PackedPart, PartMsg};
use crate::config::Dim;
use crate::state::codec::{CodecError, Reader, Writer};
use crate::ts::Millis;
use crate::window::{Aggregate, WindowKey};

/// The version byte of every parts-topic record.
const VERSION: u8 = 1;

impl PartMsg {
    /// The record's key.
    pub fn key(&self) -> String {
        match self {
            PartMsg::Part(_) | PartMsg::Packed(_) => {
                let mut k = Vec::with_capacity(64);
                self.push_key(&mut k);
                // Written from strings and ASCII only.
                String::from_utf8(k).unwrap_or_default()
            }
            PartMsg::Watermark { partition, .. } => format!("watermark|{partition}"),
            PartMsg::Mark(_) => "mark".to_string(),
            PartMsg::End(id) => format!("end|{id}"),
            PartMsg::Reset => "reset".to_string(),
        }
    }

    /// [`Self::key`] appended to `out`; a part's, `<size>|<start>|<group>|<partition>`,
    /// without an intermediate string.
    pub fn push_key(&self, out: &mut Vec<u8>) {
        let (partition, group, key, size) = match self {
            PartMsg::Part(p) => (p.partition, &p.group, &p.window.key, p.window.size),
            PartMsg::Packed(p) => (p.partition, &p.group, &p.window.key, p.window.size),
            _ => return out.extend_from_slice(self.key().as_bytes()),
        };
        crate::output::push_window_key(out, size, key.start, group, &[partition]);
    }

    /// The record's value, stamped with the configuration's fingerprint.
    pub fn encode(&self, fingerprint: u64) -> Vec<u8> {
        let mut w = Writer::new();
        self.write(fingerprint, &mut w);
        w.buf
    }

    /// [`PartMsg::encode`] into `buf` (cleared first), whose capacity serves again.
    pub fn encode_into(&self, fingerprint: u64, buf: &mut Vec<u8>) {
        Writer::reusing(buf, |w| self.write(fingerprint, w));
    }

    fn write(&self, fingerprint: u64, w: &mut Writer) {
        w.u8(VERSION);
        w.u64(fingerprint);
        match self {
            PartMsg::Part(p) => {
                let c = &p.window;
                write_part_head(w, p.partition, &p.group, &c.key, c.size, c.partial);
                c.agg.encode(w);
            }
            PartMsg::Packed(p) => {
                let c = &p.window;
                write_part_head(w, p.partition, &p.group, &c.key, c.size, c.partial);
                w.buf.extend_from_slice(&c.agg);
            }
            PartMsg::Watermark {
                partition,
                watermark,
            } => {
                w.u8(1);
                w.i64(i64::from(*partition));
                w.i64(*watermark);
            }
            PartMsg::Mark(m) => {
                w.u8(2);
                w.i64(m.merged_through);
                w.i64(m.oldest);
                w.i64(m.position);
                w.len(m.watermarks.len());
                for (p, wm) in &m.watermarks {
                    w.i64(i64::from(*p));
                    w.i64(*wm);
                }
            }
            PartMsg::End(id) => {
                w.u8(3);
                w.str(id);
            }
            PartMsg::Reset => w.u8(4),
        }
    }

    /// Decodes a value written by [`PartMsg::encode`]; a record of another configuration
    /// (fingerprint) or version is an error.
    pub fn decode(b: &[u8], fingerprint: u64) -> Result<PartMsg, CodecError> {
        let mut r = Reader::new(b);
        let v = r.u8()?;
        if v != VERSION {
            return Err(CodecError(format!(
                "parts record version {v}, expected {VERSION}"
            )));
        }
        let f = r.u64()?;
        if f != fingerprint {
            return Err(CodecError(format!(
                "parts record of another configuration (fingerprint {f:016x}, this one {fingerprint:016x})"
            )));
        }
        let partition = |r: &mut Reader<'_>| {
            i32::try_from(r.i64()?).map_err(|_| CodecError("partition out of range".into()))
        };
        let msg = match r.u8()? {
            0 => {
                let p = partition(&mut r)?;
                let n = r.len()?;
                let mut group = Vec::with_capacity(n);
                for _ in 0..n {
                    let d = dim_of(r.u8()?)?;
                    group.push((d, r.str()?.to_string()));
                }
                let size = r.i64()?;
                let size_idx = r.u8()?;
                let start = r.i64()?;
                let group_idx = r.u8()?;
                let partial = r.bool()?;
                let from = r.remaining();
                Aggregate::skip(&mut r)?;
                let agg = from[..from.len() - r.remaining().len()].to_vec();
                PartMsg::Packed(PackedPart {
                    partition: p,
                    group,
                    window: Packed {
                        key: WindowKey {
                            size_idx,
                            start,
                            group_idx,
                            values: [0; 4],
                        },
                        size,
                        partial,
                        agg,
                    },
                })
            }
            1 => PartMsg::Watermark {
                partition: partition(&mut r)?,
                watermark: r.i64()?,
            },
            2 => {
                let merged_through = r.i64()?;
                let oldest = r.i64()?;
                let position = r.i64()?;
                let n = r.len()?;
                let mut watermarks = Vec::with_capacity(n);
                for _ in 0..n {
                    watermarks.push((partition(&mut r)?, r.i64()?));
                }
                PartMsg::Mark(Mark {
                    merged_through,
                    oldest,
                    position,
                    watermarks,
                })
            }
            3 => PartMsg::End(r.str()?.to_string()),
            4 => PartMsg::Reset,
            t => return Err(CodecError(format!("unknown parts record type {t}"))),
        };
        if !r.is_empty() {
            return Err(CodecError("trailing bytes in a parts record".into()));
        }
        Ok(msg)
    }
}

/// A part's fields before its aggregate (the aggregate is the record's last field).
fn write_part_head(
    w: &mut Writer,
    partition: i32,
    group: &[(Dim, String)],
    key: &WindowKey,
    size: Millis,
    partial: bool,
) {
    w.u8(0);
    w.i64(i64::from(partition));
    w.len(group.len());
    for (d, v) in group {
        w.u8(dim_code(*d));
        w.str(v);
    }
    w.i64(size);
    w.u8(key.size_idx);
    w.i64(key.start);
    w.u8(key.group_idx);
    w.bool(partial);
}

fn dim_code(d: Dim) -> u8 {
    match d {
        Dim::Team => 0,
        Dim::Channel => 1,
        Dim::Priority => 2,
        Dim::Category => 3,
    }
}

fn dim_of(c: u8) -> Result<Dim, CodecError> {
    Ok(match c {
        0 => Dim::Team,
        1 => Dim::Channel,
        2 => Dim::Priority,
        3 => Dim::Category,
        _ => return Err(CodecError(format!("unknown dimension {c}"))),
    })
}
