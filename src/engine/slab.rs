//! A small generational slab: stable `u32` handles for ticket and customer state so timers and
//! held inputs can refer to state without owning strings.

#[derive(Debug)]
struct Slot<T> {
    generation: u32,
    value: Option<T>,
}

#[derive(Debug)]
pub struct Slab<T> {
    slots: Vec<Slot<T>>,
    free: Vec<u32>,
    len: usize,
}

impl<T> Default for Slab<T> {
    fn default() -> Self {
        Slab {
            slots: Vec::new(),
            free: Vec::new(),
            len: 0,
        }
    }
}

impl<T> Slab<T> {
    /// Stores a value; returns its index and generation.
    pub fn insert(&mut self, value: T) -> (u32, u32) {
        self.len += 1;
        if let Some(i) = self.free.pop() {
            let slot = &mut self.slots[i as usize];
            slot.generation = slot.generation.wrapping_add(1);
            slot.value = Some(value);
            (i, slot.generation)
        } else {
            self.slots.push(Slot {
                generation: 0,
                value: Some(value),
            });
            ((self.slots.len() - 1) as u32, 0)
        }
    }

    pub fn get(&self, i: u32) -> Option<&T> {
        self.slots.get(i as usize)?.value.as_ref()
    }

    pub fn get_mut(&mut self, i: u32) -> Option<&mut T> {
        self.slots.get_mut(i as usize)?.value.as_mut()
    }

    /// The value at `i` only if it is still the one that was given generation `generation`.
    pub fn get_gen_mut(&mut self, i: u32, generation: u32) -> Option<&mut T> {
        let slot = self.slots.get_mut(i as usize)?;
        if slot.generation == generation {
            slot.value.as_mut()
        } else {
            None
        }
    }

    pub fn remove(&mut self, i: u32) -> Option<T> {
        let v = self.slots.get_mut(i as usize)?.value.take();
        if v.is_some() {
            self.len -= 1;
            self.free.push(i);
        }
        v
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generations_guard_reuse() {
        let mut s = Slab::default();
        let (a, ga) = s.insert("a");
        s.remove(a);
        let (b, gb) = s.insert("b");
        assert_eq!(a, b);
        assert_ne!(ga, gb);
        assert!(s.get_gen_mut(a, ga).is_none());
        assert_eq!(s.get_gen_mut(b, gb).copied(), Some("b"));
        assert_eq!(s.len(), 1);
    }
}
