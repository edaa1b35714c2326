//! Ticket and customer state in a slab with its own index (memory, issue 10).
//!
//! Each value lives in a slot that also holds its 128-bit state key
//! ([`super::ticket::ticket_key`] or [`super::ticket::text_key`]). Timers and held inputs refer
//! to it by its stable `u32` handle: an SLA timer knows its ticket's clock by the sequence
//! number the clock keeps, the after-sales items by ids within the customer, whose state is
//! kept while they are pending — so a reused handle needs no generation. The key → handle index
//! is a hash table of bare `u32` handles (5 bytes a bucket with its control byte) that looks
//! keys up in the slots: the keys are already uniform hashes, so their low half is the table's
//! hash. A separate map of `u128` keys cost 33 bytes a bucket (16-byte alignment), 38–75 bytes
//! an entity.

use hashbrown::HashTable;

/// A state key stored as two halves: 8-byte alignment, so a slot does not pad to 16.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Key([u64; 2]);

impl Key {
    pub fn new(k: u128) -> Key {
        Key([k as u64, (k >> 64) as u64])
    }

    pub fn get(self) -> u128 {
        u128::from(self.0[0]) | (u128::from(self.0[1]) << 64)
    }

    /// The hash tables' hash: the key is a uniform hash already.
    pub fn hash(self) -> u64 {
        self.0[0]
    }
}

#[derive(Debug)]
struct Slot<T> {
    key: Key,
    value: Option<T>,
}

/// Values by handle, and handles by key.
#[derive(Debug)]
pub struct Slab<T> {
    slots: Vec<Slot<T>>,
    free: Vec<u32>,
    len: usize,
    index: HashTable<u32>,
    first: FirstBucket,
}

impl<T> Default for Slab<T> {
    fn default() -> Self {
        Slab {
            slots: Vec::new(),
            free: Vec::new(),
            len: 0,
            index: HashTable::new(),
            first: FirstBucket::default(),
        }
    }
}

impl<T> Slab<T> {
    /// Stores a value under `key` (replacing any value it had); returns its handle.
    pub fn insert(&mut self, key: u128, value: T) -> u32 {
        if let Some(old) = self.find(key) {
            self.remove(old);
        }
        let key = Key::new(key);
        self.len += 1;
        let i = if let Some(i) = self.free.pop() {
            let slot = &mut self.slots[i as usize];
            slot.key = key;
            slot.value = Some(value);
            i
        } else {
            self.slots.push(Slot {
                key,
                value: Some(value),
            });
            (self.slots.len() - 1) as u32
        };
        let slots = &self.slots;
        self.index
            .insert_unique(key.hash(), i, |&j| slots[j as usize].key.hash());
        i
    }

    /// The handle of the value stored under `key`.
    pub fn find(&self, key: u128) -> Option<u32> {
        let key = Key::new(key);
        let slots = &self.slots;
        self.index
            .find(key.hash(), |&j| slots[j as usize].key == key)
            .copied()
    }

    /// The first step of a prefetch (issue 10), for a lookup of `key` a few events ahead:
    /// asks the CPU to bring the index entries the lookup starts at into its cache, without
    /// waiting for them. Changes nothing.
    pub fn prefetch_index(&self, key: u128) {
        self.first.prefetch_probe(&self.index, Key::new(key).hash());
    }

    /// The second step, a little later: the index is cached now, so the slot stored under
    /// `key` (if any) is found without waiting and its cache lines are asked for.
    pub fn prefetch_slot(&self, key: u128) {
        let key = Key::new(key);
        for &j in self.index.iter_hash(key.hash()) {
            self.prefetch_handle(j);
        }
    }

    /// The prefetches of a walk over `keys` in order, at position `i`: the index entries of
    /// the key 16 positions on, the slot of the key 8 on (so both are cached when the walk
    /// gets there). A checkpoint's cut visits its changed entities in an order unrelated to
    /// where they are in memory (issue 10).
    pub fn prefetch_walk(&self, keys: &[u128], i: usize) {
        if let Some(&k) = keys.get(i + 16) {
            self.prefetch_index(k);
        }
        if let Some(&k) = keys.get(i + 8) {
            self.prefetch_slot(k);
        }
    }

    /// Asks the CPU for the slot of handle `i`, without waiting.
    pub fn prefetch_handle(&self, i: u32) {
        if let Some(slot) = self.slots.get(i as usize) {
            prefetch(slot);
        }
    }

    /// The value stored under `key`.
    pub fn by_key_mut(&mut self, key: u128) -> Option<&mut T> {
        let i = self.find(key)?;
        self.get_mut(i)
    }

    pub fn get(&self, i: u32) -> Option<&T> {
        self.slots.get(i as usize)?.value.as_ref()
    }

    pub fn get_mut(&mut self, i: u32) -> Option<&mut T> {
        self.slots.get_mut(i as usize)?.value.as_mut()
    }

    /// Removes the value at `i` and its key from the index; returns the value and its key.
    pub fn remove(&mut self, i: u32) -> Option<(T, u128)> {
        let slot = self.slots.get_mut(i as usize)?;
        let v = slot.value.take()?;
        let key = slot.key;
        self.len -= 1;
        self.free.push(i);
        if let Ok(e) = self.index.find_entry(key.hash(), |&j| j == i) {
            e.remove();
        }
        Some((v, key.get()))
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn iter(&self) -> impl Iterator<Item = (u32, &T)> {
        self.slots
            .iter()
            .enumerate()
            .filter_map(|(i, s)| s.value.as_ref().map(|v| (i as u32, v)))
    }
}

/// Asks the CPU to bring the cache lines of `value` in, without waiting (a hint: no effect
/// on any result).
pub fn prefetch<T>(value: &T) {
    let p = (value as *const T).cast::<u8>();
    for off in (0..std::mem::size_of::<T>()).step_by(64) {
        prefetch_at(p.wrapping_add(off));
    }
}

/// A prefetch of the cache line at `p`. `p` is never read: a prefetch does not fault and
/// gives the program nothing, so a wrong address only wastes the hint.
fn prefetch_at(p: *const u8) {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
        // SAFETY: SSE is part of x86_64, and a prefetch reads nothing (see above).
        unsafe { _mm_prefetch::<_MM_HINT_T0>(p.cast::<i8>()) };
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = p;
}

/// Where a hashbrown table's lookup of a hash starts, for a prefetch: hashbrown keeps the
/// buckets downwards from its control bytes (bucket `i` ends `i` buckets before them) and
/// starts probing at `hash & (buckets - 1)` (hashbrown's `data_end` and `probe_seq`;
/// `index_layout_is_as_prefetched` checks it). The position of one full bucket is
/// remembered to find the control bytes; it is checked on each use, so a stale one costs a
/// search of the table, never a wrong result — and a wrong address is only a wasted hint.
#[derive(Debug, Default)]
struct FirstBucket(std::cell::Cell<usize>);

impl FirstBucket {
    /// The address of the control bytes of `t`, if it has any entry.
    fn ctrl<T>(&self, t: &HashTable<T>) -> Option<*const u8> {
        if t.is_empty() {
            // Nothing to find, and no search of an emptied table's control bytes.
            return None;
        }
        let i = match t.get_bucket(self.0.get()) {
            Some(_) => self.0.get(),
            None => {
                let i = t.iter_buckets().next()?;
                self.0.set(i);
                i
            }
        };
        let b = (t.get_bucket(i)? as *const T).cast::<u8>();
        Some(b.wrapping_add((i + 1) * std::mem::size_of::<T>()))
    }

    /// Asks for the control bytes and the first bucket a lookup of `hash` reads.
    fn prefetch_probe<T>(&self, t: &HashTable<T>, hash: u64) {
        if let Some(ctrl) = self.ctrl(t) {
            let pos = (hash as usize) & (t.num_buckets() - 1);
            prefetch_at(ctrl.wrapping_add(pos));
            prefetch_at(ctrl.wrapping_sub((pos + 1) * std::mem::size_of::<T>()));
        }
    }
}

/// A set of keys with a time each (the dedup memory of event ids): 20 bytes a bucket — the
/// key's low 96 bits (a false duplicate needs two of the remembered ids to agree on 96 bits of
/// xxh3: about 2^-96 × the ids remembered per lookup) and the time, in 4-byte words.
#[derive(Debug, Default)]
pub struct KeyTimes {
    table: HashTable<IdTime>,
    first: FirstBucket,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct IdTime {
    key: [u32; 3],
    time: [u32; 2],
}

/// The stored part of a key.
fn id96(key: u128) -> [u32; 3] {
    [key as u32, (key >> 32) as u32, (key >> 64) as u32]
}

fn id_hash(k: &[u32; 3]) -> u64 {
    u64::from(k[0]) | (u64::from(k[1]) << 32)
}

impl IdTime {
    fn time(&self) -> i64 {
        (u64::from(self.time[0]) | (u64::from(self.time[1]) << 32)) as i64
    }

    fn new(key: [u32; 3], t: i64) -> IdTime {
        IdTime {
            key,
            time: [t as u32, ((t as u64) >> 32) as u32],
        }
    }
}

impl KeyTimes {
    /// Like [`Slab::prefetch_index`]: the entry itself is in the index.
    pub fn prefetch(&self, key: u128) {
        self.first.prefetch_probe(&self.table, id_hash(&id96(key)));
    }

    pub fn get(&self, key: u128) -> Option<i64> {
        let k = id96(key);
        self.table
            .find(id_hash(&k), |e| e.key == k)
            .map(IdTime::time)
    }

    /// Sets the time of `key`.
    pub fn insert(&mut self, key: u128, time: i64) {
        let k = id96(key);
        let e = IdTime::new(k, time);
        match self.table.find_mut(id_hash(&k), |e| e.key == k) {
            Some(old) => *old = e,
            None => {
                self.table
                    .insert_unique(id_hash(&k), e, |e| id_hash(&e.key));
            }
        }
    }

    pub fn retain(&mut self, mut keep: impl FnMut(i64) -> bool) {
        self.table.retain(|e| keep(e.time()));
    }

    pub fn len(&self) -> usize {
        self.table.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The prefetch's model of hashbrown's layout (see [`FirstBucket`]): bucket `i` ends
    /// `i` buckets before the control bytes, and a lookup starts at `hash & (buckets - 1)`,
    /// where most keys are found (in the group read from there). If hashbrown changes this,
    /// the results stay right but the prefetch is wasted: this test says so.
    #[test]
    fn index_layout_is_as_prefetched() {
        let mut s = Slab::default();
        let key = |i: u32| crate::engine::ticket::text_key(&format!("k{i}"));
        for i in 0..50_000u32 {
            s.insert(key(i), i);
        }
        for i in (0..50_000u32).step_by(7) {
            let h = s.find(key(i)).expect("present");
            s.remove(h);
        }
        let t = &s.index;
        let ctrl = s.first.ctrl(t).expect("entries") as usize;
        let size = std::mem::size_of::<u32>();
        let mut full = 0;
        for i in t.iter_buckets() {
            let b = t.get_bucket(i).expect("full") as *const u32 as usize;
            assert_eq!(b, ctrl - (i + 1) * size, "bucket {i}");
            full += 1;
        }
        assert_eq!(full, s.len());
        let n = t.num_buckets();
        let mut near = 0;
        for i in (0..50_000u32).filter(|i| i % 7 != 0) {
            let k = Key::new(key(i));
            let slots = &s.slots;
            let at = t
                .find_bucket_index(k.hash(), |&j| slots[j as usize].key == k)
                .expect("present");
            let start = (k.hash() as usize) & (n - 1);
            near += usize::from((at + n - start) % n < 16);
        }
        assert!(near * 10 > s.len() * 8, "{near} of {}", s.len());
    }

    #[test]
    fn handles_are_reused_under_their_new_key() {
        let mut s = Slab::default();
        let a = s.insert(1, "a");
        assert_eq!(s.find(1), Some(a));
        assert_eq!(s.remove(a), Some(("a", 1)));
        assert_eq!(s.find(1), None);
        let b = s.insert(2, "b");
        assert_eq!(a, b);
        assert_eq!(s.get(b).copied(), Some("b"));
        assert_eq!(s.len(), 1);
        assert_eq!(s.find(2), Some(b));
    }

    #[test]
    fn keys_find_their_values_through_growth_and_removal() {
        let mut s = Slab::default();
        let key = |i: u32| crate::engine::ticket::text_key(&i.to_string());
        for i in 0..10_000u32 {
            s.insert(key(i), i);
        }
        for i in (0..10_000u32).step_by(3) {
            let h = s.find(key(i)).expect("present");
            assert_eq!(s.remove(h).map(|(v, _)| v), Some(i));
        }
        for i in 0..10_000u32 {
            let found = s.find(key(i)).and_then(|h| s.get(h).copied());
            assert_eq!(found, (i % 3 != 0).then_some(i));
        }
        // A second insert under a key replaces its value.
        let h = s.insert(key(1), 99);
        assert_eq!(s.find(key(1)), Some(h));
        assert_eq!(s.len(), 10_000 - 3334);
        assert_eq!(s.by_key_mut(key(1)).copied(), Some(99));
    }

    #[test]
    fn key_times_keep_the_latest_time_and_retain() {
        let mut d = KeyTimes::default();
        for i in 0..1000i64 {
            d.insert(i as u128 * 0x9e37_79b9_7f4a_7c15, i);
        }
        d.insert(7, -1_795_852_800_000);
        assert_eq!(d.get(7), Some(-1_795_852_800_000));
        d.insert(7, i64::MAX);
        assert_eq!(d.get(7), Some(i64::MAX));
        d.insert(7, 0);
        d.insert(5 * 0x9e37_79b9_7f4a_7c15, 2000);
        assert_eq!(d.get(5 * 0x9e37_79b9_7f4a_7c15), Some(2000));
        d.retain(|t| t >= 500);
        assert_eq!(d.len(), 501);
        assert_eq!(d.get(4 * 0x9e37_79b9_7f4a_7c15), None);
    }

    /// Memory (issue 10): a key costs 16 bytes in its slot, not 16-byte alignment; a
    /// remembered id 20 bytes.
    #[test]
    fn keys_do_not_pad_slots() {
        assert_eq!(std::mem::size_of::<Slot<(Box<u8>, u64)>>(), 32);
        assert_eq!(std::mem::size_of::<IdTime>(), 20);
    }
}
