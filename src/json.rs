//! A JSON reader that builds [`serde_json::Value`] directly, for the webhook's hot path.
//!
//! `serde_json::from_slice::<Value>` goes through serde's visitor layers and grows every
//! object's map one member at a time (with `preserve_order` an `IndexMap`: regrowth and
//! rehashing). Reading a 10 KB AdmissionReview that way was about two thirds of a validate
//! request's CPU. This reader scans strings eight bytes at a time, checks UTF-8 once for the
//! whole input, collects each object's members on a shared stack and builds its map at the
//! final size.
//!
//! It is deliberately partial: it returns `None` for anything it does not handle itself
//! (invalid or unusual input: bad syntax, lone surrogates, nesting deeper than
//! [`MAX_DEPTH`]), and [`from_slice`] then asks `serde_json`, so errors and every edge case are
//! exactly `serde_json`'s. What it does return equals `serde_json::from_slice` on the same
//! bytes, member order included (`tests/json_reader.rs` compares the two on generated and
//! mutated documents). Numbers other than plain non-negative integers are parsed by
//! `serde_json` too.

use serde_json::{Map, Value};

/// Arrays longer than this are collected in a vector of their own rather than on the shared
/// stack.
const OWN_ARRAY_AFTER: usize = 1024;

/// Deeper nesting is left to `serde_json` (its own limit is 128).
pub const MAX_DEPTH: usize = 100;

/// `serde_json::from_slice::<Value>`, faster on well-formed input.
pub fn from_slice(input: &[u8]) -> serde_json::Result<Value> {
    match parse(input) {
        Some(v) => Ok(v),
        None => serde_json::from_slice(input),
    }
}

/// The document, or `None` when this reader leaves the input to `serde_json`.
pub fn parse(input: &[u8]) -> Option<Value> {
    parse_except(input, &[])
}

/// [`parse`], but the member at `skip` (a path of member names from the top, e.g.
/// `["request", "oldObject"]`) is only checked, not built: it is absent from the result. An
/// empty path skips nothing.
pub fn parse_except(input: &[u8], skip: &[&str]) -> Option<Value> {
    read(input, skip, &[])
}

/// Member names whose string arrays the webhook's rules never read: containers' `args` and
/// `command` (and the probes' and hooks' `exec.command`, the autoscaler's `args`/`command`).
pub const UNREAD_STRING_ARRAYS: &[&str] = &["args", "command"];

/// [`parse_except`] for the admission handlers: in addition, an array of strings that is the
/// value of a member named in `elide` is checked (every element must be a well-formed string)
/// and read as `[]`. An array of strings is all the schema allows there and the rules never
/// look inside, so the verdict is the same, while a review whose container carries 950,000
/// empty `args` (2.85 MB, under the API server's request limit) no longer becomes 950,000
/// `Value`s and as many `String`s (issue #14, defect 1). An array with anything else in it is
/// read in full, so type errors are reported as before.
pub fn parse_lean(input: &[u8], skip: &[&str], elide: &[&str]) -> Option<Value> {
    read(input, skip, elide)
}

fn read(input: &[u8], skip: &[&str], elide: &[&str]) -> Option<Value> {
    let text = std::str::from_utf8(input).ok()?;
    let mut r = Reader::new(text, skip);
    r.elide = elide;
    r.ws();
    let v = r.value(0, !skip.is_empty())?;
    r.ws();
    (r.i == r.b.len()).then_some(v)
}

struct Reader<'a> {
    s: &'a str,
    b: &'a [u8],
    i: usize,
    skip: &'a [&'a str],
    /// Member names whose all-string arrays are read as `[]` (see [`parse_lean`]).
    elide: &'a [&'a str],
    /// Members of the objects being read, innermost last.
    members: Vec<(String, Value)>,
    /// Elements of the arrays being read, innermost last.
    items: Vec<Value>,
}

const ONES: u64 = 0x0101_0101_0101_0101;
const HIGHS: u64 = 0x8080_8080_8080_8080;

/// High bit set in each byte of `w` that is zero (exact for the lowest such byte).
#[inline]
fn zero_bytes(w: u64) -> u64 {
    w.wrapping_sub(ONES) & !w & HIGHS
}

/// The index after the ASCII digits starting at `i`.
fn digits_end(b: &[u8], mut i: usize) -> usize {
    while b.get(i).is_some_and(u8::is_ascii_digit) {
        i += 1;
    }
    i
}

/// [`digits_end`], requiring at least one digit.
fn nonempty_digits_end(b: &[u8], i: usize) -> Option<usize> {
    let end = digits_end(b, i);
    (end > i).then_some(end)
}

impl<'a> Reader<'a> {
    fn new(text: &'a str, skip: &'a [&'a str]) -> Reader<'a> {
        Reader {
            s: text,
            b: text.as_bytes(),
            i: 0,
            skip,
            elide: &[],
            members: Vec::new(),
            items: Vec::new(),
        }
    }

    #[inline]
    fn peek(&self) -> Option<u8> {
        self.b.get(self.i).copied()
    }

    #[inline]
    fn ws(&mut self) {
        while let Some(&c) = self.b.get(self.i) {
            if matches!(c, b' ' | b'\n' | b'\r' | b'\t') {
                self.i += 1;
            } else {
                break;
            }
        }
    }

    /// `on_path`: this value is at a prefix of the skip path.
    fn value(&mut self, depth: usize, on_path: bool) -> Option<Value> {
        match self.peek()? {
            b'{' => {
                if depth >= MAX_DEPTH {
                    return None;
                }
                self.i += 1;
                self.object(depth + 1, on_path)
            }
            b'[' => {
                if depth >= MAX_DEPTH {
                    return None;
                }
                self.i += 1;
                self.array(depth + 1)
            }
            b'"' => {
                self.i += 1;
                self.string().map(Value::String)
            }
            b't' => self.literal(b"true", Value::Bool(true)),
            b'f' => self.literal(b"false", Value::Bool(false)),
            b'n' => self.literal(b"null", Value::Null),
            b'-' | b'0'..=b'9' => self.number(),
            _ => None,
        }
    }

    fn literal(&mut self, word: &[u8], v: Value) -> Option<Value> {
        if self.b[self.i..].starts_with(word) {
            self.i += word.len();
            Some(v)
        } else {
            None
        }
    }

    /// Consumes `c` or fails.
    #[inline]
    fn expect(&mut self, c: u8) -> Option<()> {
        (self.peek()? == c).then(|| self.i += 1)
    }

    /// After `{` or `[`: whether the container closes at once (consuming `close`).
    #[inline]
    fn closes_at_once(&mut self, close: u8) -> Option<bool> {
        self.ws();
        let empty = self.peek()? == close;
        if empty {
            self.i += 1;
        }
        Some(empty)
    }

    /// After a member or element: `true` at `,` (another follows), `false` at `close` (both
    /// consumed).
    #[inline]
    fn more_before(&mut self, close: u8) -> Option<bool> {
        self.ws();
        match self.peek()? {
            b',' => {
                self.i += 1;
                self.ws();
                Some(true)
            }
            c if c == close => {
                self.i += 1;
                Some(false)
            }
            _ => None,
        }
    }

    /// A member name and the `:` after it.
    fn member_name(&mut self) -> Option<String> {
        self.expect(b'"')?;
        let key = self.string()?;
        self.ws();
        self.expect(b':')?;
        self.ws();
        Some(key)
    }

    fn object(&mut self, depth: usize, on_path: bool) -> Option<Value> {
        if self.closes_at_once(b'}')? {
            return Some(Value::Object(Map::new()));
        }
        let start = self.members.len();
        loop {
            let key = self.member_name()?;
            let here = on_path && self.skip.get(depth - 1) == Some(&key.as_str());
            if here && depth == self.skip.len() {
                self.skip_value(depth)?;
            } else if self.peek() == Some(b'[')
                && self.elide.contains(&key.as_str())
                && self.skip_string_array()
            {
                self.members.push((key, Value::Array(Vec::new())));
            } else {
                let v = self.value(depth, here)?;
                self.members.push((key, v));
            }
            if !self.more_before(b'}')? {
                break;
            }
        }
        let mut m = Map::with_capacity(self.members.len() - start);
        // In order, so a repeated member keeps its first position and its last value, as in
        // serde_json.
        for (k, v) in self.members.drain(start..) {
            m.insert(k, v);
        }
        Some(Value::Object(m))
    }

    fn array(&mut self, depth: usize) -> Option<Value> {
        if self.closes_at_once(b']')? {
            return Some(Value::Array(Vec::new()));
        }
        let start = self.items.len();
        // A long array moves to a vector of its own: on the shared stack it would be held
        // twice (the stack's capacity, then the collected copy).
        let mut own: Option<Vec<Value>> = None;
        loop {
            let v = self.value(depth, false)?;
            match &mut own {
                Some(o) => o.push(v),
                None => {
                    self.items.push(v);
                    if self.items.len() - start >= OWN_ARRAY_AFTER {
                        own = Some(self.items.drain(start..).collect());
                    }
                }
            }
            if !self.more_before(b']')? {
                break;
            }
        }
        Some(Value::Array(match own {
            Some(o) => o,
            None => self.items.drain(start..).collect(),
        }))
    }

    /// Checks one value as [`Self::value`] would read it, without building it.
    fn skip_value(&mut self, depth: usize) -> Option<()> {
        let close = match self.peek()? {
            b'{' => b'}',
            b'[' => b']',
            b'"' => {
                self.i += 1;
                return self.skip_string();
            }
            _ => return self.value(depth, false).map(drop),
        };
        if depth >= MAX_DEPTH {
            return None;
        }
        self.i += 1;
        if self.closes_at_once(close)? {
            return Some(());
        }
        loop {
            if close == b'}' {
                self.expect(b'"')?;
                self.skip_string()?;
                self.ws();
                self.expect(b':')?;
                self.ws();
            }
            self.skip_value(depth + 1)?;
            if !self.more_before(close)? {
                return Some(());
            }
        }
    }

    /// At `[`: consumes an array whose elements are all strings and returns `true`; otherwise
    /// leaves the position where it was and returns `false` (the caller reads it in full).
    fn skip_string_array(&mut self) -> bool {
        let start = self.i;
        let ok = (|| -> Option<()> {
            self.expect(b'[')?;
            if self.closes_at_once(b']')? {
                return Some(());
            }
            loop {
                self.expect(b'"')?;
                self.skip_string()?;
                if !self.more_before(b']')? {
                    return Some(());
                }
            }
        })()
        .is_some();
        if !ok {
            self.i = start;
        }
        ok
    }

    /// [`Self::string`] without building the string.
    fn skip_string(&mut self) -> Option<()> {
        let mut at = self.scan(self.i)?;
        loop {
            match self.b[at] {
                b'"' => {
                    self.i = at + 1;
                    return Some(());
                }
                b'\\' => {
                    at = self.escape(at, None)?;
                    at = self.scan(at)?;
                }
                _ => return None,
            }
        }
    }

    /// Index of the next `"`, `\` or control character at or after `i`.
    #[inline]
    fn scan(&self, mut i: usize) -> Option<usize> {
        let b = self.b;
        while i + 8 <= b.len() {
            let mut w = [0u8; 8];
            w.copy_from_slice(&b[i..i + 8]);
            let w = u64::from_le_bytes(w);
            let hits = zero_bytes(w ^ (ONES * u64::from(b'"')))
                | zero_bytes(w ^ (ONES * u64::from(b'\\')))
                | (w.wrapping_sub(ONES * 0x20) & !w & HIGHS);
            if hits != 0 {
                return Some(i + (hits.trailing_zeros() / 8) as usize);
            }
            i += 8;
        }
        while i < b.len() {
            let c = b[i];
            if c == b'"' || c == b'\\' || c < 0x20 {
                return Some(i);
            }
            i += 1;
        }
        None
    }

    /// After the opening quote: the string's contents up to and past the closing quote.
    fn string(&mut self) -> Option<String> {
        let start = self.i;
        let end = self.scan(start)?;
        if self.b[end] == b'"' {
            self.i = end + 1;
            return Some(self.s[start..end].to_owned());
        }
        let mut out = String::with_capacity(end - start + 16);
        let mut seg = start;
        let mut at = end;
        loop {
            match self.b[at] {
                b'"' => {
                    out.push_str(&self.s[seg..at]);
                    self.i = at + 1;
                    return Some(out);
                }
                b'\\' => {
                    out.push_str(&self.s[seg..at]);
                    at = self.escape(at, Some(&mut out))?;
                    seg = at;
                }
                _ => return None, // control character
            }
            at = self.scan(at)?;
        }
    }

    /// The escape sequence at `at` (a backslash): appends the character it stands for to `out`
    /// and returns the index after it.
    fn escape(&self, at: usize, out: Option<&mut String>) -> Option<usize> {
        let esc = *self.b.get(at + 1)?;
        let mut next = at + 2;
        let c = match esc {
            b'"' => '"',
            b'\\' => '\\',
            b'/' => '/',
            b'b' => '\u{8}',
            b'f' => '\u{c}',
            b'n' => '\n',
            b'r' => '\r',
            b't' => '\t',
            b'u' => {
                let hi = self.hex4(next)?;
                next += 4;
                let code = match hi {
                    0xD800..=0xDBFF => {
                        if self.b.get(next..next + 2)? != b"\\u" {
                            return None;
                        }
                        let lo = self.hex4(next + 2)?;
                        if !(0xDC00..=0xDFFF).contains(&lo) {
                            return None;
                        }
                        next += 6;
                        0x10000 + ((hi - 0xD800) << 10) + (lo - 0xDC00)
                    }
                    0xDC00..=0xDFFF => return None,
                    c => c,
                };
                char::from_u32(code)?
            }
            _ => return None,
        };
        if let Some(out) = out {
            out.push(c);
        }
        Some(next)
    }

    fn hex4(&self, at: usize) -> Option<u32> {
        let digits = self.b.get(at..at + 4)?;
        let mut n = 0u32;
        for &d in digits {
            n = n * 16 + char::from(d).to_digit(16)?;
        }
        Some(n)
    }

    fn number(&mut self) -> Option<Value> {
        let b = self.b;
        let start = self.i;
        let mut i = start;
        let plain = b[i] != b'-';
        if !plain {
            i += 1;
        }
        match b.get(i) {
            Some(b'0') => i += 1,
            Some(b'1'..=b'9') => i = digits_end(b, i),
            _ => return None,
        }
        let mut integer = true;
        if b.get(i) == Some(&b'.') {
            integer = false;
            i = nonempty_digits_end(b, i + 1)?;
        }
        if matches!(b.get(i), Some(b'e' | b'E')) {
            integer = false;
            i += 1;
            if matches!(b.get(i), Some(b'+' | b'-')) {
                i += 1;
            }
            i = nonempty_digits_end(b, i)?;
        }
        self.i = i;
        let text = &self.s[start..i];
        if plain
            && integer
            && let Ok(n) = text.parse::<u64>()
        {
            return Some(Value::from(n));
        }
        // Negative numbers, fractions, exponents, integers beyond u64: exactly as serde_json.
        serde_json::from_str::<Value>(text).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn same(input: &str) {
        let ours = parse(input.as_bytes());
        let theirs = serde_json::from_str::<Value>(input);
        match (&ours, &theirs) {
            (Some(a), Ok(b)) => {
                assert_eq!(a, b, "{input}");
                assert_eq!(a.to_string(), b.to_string(), "member order: {input}");
            }
            (Some(a), Err(e)) => panic!("{input}: read {a} where serde_json says {e}"),
            (None, _) => {}
        }
    }

    #[test]
    fn reads_what_serde_json_reads() {
        for doc in [
            r#"{"a":1,"b":[true,false,null],"c":{"d":"e"}}"#,
            r#"  {"z":1,"a":2,"m":3}  "#,
            r#"{"a":1,"a":2,"b":3}"#,
            r#""plain""#,
            r#""esc \" \\ \/ \b \f \n \r \t \u00e9 \ud83d\ude00 end""#,
            r#""ünïcödé 😀""#,
            "0",
            "18446744073709551615",
            "18446744073709551616",
            "-0",
            "-12",
            "-9223372036854775808",
            "1.5",
            "1e3",
            "-2.5E-3",
            "[]",
            "{}",
            "[[],[{}],{\"a\":[]}]",
        ] {
            same(doc);
            assert!(parse(doc.as_bytes()).is_some(), "reads {doc}");
        }
    }

    #[test]
    fn leaves_bad_or_unusual_input_to_serde_json() {
        for doc in [
            "",
            " ",
            "{",
            "{\"a\"}",
            "{\"a\":1,}",
            "[1,]",
            "[1 2]",
            "01",
            "1.",
            "1e",
            "-",
            "tru",
            "nul",
            "\"\\x\"",
            "\"\\ud800\"",
            "\"\\udc00\"",
            "\"\\ud800\\u0041\"",
            "\"a\nb\"",
            "\"open",
            "{} x",
            "{'a':1}",
        ] {
            assert!(
                parse(doc.as_bytes()).is_none(),
                "{doc:?} is left to serde_json"
            );
            same(doc);
        }
        assert!(parse(b"\"\xff\"").is_none());
        let deep = format!("{}{}", "[".repeat(MAX_DEPTH + 1), "]".repeat(MAX_DEPTH + 1));
        assert!(parse(deep.as_bytes()).is_none());
        assert!(from_slice(deep.as_bytes()).is_ok(), "serde_json reads it");
        let ok = format!("{}{}", "[".repeat(MAX_DEPTH), "]".repeat(MAX_DEPTH));
        assert!(parse(ok.as_bytes()).is_some());
    }

    #[test]
    fn a_skipped_member_is_checked_and_left_out() {
        let doc = br#"{"request":{"uid":"u","oldObject":{"a":[1,"x\u00e9",{"b":null}]},"object":{"k":1}},"oldObject":2}"#;
        let v = parse_except(doc, &["request", "oldObject"]).unwrap();
        let mut want: Value = serde_json::from_slice(doc).unwrap();
        want["request"].as_object_mut().unwrap().remove("oldObject");
        assert_eq!(v.to_string(), want.to_string());
        // only that path: the top-level "oldObject" stays
        assert_eq!(v["oldObject"], 2);
        assert_eq!(
            parse_except(doc, &[]).unwrap().to_string(),
            parse(doc).unwrap().to_string()
        );
        for bad in [
            &br#"{"request":{"oldObject":{"a":}}}"#[..],
            br#"{"request":{"oldObject":[1,]}}"#,
            br#"{"request":{"oldObject":"\ud800"}}"#,
            br#"{"request":{"oldObject":"\q"}}"#,
            b"{\"request\":{\"oldObject\":\"a\x01\"}}",
            br#"{"request":{"oldObject":{"a" 1}}}"#,
            br#"{"request":{"oldObject":tru}}"#,
        ] {
            assert!(
                parse_except(bad, &["request", "oldObject"]).is_none(),
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
        let deep = format!(
            r#"{{"request":{{"oldObject":{}{}}}}}"#,
            "[".repeat(MAX_DEPTH),
            "]".repeat(MAX_DEPTH)
        );
        assert!(parse_except(deep.as_bytes(), &["request", "oldObject"]).is_none());
    }

    #[test]
    fn errors_are_serde_jsons() {
        let e = from_slice(b"{\"a\":}").unwrap_err().to_string();
        let s = serde_json::from_slice::<Value>(b"{\"a\":}")
            .unwrap_err()
            .to_string();
        assert_eq!(e, s);
    }

    #[test]
    fn scan_finds_the_first_stop_byte_in_every_lane() {
        for len in 0..20 {
            for pos in 0..len {
                for stop in [b'"', b'\\', 0x1f, 0x00] {
                    let mut bytes = vec![b'a'; len];
                    bytes[pos] = stop;
                    // a later stop byte must not win
                    if pos + 1 < len {
                        bytes[pos + 1] = b'"';
                    }
                    let s = String::from_utf8(bytes).unwrap();
                    let r = Reader::new(&s, &[]);
                    assert_eq!(r.scan(0), Some(pos), "len {len} pos {pos} stop {stop}");
                }
            }
            let s = "é".repeat(len);
            let r = Reader::new(&s, &[]);
            assert_eq!(r.scan(0), None, "non-ASCII is not a stop byte");
        }
    }
}
