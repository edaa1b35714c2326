//! The keys of state-topic records (see the layout in [`super`]).

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
