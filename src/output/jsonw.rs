//! A small JSON writer for output records: objects written straight into a byte buffer,
//! without building a `serde_json::Value` (maps, strings and boxes per field) first.
//!
//! It writes exactly what `serde_json` writes for the same `Value` — compact form, keys in
//! insertion order, strings escaped as `serde_json` escapes them, integers as `itoa` and
//! finite floats as `zmij` formats them (`serde_json` uses both), non-finite floats as `null`
//! — so that a record's line is byte for byte `record.to_json().to_string()`. Unit tests in
//! [`super`] check that equality for every record type.

/// Appends `s` as a JSON string (quotes included), escaped as `serde_json` escapes it: `"`,
/// `\` and control characters only; the short forms `\b \f \n \r \t`, else `\u00XX`.
pub fn string(out: &mut Vec<u8>, s: &str) {
    out.push(b'"');
    let bytes = s.as_bytes();
    let (mut start, mut i) = (0, 0);
    loop {
        // Eight bytes at a time while none needs escaping (long ones: `hdr`, payloads).
        while let Some(w) = bytes.get(i..i + 8) {
            let mut word = [0u8; 8];
            word.copy_from_slice(w);
            if crate::event::special(u64::from_le_bytes(word)) {
                break;
            }
            i += 8;
        }
        let Some(&b) = bytes.get(i) else {
            break;
        };
        let esc: &[u8] = match b {
            b'"' => b"\\\"",
            b'\\' => b"\\\\",
            b'\n' => b"\\n",
            b'\r' => b"\\r",
            b'\t' => b"\\t",
            0x08 => b"\\b",
            0x0c => b"\\f",
            0..=0x1f => {
                out.extend_from_slice(&bytes[start..i]);
                const HEX: &[u8; 16] = b"0123456789abcdef";
                out.extend_from_slice(&[
                    b'\\',
                    b'u',
                    b'0',
                    b'0',
                    HEX[(b >> 4) as usize],
                    HEX[(b & 0xf) as usize],
                ]);
                i += 1;
                start = i;
                continue;
            }
            _ => {
                i += 1;
                continue;
            }
        };
        out.extend_from_slice(&bytes[start..i]);
        out.extend_from_slice(esc);
        i += 1;
        start = i;
    }
    out.extend_from_slice(&bytes[start..]);
    out.push(b'"');
}

/// Appends an integer.
pub fn int(out: &mut Vec<u8>, v: impl itoa::Integer) {
    out.extend_from_slice(itoa::Buffer::new().format(v).as_bytes());
}

/// Appends a float: `zmij`'s shortest round-trip form when finite, `null` otherwise (what
/// `json!(f64)` serializes to).
pub fn float(out: &mut Vec<u8>, v: f64) {
    if v.is_finite() {
        out.extend_from_slice(zmij::Buffer::new().format_finite(v).as_bytes());
    } else {
        out.extend_from_slice(b"null");
    }
}

/// An optional float: `null` when absent.
pub fn opt_float(out: &mut Vec<u8>, v: Option<f64>) {
    match v {
        Some(v) => float(out, v),
        None => out.extend_from_slice(b"null"),
    }
}

/// An object being written: `{` on creation, `,` between fields, `}` on [`Obj::end`].
pub struct Obj<'a> {
    /// The buffer written to.
    pub out: &'a mut Vec<u8>,
    first: bool,
}

impl<'a> Obj<'a> {
    /// Opens an object.
    pub fn new(out: &'a mut Vec<u8>) -> Self {
        out.push(b'{');
        Obj { out, first: true }
    }

    /// Writes the key of the next field (a plain ASCII name that needs no escaping) and
    /// returns the buffer, for its value.
    pub fn key(&mut self, k: &str) -> &mut Vec<u8> {
        if !self.first {
            self.out.push(b',');
        }
        self.first = false;
        self.out.push(b'"');
        self.out.extend_from_slice(k.as_bytes());
        self.out.extend_from_slice(b"\":");
        self.out
    }

    /// A field whose key may need escaping.
    pub fn key_escaped(&mut self, k: &str) -> &mut Vec<u8> {
        if !self.first {
            self.out.push(b',');
        }
        self.first = false;
        string(self.out, k);
        self.out.push(b':');
        self.out
    }

    /// An integer field.
    pub fn int(&mut self, k: &str, v: impl itoa::Integer) {
        let out = self.key(k);
        int(out, v);
    }

    /// A float field (`null` when not finite).
    pub fn float(&mut self, k: &str, v: f64) {
        let out = self.key(k);
        float(out, v);
    }

    /// An optional float field (`null` when absent).
    pub fn opt_float(&mut self, k: &str, v: Option<f64>) {
        let out = self.key(k);
        opt_float(out, v);
    }

    /// A string field.
    pub fn str(&mut self, k: &str, v: &str) {
        let out = self.key(k);
        string(out, v);
    }

    /// A boolean field.
    pub fn bool(&mut self, k: &str, v: bool) {
        let out = self.key(k);
        out.extend_from_slice(if v { b"true" } else { b"false" });
    }

    /// A field whose value is a nested object, written by `f`.
    pub fn obj(&mut self, k: &str, f: impl FnOnce(&mut Obj<'_>)) {
        let out = self.key(k);
        let mut o = Obj::new(out);
        f(&mut o);
        o.end();
    }

    /// Closes the object.
    pub fn end(self) {
        self.out.push(b'}');
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_and_numbers_are_written_as_serde_json_writes_them() {
        for s in [
            "",
            "plain",
            "quote \" backslash \\ slash /",
            "\u{0}\u{1}\u{8}\u{9}\u{a}\u{b}\u{c}\u{d}\u{1f}\u{7f}",
            "é ü 😀 \u{2028}",
        ] {
            let mut out = Vec::new();
            string(&mut out, s);
            assert_eq!(out, serde_json::to_vec(s).unwrap(), "{s:?}");
        }
        for f in [
            0.0,
            -0.0,
            1.0,
            0.1,
            33.333333333333336,
            1e21,
            1e-7,
            123456.789,
            f64::MAX,
            f64::NAN,
            f64::INFINITY,
        ] {
            let mut out = Vec::new();
            float(&mut out, f);
            assert_eq!(out, serde_json::json!(f).to_string().into_bytes(), "{f}");
        }
        let mut out = Vec::new();
        int(&mut out, -42i64);
        assert_eq!(out, b"-42");
    }

    /// The eight-bytes-at-a-time path: every character that is escaped, and some that are
    /// not (multi-byte ones, DEL, bytes just above the control range), at every position of
    /// strings of 0 to 40 bytes, alone and in pairs.
    #[test]
    fn strings_escape_every_special_byte_at_every_position() {
        let specials = [
            '"', '\\', '\n', '\r', '\t', '\u{8}', '\u{c}', '\u{0}', '\u{1f}', ' ', '\u{7f}', 'é',
            '😀',
        ];
        for len in 0..40 {
            for (a, &x) in specials.iter().enumerate() {
                for at in 0..=len {
                    for &y in &specials[a..] {
                        let mut s: String =
                            "abcdefghijklmnopqrstuvwxyz0123456789ABCD"[..len].into();
                        s.insert(at, x);
                        s.push(y);
                        let mut out = Vec::new();
                        string(&mut out, &s);
                        assert_eq!(out, serde_json::to_vec(&s).unwrap(), "{s:?}");
                    }
                }
            }
        }
    }
}
