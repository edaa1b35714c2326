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
mod image;
mod keys;
mod manifest;

pub use image::*;
pub use keys::Key;
pub use manifest::Manifest;

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

impl StateRecord {
    /// Key + value bytes (what it takes of the producer's queue).
    pub fn bytes(&self) -> u64 {
        (self.key.len() + self.value.as_ref().map_or(0, Vec::len)) as u64
    }
}
