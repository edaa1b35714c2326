//! Interned team names. Teams are free text (SPEC §1: any string of 1–64 chars); measurements,
//! window keys and ticket state carry a `u32` instead, so the hot path never compares or copies
//! the strings. Ids are handed out in first-seen order (`unassigned` is always 0), which is
//! also the order of team groups within one window close step.

use std::hash::BuildHasherDefault;

use rustc_hash::FxHasher;

type FxMap<K, V> = std::collections::HashMap<K, V, BuildHasherDefault<FxHasher>>;

/// Team names ↔ `u32` ids.
#[derive(Debug, Default, Clone)]
pub struct Interner {
    /// Names by id.
    names: Vec<Box<str>>,
    /// Ids by name.
    ids: FxMap<Box<str>, u32>,
}

impl Interner {
    /// The id of `s`, assigning the next one if it is new.
    pub fn intern(&mut self, s: &str) -> u32 {
        if let Some(&id) = self.ids.get(s) {
            return id;
        }
        let id = self.names.len() as u32;
        self.names.push(s.into());
        self.ids.insert(s.into(), id);
        id
    }

    /// The name of `id` (empty for an id never handed out).
    pub fn name(&self, id: u32) -> &str {
        self.names.get(id as usize).map_or("", |s| s)
    }

    /// Number of names interned.
    pub fn len(&self) -> usize {
        self.names.len()
    }

    /// Whether nothing is interned yet.
    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }
}
