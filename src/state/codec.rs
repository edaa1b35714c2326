//! A small binary codec for checkpointed state: LEB128 varints (zig-zag for signed), IEEE
//! floats as their bits, length-prefixed bytes and strings. Plain, versioned by the manifest
//! (see [`super::FORMAT_VERSION`]), and never trusted: every read is bounds-checked and a
//! malformed record is an error that names what was being read, never a panic.

use thiserror::Error;

/// A checkpoint record that cannot be decoded.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("malformed state record: {0}")]
pub struct CodecError(pub String);

/// Appends encoded values to a byte buffer.
#[derive(Debug, Default, Clone)]
pub struct Writer {
    /// The bytes written so far.
    pub buf: Vec<u8>,
}

impl Writer {
    /// An empty writer.
    pub fn new() -> Writer {
        Writer::default()
    }

    /// Runs `f` on a writer over `buf`, cleared first: a buffer kept between records keeps
    /// its capacity instead of growing a new one each time; `buf` then holds what `f` wrote.
    pub fn reusing(buf: &mut Vec<u8>, f: impl FnOnce(&mut Writer)) {
        buf.clear();
        let mut w = Writer {
            buf: std::mem::take(buf),
        };
        f(&mut w);
        *buf = w.buf;
    }

    /// One byte.
    pub fn u8(&mut self, v: u8) {
        self.buf.push(v);
    }

    /// A boolean as one byte.
    pub fn bool(&mut self, v: bool) {
        self.buf.push(v as u8);
    }

    /// An unsigned integer, LEB128.
    pub fn u64(&mut self, mut v: u64) {
        loop {
            let byte = (v & 0x7f) as u8;
            v >>= 7;
            if v == 0 {
                self.buf.push(byte);
                return;
            }
            self.buf.push(byte | 0x80);
        }
    }

    /// A signed integer, zig-zag then LEB128.
    pub fn i64(&mut self, v: i64) {
        self.u64(((v << 1) ^ (v >> 63)) as u64);
    }

    /// An optional signed integer.
    pub fn opt_i64(&mut self, v: Option<i64>) {
        match v {
            None => self.u8(0),
            Some(x) => {
                self.u8(1);
                self.i64(x);
            }
        }
    }

    /// A float, bit for bit.
    pub fn f64(&mut self, v: f64) {
        self.buf.extend_from_slice(&v.to_bits().to_le_bytes());
    }

    /// Length-prefixed bytes.
    pub fn bytes(&mut self, b: &[u8]) {
        self.u64(b.len() as u64);
        self.buf.extend_from_slice(b);
    }

    /// A length-prefixed UTF-8 string.
    pub fn str(&mut self, s: &str) {
        self.bytes(s.as_bytes());
    }

    /// An optional string.
    pub fn opt_str(&mut self, s: Option<&str>) {
        match s {
            None => self.u8(0),
            Some(x) => {
                self.u8(1);
                self.str(x);
            }
        }
    }

    /// The number of elements of a sequence that follows.
    pub fn len(&mut self, n: usize) {
        self.u64(n as u64);
    }

    /// Whether nothing was written.
    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }
}

/// Reads values back, in the order they were written.
#[derive(Debug, Clone)]
pub struct Reader<'a> {
    /// The bytes not read yet.
    rest: &'a [u8],
}

impl<'a> Reader<'a> {
    /// A reader over `b`.
    pub fn new(b: &'a [u8]) -> Reader<'a> {
        Reader { rest: b }
    }

    fn fail<T>(&self, what: &str) -> Result<T, CodecError> {
        Err(CodecError(format!(
            "{what} at {} bytes from the end",
            self.rest.len()
        )))
    }

    /// Whether everything was read.
    pub fn is_empty(&self) -> bool {
        self.rest.is_empty()
    }

    /// The bytes not read yet.
    pub fn remaining(&self) -> &'a [u8] {
        self.rest
    }

    /// One byte.
    pub fn u8(&mut self) -> Result<u8, CodecError> {
        match self.rest.split_first() {
            Some((b, rest)) => {
                self.rest = rest;
                Ok(*b)
            }
            None => self.fail("truncated byte"),
        }
    }

    /// A boolean.
    pub fn bool(&mut self) -> Result<bool, CodecError> {
        match self.u8()? {
            0 => Ok(false),
            1 => Ok(true),
            _ => self.fail("bad boolean"),
        }
    }

    /// An unsigned LEB128 integer.
    pub fn u64(&mut self) -> Result<u64, CodecError> {
        // Most counters fit one byte.
        if let Some((&b, rest)) = self.rest.split_first() {
            if b & 0x80 == 0 {
                self.rest = rest;
                return Ok(u64::from(b));
            }
        }
        let mut v: u64 = 0;
        for shift in (0..64).step_by(7) {
            let b = self.u8()?;
            v |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        self.fail("varint too long")
    }

    /// Reads past `n` unsigned LEB128 integers: what `n` calls of [`Self::u64`] read, or
    /// the same error, without their values.
    pub fn skip_u64s(&mut self, n: usize) -> Result<(), CodecError> {
        let (mut left, mut run) = (n, 0);
        for (i, &b) in self.rest.iter().enumerate() {
            if left == 0 {
                self.rest = &self.rest[i..];
                return Ok(());
            }
            if b & 0x80 == 0 {
                left -= 1;
                run = 0;
            } else {
                run += 1;
                if run == 10 {
                    self.rest = &self.rest[i + 1..];
                    return self.fail("varint too long");
                }
            }
        }
        self.rest = &[];
        if left == 0 {
            Ok(())
        } else {
            self.fail("truncated byte")
        }
    }

    /// A zig-zag signed integer.
    pub fn i64(&mut self) -> Result<i64, CodecError> {
        let z = self.u64()?;
        Ok(((z >> 1) as i64) ^ -((z & 1) as i64))
    }

    /// An optional signed integer.
    pub fn opt_i64(&mut self) -> Result<Option<i64>, CodecError> {
        Ok(match self.u8()? {
            0 => None,
            1 => Some(self.i64()?),
            _ => return self.fail("bad option tag"),
        })
    }

    /// A `u32` (written as a varint).
    pub fn u32(&mut self) -> Result<u32, CodecError> {
        u32::try_from(self.u64()?).or_else(|_| self.fail("u32 out of range"))
    }

    /// A float.
    pub fn f64(&mut self) -> Result<f64, CodecError> {
        if self.rest.len() < 8 {
            return self.fail("truncated float");
        }
        let (b, rest) = self.rest.split_at(8);
        self.rest = rest;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(f64::from_bits(u64::from_le_bytes(a)))
    }

    /// Length-prefixed bytes.
    pub fn bytes(&mut self) -> Result<&'a [u8], CodecError> {
        let n = self.u64()?;
        if n > self.rest.len() as u64 {
            return self.fail("truncated bytes");
        }
        let (b, rest) = self.rest.split_at(n as usize);
        self.rest = rest;
        Ok(b)
    }

    /// A length-prefixed UTF-8 string.
    pub fn str(&mut self) -> Result<&'a str, CodecError> {
        let b = self.bytes()?;
        std::str::from_utf8(b).or_else(|_| self.fail("string is not UTF-8"))
    }

    /// An optional string.
    pub fn opt_str(&mut self) -> Result<Option<&'a str>, CodecError> {
        Ok(match self.u8()? {
            0 => None,
            1 => Some(self.str()?),
            _ => return self.fail("bad option tag"),
        })
    }

    /// The number of elements of a sequence, bounded by what is left to read (each element
    /// takes at least one byte), so a corrupt length cannot make a huge allocation.
    pub fn len(&mut self) -> Result<usize, CodecError> {
        let n = self.u64()?;
        if n > self.rest.len() as u64 {
            return self.fail("sequence longer than the record");
        }
        Ok(n as usize)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `skip_u64s(n)` accepts what `n` calls of `u64` accept, leaves the same rest, and
    /// refuses what they refuse (truncated, or a varint of more than ten bytes), over every
    /// short string of bytes that matter and longer random ones.
    #[test]
    fn skipping_varints_is_reading_them() {
        let alphabet = [0x00, 0x01, 0x7f, 0x80, 0xff];
        let mut inputs: Vec<Vec<u8>> = vec![vec![]];
        for len in 1..=5 {
            for code in 0..alphabet.len().pow(len) {
                let mut c = code;
                inputs.push(
                    (0..len)
                        .map(|_| {
                            let b = alphabet[c % alphabet.len()];
                            c /= alphabet.len();
                            b
                        })
                        .collect(),
                );
            }
        }
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        for _ in 0..2_000 {
            let len = (x % 40) as usize;
            inputs.push(
                (0..len)
                    .map(|_| {
                        x ^= x << 13;
                        x ^= x >> 7;
                        x ^= x << 17;
                        // Mostly continuation bytes, so that long varints occur.
                        if x.is_multiple_of(5) {
                            x as u8 & 0x7f
                        } else {
                            x as u8 | 0x80
                        }
                    })
                    .collect(),
            );
        }
        inputs.push([0x80; 10].to_vec());
        inputs.push([[0x80; 9].as_slice(), &[0x01, 0x05]].concat());
        for b in &inputs {
            for n in 0..4 {
                let mut read = Reader::new(b);
                let by_u64 = (0..n).try_for_each(|_| read.u64().map(drop));
                let mut skip = Reader::new(b);
                let skipped = skip.skip_u64s(n);
                assert_eq!(by_u64.is_ok(), skipped.is_ok(), "{b:02x?} n={n}");
                if by_u64.is_ok() {
                    assert_eq!(read.remaining(), skip.remaining(), "{b:02x?} n={n}");
                }
            }
        }
    }

    #[test]
    fn values_round_trip() {
        let mut w = Writer::new();
        w.u64(0);
        w.u64(u64::MAX);
        w.i64(i64::MIN);
        w.i64(-1);
        w.i64(i64::MAX);
        w.opt_i64(None);
        w.opt_i64(Some(-42));
        w.f64(-0.25);
        w.f64(f64::NAN);
        w.str("é\u{1F600}");
        w.opt_str(None);
        w.bool(true);
        w.len(3);
        let mut r = Reader::new(&w.buf);
        assert_eq!(r.u64().unwrap(), 0);
        assert_eq!(r.u64().unwrap(), u64::MAX);
        assert_eq!(r.i64().unwrap(), i64::MIN);
        assert_eq!(r.i64().unwrap(), -1);
        assert_eq!(r.i64().unwrap(), i64::MAX);
        assert_eq!(r.opt_i64().unwrap(), None);
        assert_eq!(r.opt_i64().unwrap(), Some(-42));
        assert_eq!(r.f64().unwrap(), -0.25);
        assert!(r.f64().unwrap().is_nan());
        assert_eq!(r.str().unwrap(), "é\u{1F600}");
        assert_eq!(r.opt_str().unwrap(), None);
        assert!(r.bool().unwrap());
        assert!(r.len().is_err(), "3 elements cannot fit in 0 bytes");
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        for bytes in [&[0xff_u8; 11][..], &[5, b'a'], &[2, 0xff, 0xfe], &[]] {
            let mut r = Reader::new(bytes);
            assert!(r.u64().and_then(|_| r.str().map(|_| ())).is_err());
        }
    }
}
