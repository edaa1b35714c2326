//! The fast path of [`super::decode()`] (issue 10): a plain event object read without serde.
//!
//! Events as producers write them are flat objects of strings without escapes, integers,
//! decimals, booleans and `null` (and sometimes a small array or object in a field nobody
//! reads). [`plain_raw`] reads exactly such an object into the same [`Raw`] that serde_json
//! would give, and gives up (`false`) on anything else — an escape or a control character in
//! a string, a number outside the numeric fields, a repeated field, nesting deeper than
//! [`MAX_DEPTH`], bad syntax — so that serde_json reads it and reports what is wrong in its
//! own words. What is accepted is therefore a subset of what serde_json accepts, read the same
//! way: the dead letters and events of a replay do not depend on which path read a line
//! (tested against serde_json on generated and mutated lines).

use std::borrow::Cow;

use super::decode::{Loose, Raw, RawText};

/// A value as the fast path reads it.
#[derive(Clone, Copy)]
enum Value<'a> {
    /// A string without escapes: its characters, and its text with the quotes.
    Str(&'a str, &'a str),
    Bool(bool, &'a str),
    Null,
    /// A number, as written (grammar of RFC 8259 §6).
    Num(&'a str),
    /// An array or an object (`true`: an array), and its text.
    Nested(bool, &'a str),
}

/// Reads `text` into `raw` (empty before) if it is a plain object (see the module doc);
/// `false` if it is not (`raw` is then partly filled).
pub(super) fn plain_raw<'a>(text: &'a str, raw: &mut Raw<'a>) -> bool {
    read(text, raw).is_some()
}

fn read<'a>(text: &'a str, raw: &mut Raw<'a>) -> Option<()> {
    let mut s = Scanner {
        b: text.as_bytes(),
        text,
        i: 0,
    };
    let mut seen = 0u32;
    s.ws();
    if s.peek()? != b'{' {
        return None;
    }
    s.container(b'{', 0, |key, value| {
        if let Some(bit) = store(raw, key?, value)? {
            if seen & bit != 0 {
                return None;
            }
            seen |= bit;
        }
        Some(())
    })?;
    s.ws();
    (s.i == s.b.len()).then_some(())
}

/// Puts `value` in the field `key` of `raw`. `Some(Some(bit))`: the field's bit, for
/// repeats; `Some(None)`: an unknown field (ignored, as serde does); `None`: give up.
fn store<'a>(raw: &mut Raw<'a>, key: &str, value: Value<'a>) -> Option<Option<u32>> {
    let loose = |raw_field: &mut Option<Loose<'a>>, bit: u32| {
        *raw_field = match value {
            Value::Str(s, _) => Some(Loose::Str(Cow::Borrowed(s))),
            Value::Bool(b, _) => Some(Loose::Bool(b)),
            Value::Null => None,
            Value::Nested(true, _) => Some(Loose::Array),
            Value::Nested(false, _) => Some(Loose::Object),
            // serde_json tells integers from floats and rejects floats beyond f64.
            Value::Num(_) => return None,
        };
        Some(Some(bit))
    };
    let text = |raw_field: &mut Option<RawText<'a>>, bit: u32| {
        *raw_field = match value {
            Value::Str(_, t) | Value::Bool(_, t) | Value::Num(t) | Value::Nested(_, t) => {
                Some(RawText(t))
            }
            Value::Null => None,
        };
        Some(Some(bit))
    };
    match key {
        "id" => loose(&mut raw.id, 1),
        "type" => loose(&mut raw.ty, 1 << 1),
        "time" => loose(&mut raw.time, 1 << 2),
        "customer" => loose(&mut raw.customer, 1 << 3),
        "ticket" => loose(&mut raw.ticket, 1 << 4),
        "channel" => loose(&mut raw.channel, 1 << 5),
        "priority" => loose(&mut raw.priority, 1 << 6),
        "team" => loose(&mut raw.team, 1 << 7),
        "category" => loose(&mut raw.category, 1 << 8),
        "author" => loose(&mut raw.author, 1 << 9),
        "agent" => loose(&mut raw.agent, 1 << 10),
        "public" => loose(&mut raw.public, 1 << 11),
        "handle_seconds" => text(&mut raw.handle_seconds, 1 << 12),
        "score" => text(&mut raw.score, 1 << 13),
        "order" => loose(&mut raw.order, 1 << 14),
        "amount" => text(&mut raw.amount, 1 << 15),
        "reason" => loose(&mut raw.reason, 1 << 16),
        "product" => loose(&mut raw.product, 1 << 17),
        // serde_json checks only the syntax of an unknown field's value, as the scanner did.
        _ => Some(None),
    }
}

/// Whether a byte of `w` is `"`, `\\` or below 0x20 (may also say so of a byte after the
/// first that is: the byte loop after it decides). The bytes JSON strings escape: the
/// decoder's and the output writer's ([`crate::output::jsonw::string`]) fast path.
pub(crate) fn special(w: u64) -> bool {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let zero = |v: u64| v.wrapping_sub(ONES) & !v & HIGH;
    let below_space = w.wrapping_sub(ONES * 0x20) & !w & HIGH;
    zero(w ^ (ONES * u64::from(b'"'))) | zero(w ^ (ONES * u64::from(b'\\'))) | below_space != 0
}

/// Deeper values are left to serde_json (whose own limit is 128).
const MAX_DEPTH: u32 = 8;

struct Scanner<'a> {
    b: &'a [u8],
    text: &'a str,
    i: usize,
}

impl<'a> Scanner<'a> {
    fn peek(&self) -> Option<u8> {
        self.b.get(self.i).copied()
    }

    /// Skips JSON whitespace (space, tab, line feed, carriage return).
    fn ws(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.peek() {
            self.i += 1;
        }
    }

    fn eat(&mut self, c: u8) -> Option<()> {
        (self.peek()? == c).then(|| self.i += 1)
    }

    /// The characters of a string whose opening quote was read, up to its closing quote
    /// (read too); `None` on an escape, a control character or the end of the input.
    fn string(&mut self) -> Option<&'a str> {
        let start = self.i;
        // Eight bytes at a time while none is a quote, a backslash or a control character.
        while let Some(w) = self.b.get(self.i..self.i + 8) {
            let w = u64::from_le_bytes(w.try_into().ok()?);
            if special(w) {
                break;
            }
            self.i += 8;
        }
        loop {
            match *self.b.get(self.i)? {
                b'"' => break,
                b'\\' | 0..=0x1f => return None,
                _ => self.i += 1,
            }
        }
        // Quotes are ASCII, so both ends are on character boundaries of the UTF-8 text.
        let s = self.text.get(start..self.i)?;
        self.i += 1;
        Some(s)
    }

    /// A value at nesting `depth` (a top-level field's value: 0).
    fn value(&mut self, depth: u32) -> Option<Value<'a>> {
        let start = self.i;
        match self.peek()? {
            open @ (b'[' | b'{') => {
                self.nested(open, depth)?;
                Some(Value::Nested(open == b'[', self.text.get(start..self.i)?))
            }
            b'"' => {
                self.i += 1;
                let s = self.string()?;
                Some(Value::Str(s, self.text.get(start..self.i)?))
            }
            b't' => self.literal("true").map(|t| Value::Bool(true, t)),
            b'f' => self.literal("false").map(|t| Value::Bool(false, t)),
            b'n' => self.literal("null").map(|_| Value::Null),
            b'-' | b'0'..=b'9' => {
                self.number()?;
                Some(Value::Num(self.text.get(start..self.i)?))
            }
            _ => None,
        }
    }

    /// Skips an array or an object (its syntax checked as serde_json checks it), at most
    /// a few levels deep.
    fn nested(&mut self, open: u8, depth: u32) -> Option<()> {
        if depth >= MAX_DEPTH {
            return None;
        }
        self.container(open, depth + 1, |_, _| Some(()))
    }

    /// Reads the array or object opening at `open` (`[` or `{`, not read yet), its values
    /// at nesting `depth`, handing each member to `member` with its key (`None` in an
    /// array); `None` on bad syntax or when `member` gives up.
    fn container(
        &mut self,
        open: u8,
        depth: u32,
        mut member: impl FnMut(Option<&'a str>, Value<'a>) -> Option<()>,
    ) -> Option<()> {
        let close = if open == b'[' { b']' } else { b'}' };
        self.i += 1;
        self.ws();
        if self.peek()? == close {
            self.i += 1;
            return Some(());
        }
        loop {
            let key = if open == b'{' {
                self.eat(b'"')?;
                let key = self.string()?;
                self.ws();
                self.eat(b':')?;
                self.ws();
                Some(key)
            } else {
                None
            };
            let value = self.value(depth)?;
            member(key, value)?;
            self.ws();
            match self.peek()? {
                b',' => {
                    self.i += 1;
                    self.ws();
                }
                c if c == close => {
                    self.i += 1;
                    return Some(());
                }
                _ => return None,
            }
        }
    }

    fn literal(&mut self, word: &'static str) -> Option<&'a str> {
        let end = self.i + word.len();
        let t = self.text.get(self.i..end)?;
        (t == word).then(|| {
            self.i = end;
            t
        })
    }

    /// `-? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)?`
    fn number(&mut self) -> Option<()> {
        if self.peek() == Some(b'-') {
            self.i += 1;
        }
        match self.peek()? {
            b'0' => self.i += 1,
            b'1'..=b'9' => {
                self.digits();
            }
            _ => return None,
        }
        if self.peek() == Some(b'.') {
            self.i += 1;
            (self.digits() > 0).then_some(())?;
        }
        if let Some(b'e' | b'E') = self.peek() {
            self.i += 1;
            if let Some(b'+' | b'-') = self.peek() {
                self.i += 1;
            }
            (self.digits() > 0).then_some(())?;
        }
        Some(())
    }

    fn digits(&mut self) -> usize {
        let start = self.i;
        while let Some(b'0'..=b'9') = self.peek() {
            self.i += 1;
        }
        self.i - start
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// serde_json's reading of `text`, if it reads it.
    fn serde(text: &str) -> Option<Raw<'_>> {
        serde_json::from_str(text).ok()
    }

    /// The fast path's reading of `text`, if it is plain.
    fn fast(text: &str) -> Option<Raw<'_>> {
        let mut raw = Raw::default();
        plain_raw(text, &mut raw).then_some(raw)
    }

    /// The fast path either gives up (`false`) or agrees with serde_json (`true`).
    fn agrees(text: &str) -> bool {
        match fast(text) {
            None => false,
            Some(fast) => {
                let slow = serde(text);
                assert_eq!(Some(&fast), slow.as_ref(), "fast path differs on {text:?}");
                true
            }
        }
    }

    /// Generated lines, a fraction `invalid` of them invalid in the generator's ways.
    fn generated(events: u64, seed: u64, invalid: f64) -> String {
        let opts = crate::generate::GenerateOptions {
            events,
            seed,
            invalid_ratio: invalid,
            ..Default::default()
        };
        let mut out = Vec::new();
        crate::generate::write_jsonl(opts, &mut out).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn plain_generated_events_take_the_fast_path_and_read_as_serde_json_reads_them() {
        let text = generated(20_000, 11, 0.0);
        let mut n = 0;
        for line in text.lines() {
            let read = fast(line).unwrap_or_else(|| panic!("gave up on {line}"));
            assert_eq!(Some(read), serde(line), "{line}");
            n += 1;
        }
        assert_eq!(n, 20_000);
        // The generator's invalid lines: each read the same way, or left to serde_json.
        let text = generated(20_000, 12, 0.2);
        assert!(text.lines().filter(|l| agrees(l)).count() > 10_000);
    }

    #[test]
    fn what_it_cannot_read_plainly_it_leaves_to_serde_json() {
        let base = r#""id":"e1","time":"2026-11-22T10:00:00Z","customer":"c1""#;
        for text in [
            format!(r#"{{{base},"type":"survey.nps","score":3}}"#),
            format!(r#"  {{ {base} , "type" : "survey.nps" , "score" : -3.5e+2 }}  "#),
            format!("{{{base},\"type\":\"survey.nps\",\n\"score\":3}}\r\n"),
            format!(r#"{{{base},"type":"survey.csat","score":"4","public":true}}"#),
            format!(r#"{{{base},"type":"survey.csat","score":null,"team":null}}"#),
            format!(r#"{{{base},"type":"survey.csat","score":true,"x":false,"y":null}}"#),
            format!(r#"{{{base},"type":"survey.csat","zz":"a","zz":"b"}}"#),
            format!(r#"{{{base},"type":"survey.nps","score":1e400,"extra":-1e400}}"#),
            format!(r#"{{{base},"type":"survey.nps","extra":{{"a":[1,{{}},[]]}},"team":[]}}"#),
            format!(r#"{{{base},"type":"survey.nps","score":[ 1 ],"public":{{ }}}}"#),
            r#"{}"#.to_string(),
            r#" { } "#.to_string(),
            r#"{"id":"é ü ✓ 😀"}"#.to_string(),
        ] {
            assert!(agrees(&text), "{text}");
        }
        for text in [
            format!(r#"{{{base},"type":"survey.nps","score":3,}}"#),
            format!(r#"{{{base},"type":"survey.nps","score":03}}"#),
            format!(r#"{{{base},"type":"survey.nps","score":3.}}"#),
            format!(r#"{{{base},"type":"survey.nps","score":-}}"#),
            format!(r#"{{{base},"type":"survey.nps","score":1e}}"#),
            format!(r#"{{{base},"type":"survey.nps","team":5}}"#),
            format!(r#"{{{base},"type":"survey.nps","extra":[1,]}}"#),
            format!(r#"{{{base},"type":"survey.nps","extra":{{"a"}}}}"#),
            format!(r#"{{{base},"type":"survey.nps","extra":[[[[[[[[[1]]]]]]]]]}}"#),
            format!(r#"{{{base},"type":"survey.nps","id":"e2"}}"#),
            format!(r#"{{{base},"type":"survey.nps","score":3}} x"#),
            format!(r#"{{{base},"type":"survey.nps","score":3}}{{}}"#),
            format!(r#"{{{base},"type":"sur\"vey.nps"}}"#),
            format!(r#"{{{base},"ty\u0070e":"survey.nps"}}"#),
            format!("{{{base},\"type\":\"survey\tnps\"}}"),
            format!(r#"{{{base},"type":"survey.nps","public":tru}}"#),
            format!(r#"{{{base},"type":"survey.nps","public":truex}}"#),
            format!(r#"{{{base},"type":"survey.nps","public":nul}}"#),
            format!(r#"{{{base},"type":"survey.nps" "score":3}}"#),
            format!(r#"{{{base},"type":"survey.nps","score":3"#),
            format!(r#"{{{base},"type":"survey.nps""#),
            format!("\u{a0}{{{base}}}"),
            r#"{"id"}"#.to_string(),
            r#"{,}"#.to_string(),
            r#"[]"#.to_string(),
            String::new(),
        ] {
            assert!(fast(&text).is_none(), "{text}");
        }
    }

    /// Every cut, every one-byte change to a JSON-significant byte and every inserted
    /// significant byte of plain lines: the fast path gives up or agrees with serde_json.
    #[test]
    fn mutated_lines_never_read_differently() {
        let text = generated(300, 5, 0.0);
        let alphabet = [
            "\"", "\\", ":", ",", "{", "}", "[", "]", " ", "\n", "\t", "0", "1", "-", "+", ".",
            "e", "E", "t", "n", "f", "x", "\u{1}", "é", "[1]", "{}", "\"a\":", "null",
        ];
        let (mut checked, mut fast) = (0u64, 0u64);
        for line in text.lines() {
            for cut in 0..=line.len() {
                if !line.is_char_boundary(cut) {
                    continue;
                }
                fast += u64::from(agrees(&line[..cut]));
                for a in alphabet {
                    let (head, tail) = line.split_at(cut);
                    fast += u64::from(agrees(&format!("{head}{a}{tail}")));
                    if let Some(c) = tail.chars().next() {
                        fast += u64::from(agrees(&format!("{head}{a}{}", &tail[c.len_utf8()..])));
                    }
                    checked += 2;
                }
            }
        }
        // Many mutations keep the line plain (inside strings, digits, unknown fields).
        assert!(
            checked > 1_000_000 && fast > checked / 4,
            "{fast} of {checked}"
        );
    }
}
