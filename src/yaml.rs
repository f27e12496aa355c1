//! YAML → `serde_json::Value` with source positions, under kubectl's YAML 1.1 rules.
//!
//! One pass over `saphyr-parser` events builds both the JSON value and a compact position tree
//! (an arena of [`PosNode`]s parallel to the value), so a field path such as
//! `spec.workerGroupSpecs[1].minReplicas` maps back to `line:column` of the key in the source.
//!
//! Scalar resolution follows `sigs.k8s.io/yaml` (go-yaml v2), which is what `kubectl` uses:
//! - booleans: `y Y yes Yes YES on On ON true True TRUE` / `n N no No NO off Off OFF false False FALSE`
//! - null: empty, `~`, `null`, `Null`, `NULL`
//! - integers as Go's `strconv.ParseInt(s, 0, 64)` after removing `_`: `0777` → 511 (octal),
//!   `0x1F` → 31, `0o17` → 15, `0b101` → 5; floats per YAML 1.1's float regex (`09` → 9.0)
//! - quoted and block scalars are always strings; `!!str`, `!!int`, `!!bool`, `!!float`, `!!null`
//!   tags are honoured
//! - mapping keys are converted to strings (`on:` → `"true"`, `1:` → `"1"`), as kubectl does
//! - anchors and aliases are resolved (bounded: [`MAX_NODES`] nodes per document after
//!   expansion, so a "billion laughs" document is an error, not an OOM); merge keys `<<` work
//! - duplicate keys, complex (non-scalar) keys, NaN/Inf and nesting deeper than [`MAX_DEPTH`]
//!   are errors with a location.
//!
//! Streams are split into documents by [`ChunkReader`] *before* parsing (a line starting with
//! `---` is always a document boundary in YAML), so memory is bounded by the largest document
//! ([`MAX_DOCUMENT_BYTES`]), not by the file.

use saphyr_parser::{Event, Marker, Parser, ScalarStyle, Span, Tag};
use serde_json::{Map, Number, Value};
use std::collections::HashMap;
use std::fmt;
use std::io::BufRead;

/// Largest accepted document (source bytes). The Kubernetes API server refuses request bodies
/// over 3 MiB, so anything bigger cannot be a real object; refusing it bounds memory.
pub const MAX_DOCUMENT_BYTES: usize = 4 * 1024 * 1024;
/// Largest number of nodes one document may expand to (aliases included).
pub const MAX_NODES: usize = 1_000_000;
/// Deepest nesting accepted.
pub const MAX_DEPTH: usize = 256;

/// A problem in the input, with a 1-based location.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct YamlError {
    pub message: String,
    pub line: usize,
    pub col: usize,
}

impl fmt::Display for YamlError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} at line {} column {}",
            self.message, self.line, self.col
        )
    }
}

impl std::error::Error for YamlError {}

/// Position of one node: where its key is (for mapping entries) or where it starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct PosNode {
    line: u32,
    col: u32,
    len: u32,
    kids_start: u32,
    kids_len: u32,
}

/// A source location, 1-based line and column; `len` is the width (in characters) to underline.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Loc {
    pub line: usize,
    pub col: usize,
    pub len: usize,
    /// `false` when the path does not exist in the source and this is its nearest ancestor.
    pub exact: bool,
}

/// Position tree parallel to a document's value: for a mapping, child `i` is the `i`-th entry
/// in the map's (insertion) order; for a sequence, child `i` is item `i`.
#[derive(Debug, Clone, Default)]
pub struct Positions {
    nodes: Vec<PosNode>,
    kids: Vec<u32>,
    root: u32,
}

/// One parsed YAML document.
#[derive(Debug, Clone)]
pub struct Document {
    pub value: Value,
    pub positions: Positions,
    /// Line (1-based) where the document's content starts.
    pub line: usize,
}

impl Document {
    /// Location of `path` (Kubernetes notation, e.g. `spec.workerGroupSpecs[1].minReplicas`), or
    /// of its nearest ancestor present in the source.
    pub fn locate(&self, path: &str) -> Loc {
        self.positions.locate(&self.value, path)
    }
}

/// One step of a field path.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Seg<'a> {
    /// `.name` — possibly containing dots; matched greedily against the map's keys.
    Field(&'a str),
    /// `[3]`
    Index(usize),
    /// `[name]` / `["name"]` — a map key, or a list item whose `name`/`groupName` matches.
    Key(&'a str),
}

impl Positions {
    fn node(&self, id: u32) -> Option<&PosNode> {
        self.nodes.get(id as usize)
    }

    fn kid(&self, node: &PosNode, i: usize) -> Option<u32> {
        if i >= node.kids_len as usize {
            return None;
        }
        self.kids.get(node.kids_start as usize + i).copied()
    }

    fn loc(&self, id: u32, exact: bool) -> Loc {
        match self.node(id) {
            Some(n) => Loc {
                line: n.line as usize,
                col: n.col as usize,
                len: n.len.max(1) as usize,
                exact,
            },
            None => Loc {
                line: 1,
                col: 1,
                len: 1,
                exact: false,
            },
        }
    }

    /// See [`Document::locate`].
    pub fn locate(&self, root: &Value, path: &str) -> Loc {
        let mut cur_val = root;
        let mut cur = self.root;
        let mut rest = path.trim();
        let mut first = true;
        while !rest.is_empty() {
            let Some(n) = self.node(cur).copied() else {
                return self.loc(cur, false);
            };
            // Next segment.
            let step = if let Some(r) = rest.strip_prefix('[') {
                let Some(end) = r.find(']') else {
                    return self.loc(cur, false);
                };
                let inner = &r[..end];
                let after = &r[end + 1..];
                let inner_unq = inner
                    .strip_prefix('"')
                    .and_then(|s| s.strip_suffix('"'))
                    .or_else(|| inner.strip_prefix('\'').and_then(|s| s.strip_suffix('\'')));
                let seg = match (inner_unq, inner.parse::<usize>()) {
                    (None, Ok(i)) => Seg::Index(i),
                    (Some(s), _) => Seg::Key(s),
                    (None, Err(_)) => Seg::Key(inner),
                };
                Some((seg, after))
            } else {
                let r = rest.strip_prefix('.').unwrap_or(rest);
                Some((Seg::Field(r), ""))
            };
            let Some((seg, after)) = step else {
                return self.loc(cur, false);
            };
            match (seg, cur_val) {
                (Seg::Index(i), Value::Array(items)) => match (self.kid(&n, i), items.get(i)) {
                    (Some(k), Some(v)) => {
                        cur = k;
                        cur_val = v;
                        rest = after;
                    }
                    _ => return self.loc(cur, false),
                },
                (Seg::Key(key), Value::Object(map)) => match map.keys().position(|k| k == key) {
                    Some(i) => match (self.kid(&n, i), map.get(key)) {
                        (Some(k), Some(v)) => {
                            cur = k;
                            cur_val = v;
                            rest = after;
                        }
                        _ => return self.loc(cur, false),
                    },
                    None => return self.loc(cur, false),
                },
                (Seg::Key(key), Value::Array(items)) => {
                    let found = items.iter().position(|it| {
                        ["name", "groupName"]
                            .iter()
                            .any(|f| it.get(f).and_then(Value::as_str) == Some(key))
                    });
                    match found.and_then(|i| Some((self.kid(&n, i)?, items.get(i)?))) {
                        Some((k, v)) => {
                            cur = k;
                            cur_val = v;
                            rest = after;
                        }
                        None => return self.loc(cur, false),
                    }
                }
                (Seg::Field(r), Value::Object(map)) => {
                    // Longest key that is a prefix of `r` ending at a boundary.
                    let mut best: Option<(usize, &str)> = None;
                    for (i, k) in map.keys().enumerate() {
                        if r.starts_with(k.as_str()) {
                            let tail = &r[k.len()..];
                            if (tail.is_empty() || tail.starts_with('.') || tail.starts_with('['))
                                && best.is_none_or(|(_, b)| b.len() < k.len())
                            {
                                best = Some((i, k.as_str()));
                            }
                        }
                    }
                    match best {
                        Some((i, k)) => match (self.kid(&n, i), map.get(k)) {
                            (Some(kid), Some(v)) => {
                                cur = kid;
                                cur_val = v;
                                rest = &r[k.len()..];
                            }
                            _ => return self.loc(cur, false),
                        },
                        None => {
                            // Paths relative to `spec` (`headGroupSpec.template…`) are accepted.
                            if first
                                && map.contains_key("spec")
                                && !r.starts_with("spec")
                                && !r.starts_with("metadata")
                            {
                                let mut p = String::from("spec.");
                                p.push_str(rest.strip_prefix('.').unwrap_or(rest));
                                let l = self.locate(root, &p);
                                if l.exact {
                                    return l;
                                }
                            }
                            return self.loc(cur, false);
                        }
                    }
                }
                _ => return self.loc(cur, false),
            }
            first = false;
        }
        self.loc(cur, true)
    }
}

// ---------------------------------------------------------------------------------------------
// Scalar resolution (go-yaml v2 / kubectl rules)

fn is_core_tag(t: &Tag, suffix: &str) -> bool {
    (t.handle == "tag:yaml.org,2002:" || t.handle == "!!") && t.suffix == suffix
}

/// Resolves a scalar to a JSON value. `Err` carries a message (the caller adds the location).
pub fn resolve_scalar(s: &str, style: ScalarStyle, tag: Option<&Tag>) -> Result<Value, String> {
    if let Some(t) = tag {
        if is_core_tag(t, "str") || is_core_tag(t, "binary") || is_core_tag(t, "timestamp") {
            return Ok(Value::String(s.to_string()));
        }
        if is_core_tag(t, "null") {
            return Ok(Value::Null);
        }
        if is_core_tag(t, "bool") {
            return match resolve_plain(s)? {
                v @ Value::Bool(_) => Ok(v),
                _ => Err(format!("cannot decode {s:?} as a !!bool")),
            };
        }
        if is_core_tag(t, "int") {
            return match resolve_plain(s)? {
                Value::Number(n) if !n.is_f64() => Ok(Value::Number(n)),
                _ => Err(format!("cannot decode {s:?} as an !!int")),
            };
        }
        if is_core_tag(t, "float") {
            return match resolve_plain(s)? {
                Value::Number(n) => Ok(Value::Number(n)),
                _ => Err(format!("cannot decode {s:?} as a !!float")),
            };
        }
        // Other tags (`!foo`, `!!map`…) on a scalar: resolve by content as kubectl does.
    }
    if style != ScalarStyle::Plain {
        return Ok(Value::String(s.to_string()));
    }
    resolve_plain(s)
}

fn resolve_plain(s: &str) -> Result<Value, String> {
    let b = s.as_bytes();
    let Some(&c0) = b.first() else {
        return Ok(Value::Null);
    };
    // Fast path: small decimal integers (ports, replicas, …).
    if c0.is_ascii_digit() && c0 != b'0' && b.len() <= 18 && b.iter().all(u8::is_ascii_digit) {
        let mut n: i64 = 0;
        for d in b {
            n = n * 10 + i64::from(d - b'0');
        }
        return Ok(Value::Number(n.into()));
    }
    match c0 {
        b'~' if b.len() == 1 => return Ok(Value::Null),
        b'n' | b'N' => match s {
            "null" | "Null" | "NULL" => return Ok(Value::Null),
            "n" | "N" | "no" | "No" | "NO" => return Ok(Value::Bool(false)),
            _ => return Ok(Value::String(s.to_string())),
        },
        b'y' | b'Y' => match s {
            "y" | "Y" | "yes" | "Yes" | "YES" => return Ok(Value::Bool(true)),
            _ => return Ok(Value::String(s.to_string())),
        },
        b't' | b'T' => match s {
            "true" | "True" | "TRUE" => return Ok(Value::Bool(true)),
            _ => return Ok(Value::String(s.to_string())),
        },
        b'f' | b'F' => match s {
            "false" | "False" | "FALSE" => return Ok(Value::Bool(false)),
            _ => return Ok(Value::String(s.to_string())),
        },
        b'o' | b'O' => match s {
            "on" | "On" | "ON" => return Ok(Value::Bool(true)),
            "off" | "Off" | "OFF" => return Ok(Value::Bool(false)),
            _ => return Ok(Value::String(s.to_string())),
        },
        b'.' | b'+' | b'-' | b'0'..=b'9' => {}
        _ => return Ok(Value::String(s.to_string())),
    }
    match s {
        ".nan" | ".NaN" | ".NAN" | ".inf" | ".Inf" | ".INF" | "+.inf" | "+.Inf" | "+.INF"
        | "-.inf" | "-.Inf" | "-.INF" => {
            return Err(format!(
                "{s} is not representable in JSON (NaN and infinities are not allowed)"
            ));
        }
        _ => {}
    }
    let plain: String = s.chars().filter(|&c| c != '_').collect();
    if let Some(v) = go_parse_int(&plain) {
        return Ok(Value::Number(v));
    }
    if is_yaml_float(&plain)
        && let Ok(f) = plain.parse::<f64>()
    {
        return match Number::from_f64(f) {
            Some(n) => Ok(Value::Number(n)),
            None => Err(format!("{s} is not representable in JSON")),
        };
    }
    Ok(Value::String(s.to_string()))
}

/// Go's `strconv.ParseInt(s, 0, 64)`, falling back to `ParseUint`.
fn go_parse_int(s: &str) -> Option<Number> {
    let (neg, body) = match s.as_bytes().first()? {
        b'-' => (true, &s[1..]),
        b'+' => (false, &s[1..]),
        _ => (false, s),
    };
    if body.is_empty() {
        return None;
    }
    let (radix, digits) = if let Some(d) = body.strip_prefix("0x").or(body.strip_prefix("0X")) {
        (16, d)
    } else if let Some(d) = body.strip_prefix("0o").or(body.strip_prefix("0O")) {
        (8, d)
    } else if let Some(d) = body.strip_prefix("0b").or(body.strip_prefix("0B")) {
        (2, d)
    } else if body.len() > 1 && body.starts_with('0') {
        (8, &body[1..])
    } else {
        (10, body)
    };
    if digits.is_empty() || !digits.chars().all(|c| c.is_digit(radix)) {
        return None;
    }
    let mag = u64::from_str_radix(digits, radix).ok()?;
    if neg {
        if mag <= i64::MAX as u64 {
            Some(Number::from(-(mag as i64)))
        } else if mag == i64::MAX as u64 + 1 {
            Some(Number::from(i64::MIN))
        } else {
            None
        }
    } else {
        Some(Number::from(mag))
    }
}

/// YAML 1.1 float as go-yaml v2 matches it: `^[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?$`.
fn is_yaml_float(s: &str) -> bool {
    let b = s.as_bytes();
    let mut i = 0;
    if i < b.len() && (b[i] == b'-' || b[i] == b'+') {
        i += 1;
    }
    let digits = |i: &mut usize| {
        let st = *i;
        while *i < b.len() && b[*i].is_ascii_digit() {
            *i += 1;
        }
        *i - st
    };
    if i < b.len() && b[i] == b'.' {
        i += 1;
        if digits(&mut i) == 0 {
            return false;
        }
    } else {
        if digits(&mut i) == 0 {
            return false;
        }
        if i < b.len() && b[i] == b'.' {
            i += 1;
            digits(&mut i);
        }
    }
    if i < b.len() && (b[i] == b'e' || b[i] == b'E') {
        i += 1;
        if i < b.len() && (b[i] == b'-' || b[i] == b'+') {
            i += 1;
        }
        if digits(&mut i) == 0 {
            return false;
        }
    }
    i == b.len()
}

/// Mapping keys become strings as `sigs.k8s.io/yaml` does.
fn key_string(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => "null".to_string(),
        other => other.to_string(),
    }
}

// ---------------------------------------------------------------------------------------------
// Event walker

struct PendingKey {
    key: String,
    merge: bool,
    line: u32,
    col: u32,
    len: u32,
}

enum Container {
    Seq(Vec<Value>),
    Map {
        map: Map<String, Value>,
        key: Option<PendingKey>,
        /// `<<` sources (value + position node), applied at the end of the mapping.
        merges: Vec<(Value, u32)>,
    },
}

struct Frame {
    c: Container,
    anchor: usize,
    line: u32,
    col: u32,
    kid_base: usize,
    nodes: usize,
}

struct Anchor {
    value: Value,
    node: u32,
    nodes: usize,
}

struct Builder {
    stack: Vec<Frame>,
    kid_stack: Vec<u32>,
    pos: Positions,
    anchors: HashMap<usize, Anchor>,
    total_nodes: usize,
    root: Option<(Value, u32)>,
    line_offset: usize,
}

fn span_len(span: &Span) -> u32 {
    let (s, e) = (span.start.index(), span.end.index());
    if span.start.line() == span.end.line() && e > s {
        (e - s) as u32
    } else {
        1
    }
}

impl Builder {
    fn new(line_offset: usize) -> Self {
        Builder {
            stack: Vec::new(),
            kid_stack: Vec::new(),
            pos: Positions::default(),
            anchors: HashMap::new(),
            total_nodes: 0,
            root: None,
            line_offset,
        }
    }

    fn reset(&mut self) {
        self.stack.clear();
        self.kid_stack.clear();
        self.pos = Positions::default();
        self.anchors.clear();
        self.total_nodes = 0;
        self.root = None;
    }

    fn err(&self, m: &Marker, message: impl Into<String>) -> YamlError {
        YamlError {
            message: message.into(),
            line: m.line() + self.line_offset,
            col: m.col() + 1,
        }
    }

    fn line(&self, m: &Marker) -> u32 {
        (m.line() + self.line_offset) as u32
    }

    fn budget(&mut self, n: usize, m: &Marker) -> Result<(), YamlError> {
        self.total_nodes = self.total_nodes.saturating_add(n);
        if self.total_nodes > MAX_NODES {
            return Err(self.err(
                m,
                format!(
                    "document expands to more than {MAX_NODES} nodes (alias bomb or oversized document)"
                ),
            ));
        }
        Ok(())
    }

    fn push_node(&mut self, line: u32, col: u32, len: u32, kids_start: u32, kids_len: u32) -> u32 {
        let id = self.pos.nodes.len() as u32;
        self.pos.nodes.push(PosNode {
            line,
            col,
            len,
            kids_start,
            kids_len,
        });
        id
    }

    /// True when the next node is a mapping key.
    fn expecting_key(&self) -> bool {
        matches!(
            self.stack.last(),
            Some(Frame {
                c: Container::Map { key: None, .. },
                ..
            })
        )
    }

    /// Attaches a finished node to its parent (or makes it the root).
    fn attach(
        &mut self,
        value: Value,
        node: u32,
        nodes: usize,
        anchor: usize,
        at: &Marker,
    ) -> Result<(), YamlError> {
        if anchor != 0 {
            self.anchors.insert(
                anchor,
                Anchor {
                    value: value.clone(),
                    node,
                    nodes,
                },
            );
        }
        let Some(top) = self.stack.last_mut() else {
            self.root = Some((value, node));
            return Ok(());
        };
        top.nodes += nodes;
        match &mut top.c {
            Container::Seq(items) => {
                items.push(value);
                self.kid_stack.push(node);
                Ok(())
            }
            Container::Map { map, key, merges } => {
                let Some(k) = key.take() else {
                    return Err(self.err(at, "internal: value without key"));
                };
                if k.merge {
                    merges.push((value, node));
                    return Ok(());
                }
                match map.entry(k.key) {
                    serde_json::map::Entry::Vacant(e) => {
                        e.insert(value);
                    }
                    serde_json::map::Entry::Occupied(e) => {
                        return Err(YamlError {
                            message: format!("duplicate key {:?} in mapping", e.key()),
                            line: k.line as usize,
                            col: k.col as usize,
                        });
                    }
                }
                // The entry points at its key. (Editing in place is safe: aliases and merges
                // only reuse a node's children, never its own location.)
                if let Some(n) = self.pos.nodes.get_mut(node as usize) {
                    n.line = k.line;
                    n.col = k.col;
                    n.len = k.len;
                }
                self.kid_stack.push(node);
                Ok(())
            }
        }
    }

    fn on_event(&mut self, ev: Event<'_>, span: Span) -> Result<(), YamlError> {
        let m = span.start;
        match ev {
            Event::Scalar(s, style, anchor, tag) => {
                self.budget(1, &m)?;
                if self.expecting_key() {
                    let merge = style == ScalarStyle::Plain && s == "<<" && tag.is_none();
                    let key = if merge {
                        String::new()
                    } else {
                        match resolve_scalar(&s, style, tag.as_deref())
                            .map_err(|e| self.err(&m, e))?
                        {
                            Value::String(k) => k,
                            other => key_string(&other),
                        }
                    };
                    if anchor != 0 {
                        let node = self.push_node(self.line(&m), m.col() as u32 + 1, 1, 0, 0);
                        self.anchors.insert(
                            anchor,
                            Anchor {
                                value: Value::String(key.clone()),
                                node,
                                nodes: 1,
                            },
                        );
                    }
                    let pk = PendingKey {
                        key,
                        merge,
                        line: self.line(&m),
                        col: m.col() as u32 + 1,
                        len: span_len(&span),
                    };
                    if let Some(Frame {
                        c: Container::Map { key, .. },
                        ..
                    }) = self.stack.last_mut()
                    {
                        *key = Some(pk);
                    }
                    return Ok(());
                }
                let v = resolve_scalar(&s, style, tag.as_deref()).map_err(|e| self.err(&m, e))?;
                let node = self.push_node(self.line(&m), m.col() as u32 + 1, span_len(&span), 0, 0);
                self.attach(v, node, 1, anchor, &m)
            }
            Event::SequenceStart(anchor, _) | Event::MappingStart(anchor, _) => {
                if self.expecting_key() {
                    return Err(self.err(&m, "complex (non-scalar) mapping keys are not supported"));
                }
                if self.stack.len() >= MAX_DEPTH {
                    return Err(self.err(&m, format!("nesting deeper than {MAX_DEPTH} levels")));
                }
                self.budget(1, &m)?;
                let c = if matches!(ev, Event::SequenceStart(..)) {
                    Container::Seq(Vec::new())
                } else {
                    Container::Map {
                        map: Map::new(),
                        key: None,
                        merges: Vec::new(),
                    }
                };
                self.stack.push(Frame {
                    c,
                    anchor,
                    line: self.line(&m),
                    col: m.col() as u32 + 1,
                    kid_base: self.kid_stack.len(),
                    nodes: 1,
                });
                Ok(())
            }
            Event::SequenceEnd | Event::MappingEnd => {
                let Some(f) = self.stack.pop() else {
                    return Err(self.err(&m, "internal: unbalanced collection end"));
                };
                let value = match f.c {
                    Container::Seq(items) => Value::Array(items),
                    Container::Map {
                        mut map, merges, ..
                    } => {
                        for (src, src_node) in merges {
                            self.merge_into(&mut map, src, src_node, &m)?;
                        }
                        Value::Object(map)
                    }
                };
                let kids_start = self.pos.kids.len() as u32;
                let kids_len = (self.kid_stack.len() - f.kid_base) as u32;
                self.pos.kids.extend(self.kid_stack.drain(f.kid_base..));
                let node = self.push_node(f.line, f.col, 1, kids_start, kids_len);
                self.attach(value, node, f.nodes, f.anchor, &m)
            }
            Event::Alias(id) => {
                let Some(a) = self.anchors.get(&id) else {
                    return Err(self.err(&m, "alias refers to an unknown anchor"));
                };
                let (nodes, anchor_node) = (a.nodes, a.node);
                self.budget(nodes, &m)?;
                let value = match self.anchors.get(&id) {
                    Some(a) => a.value.clone(),
                    None => Value::Null,
                };
                if self.expecting_key() {
                    let key = match &value {
                        Value::Object(_) | Value::Array(_) => {
                            return Err(
                                self.err(&m, "complex (non-scalar) mapping keys are not supported")
                            );
                        }
                        v => key_string(v),
                    };
                    let pk = PendingKey {
                        key,
                        merge: false,
                        line: self.line(&m),
                        col: m.col() as u32 + 1,
                        len: span_len(&span),
                    };
                    if let Some(Frame {
                        c: Container::Map { key, .. },
                        ..
                    }) = self.stack.last_mut()
                    {
                        *key = Some(pk);
                    }
                    return Ok(());
                }
                let an = self.pos.node(anchor_node).copied();
                let (ks, kl) = an.map_or((0, 0), |n| (n.kids_start, n.kids_len));
                let node =
                    self.push_node(self.line(&m), m.col() as u32 + 1, span_len(&span), ks, kl);
                self.attach(value, node, nodes, 0, &m)
            }
            Event::Nothing
            | Event::StreamStart
            | Event::StreamEnd
            | Event::DocumentStart(_)
            | Event::DocumentEnd => Ok(()),
        }
    }

    fn merge_into(
        &mut self,
        map: &mut Map<String, Value>,
        src: Value,
        src_node: u32,
        at: &Marker,
    ) -> Result<(), YamlError> {
        let n = self.pos.node(src_node).copied();
        match src {
            Value::Object(m) => {
                for (i, (k, v)) in m.into_iter().enumerate() {
                    if !map.contains_key(&k) {
                        map.insert(k, v);
                        let kid = n.and_then(|n| self.pos.kid(&n, i)).unwrap_or(src_node);
                        self.kid_stack.push(kid);
                    }
                }
                Ok(())
            }
            Value::Array(items) => {
                for (i, it) in items.into_iter().enumerate() {
                    if !it.is_object() {
                        return Err(
                            self.err(at, "merge key `<<` needs a mapping or a list of mappings")
                        );
                    }
                    let kid = n.and_then(|n| self.pos.kid(&n, i)).unwrap_or(src_node);
                    self.merge_into(map, it, kid, at)?;
                }
                Ok(())
            }
            _ => Err(self.err(at, "merge key `<<` needs a mapping or a list of mappings")),
        }
    }
}

/// Iterator over the documents of one YAML text (typically one [`Chunk`]).
pub struct Documents<'a> {
    parser: Parser<'a, saphyr_parser::StrInput<'a>>,
    builder: Builder,
    doc_line: usize,
    done: bool,
}

/// Parses every document of `text`; `line_offset` is added to reported lines (0 for a whole file).
pub fn documents(text: &str, line_offset: usize) -> Documents<'_> {
    Documents {
        parser: Parser::new_from_str(text),
        builder: Builder::new(line_offset),
        doc_line: 1 + line_offset,
        done: false,
    }
}

impl Iterator for Documents<'_> {
    type Item = Result<Document, YamlError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        let mut in_doc = false;
        let mut failed: Option<YamlError> = None;
        loop {
            let ev = match self.parser.next_event() {
                None => {
                    self.done = true;
                    return failed.map(Err);
                }
                Some(Err(e)) => {
                    // The parser cannot recover; stop this text.
                    self.done = true;
                    let m = e.marker();
                    return Some(Err(failed.unwrap_or(YamlError {
                        message: e.info().to_string(),
                        line: m.line() + self.builder.line_offset,
                        col: m.col() + 1,
                    })));
                }
                Some(Ok(ev)) => ev,
            };
            let (ev, span) = ev;
            match ev {
                Event::StreamEnd => {
                    self.done = true;
                    return failed.map(Err);
                }
                Event::DocumentStart(_) => {
                    in_doc = true;
                    self.builder.reset();
                    self.doc_line = span.start.line() + self.builder.line_offset;
                }
                Event::DocumentEnd => {
                    if let Some(e) = failed.take() {
                        return Some(Err(e));
                    }
                    if in_doc {
                        let (value, root) = self.builder.root.take().unwrap_or((Value::Null, 0));
                        let mut positions = std::mem::take(&mut self.builder.pos);
                        positions.root = root;
                        self.builder.reset();
                        return Some(Ok(Document {
                            value,
                            positions,
                            line: self.doc_line,
                        }));
                    }
                }
                other => {
                    if failed.is_none()
                        && let Err(e) = self.builder.on_event(other, span)
                    {
                        failed = Some(e);
                    }
                }
            }
        }
    }
}

/// Parses all documents of `text` (convenience for tests and small inputs).
pub fn parse_all(text: &str) -> Result<Vec<Document>, YamlError> {
    documents(text, 0).collect()
}

// ---------------------------------------------------------------------------------------------
// Streaming split into documents

/// A piece of a stream holding one (or, rarely, several) YAML documents.
#[derive(Debug, Clone)]
pub struct Chunk {
    pub text: String,
    /// 0-based line offset of `text` in its file (add to the parser's 1-based lines).
    pub line_offset: usize,
}

/// Something wrong with the bytes of a stream (not its YAML).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadError {
    pub message: String,
    pub line: usize,
    pub col: usize,
}

/// Splits a byte stream into document chunks at lines starting with `---`, checking UTF-8 and
/// the per-document size bound, reading at most one document (plus one buffer) at a time.
pub struct ChunkReader<R: BufRead> {
    r: R,
    buf: Vec<u8>,
    /// Line number (0-based) of `buf`'s first line.
    buf_line: usize,
    /// Lines read so far.
    lines: usize,
    /// Byte offset of `buf`'s start in the stream.
    buf_offset: u64,
    offset: u64,
    has_content: bool,
    mid_line: bool,
    skipping: bool,
    at_start: bool,
    eof: bool,
    pending: Option<Result<Chunk, ReadError>>,
    /// A stream (stdin, a FIFO, a device): its end cannot be known, so a document over the cap
    /// ends the input instead of being skipped to the next `---`.
    stream: bool,
    /// Chunks and errors handed out so far.
    yielded: usize,
    /// What the lines were, for the error on a non-empty input without documents.
    seen: Seen,
}

/// Lines of an input by what they hold (counted only until its first document).
#[derive(Debug, Clone, Default)]
struct Seen {
    bytes: u64,
    lines: usize,
    blank: usize,
    comments: usize,
    starts: usize,
    ends: usize,
    directives: usize,
    /// U+0085, U+2028 or U+2029 were seen: line breaks in YAML 1.1, not in YAML 1.2.
    unicode_breaks: bool,
}

impl Seen {
    fn count(&mut self, line: &[u8]) {
        self.lines += 1;
        let first = line
            .iter()
            .find(|c| !matches!(c, b' ' | b'\t' | b'\r' | b'\n'));
        match first {
            None => self.blank += 1,
            Some(b'#') => self.comments += 1,
            Some(_) if line.first() == Some(&b'%') => self.directives += 1,
            Some(_) if is_doc_start(line) => self.starts += 1,
            Some(_) if is_doc_end(line) => self.ends += 1,
            Some(_) => {}
        }
        if line.windows(2).any(|w| w == b"\xC2\x85")
            || line
                .windows(3)
                .any(|w| w == b"\xE2\x80\xA8" || w == b"\xE2\x80\xA9")
        {
            self.unicode_breaks = true;
        }
    }

    /// Whether anything but blank lines was seen.
    fn non_blank(&self) -> bool {
        self.lines > self.blank
    }

    /// "no YAML document in 3 lines (37 bytes): 2 comment lines, 1 `---` line; …".
    fn describe(&self) -> String {
        let lines = |n: usize, what: &str| {
            let s = if n == 1 { "" } else { "s" };
            if what.is_empty() {
                format!("{n} line{s}")
            } else {
                format!("{n} {what} line{s}")
            }
        };
        let parts: Vec<String> = [
            (self.comments, "comment"),
            (self.starts, "`---`"),
            (self.ends, "`...`"),
            (self.directives, "`%` directive"),
            (self.blank, "blank"),
        ]
        .iter()
        .filter(|(n, _)| *n > 0)
        .map(|(n, what)| lines(*n, what))
        .collect();
        let mut msg = format!(
            "no YAML document in {} ({} bytes): {}; nothing was checked",
            lines(self.lines, ""),
            self.bytes,
            parts.join(", ")
        );
        if self.unicode_breaks {
            msg.push_str(
                " (the input contains U+0085, U+2028 or U+2029, which YAML 1.2 does not read as \
                 line breaks: use LF or CR LF)",
            );
        }
        msg
    }
}

/// Appends the next line of `r` to `buf`, at most `limit` bytes (a longer line comes back in
/// pieces): up to and including its line break — LF, CR LF, or a lone CR, which YAML 1.2 reads
/// as a line break too and which is stored as LF, so line numbers, `---` detection and the
/// parser all see the same lines. Returns the bytes consumed (0 at the end of the input).
fn read_line(r: &mut impl BufRead, buf: &mut Vec<u8>, limit: usize) -> std::io::Result<usize> {
    let mut n = 0;
    loop {
        let avail = match r.fill_buf() {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if avail.is_empty() {
            return Ok(n);
        }
        let window = &avail[..avail.len().min(limit.saturating_sub(n).max(1))];
        match memchr::memchr2(b'\n', b'\r', window) {
            Some(i) if window[i] == b'\n' => {
                buf.extend_from_slice(&window[..=i]);
                r.consume(i + 1);
                return Ok(n + i + 1);
            }
            Some(i) => {
                buf.extend_from_slice(&window[..i]);
                r.consume(i + 1);
                n += i + 1;
                let lf_follows = loop {
                    match r.fill_buf() {
                        Ok(b) => break b.first() == Some(&b'\n'),
                        Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                        Err(e) => return Err(e),
                    }
                };
                if lf_follows {
                    r.consume(1);
                    buf.extend_from_slice(b"\r\n");
                    return Ok(n + 1);
                }
                buf.push(b'\n');
                return Ok(n);
            }
            None => {
                let len = window.len();
                buf.extend_from_slice(window);
                r.consume(len);
                n += len;
                if n >= limit {
                    return Ok(n);
                }
            }
        }
    }
}

fn is_doc_start(line: &[u8]) -> bool {
    line.starts_with(b"---") && matches!(line.get(3), None | Some(b' ' | b'\t' | b'\n' | b'\r'))
}

/// `...` (document end) at the start of a line.
fn is_doc_end(line: &[u8]) -> bool {
    line.starts_with(b"...") && matches!(line.get(3), None | Some(b' ' | b'\t' | b'\n' | b'\r'))
}

/// Whether nothing but blanks and a comment follow.
fn blank_or_comment(rest: &[u8]) -> bool {
    matches!(
        rest.iter()
            .find(|c| !matches!(c, b' ' | b'\t' | b'\r' | b'\n')),
        None | Some(b'#')
    )
}

/// Whether a line holds part of a document: not blank, a comment, a directive, or a bare
/// `---` / `...` marker.
fn is_content(line: &[u8]) -> bool {
    if line.first() == Some(&b'%') {
        return false;
    }
    if is_doc_start(line) || is_doc_end(line) {
        return !blank_or_comment(&line[3..]);
    }
    !blank_or_comment(line)
}

impl<R: BufRead> ChunkReader<R> {
    pub fn new(r: R) -> Self {
        ChunkReader {
            r,
            buf: Vec::new(),
            buf_line: 0,
            lines: 0,
            buf_offset: 0,
            offset: 0,
            has_content: false,
            mid_line: false,
            skipping: false,
            at_start: true,
            eof: false,
            pending: None,
            stream: false,
            yielded: 0,
            seen: Seen::default(),
        }
    }

    /// Reads `r` as a stream (stdin, a FIFO, a device): a document larger than
    /// [`MAX_DOCUMENT_BYTES`] ends the input with an error instead of being skipped, since an
    /// endless stream (`/dev/zero`, `yes`) would otherwise be read for ever.
    pub fn stream(mut self, stream: bool) -> Self {
        self.stream = stream;
        self
    }

    fn finish_chunk(
        &mut self,
        bytes: Vec<u8>,
        line: usize,
        offset: u64,
    ) -> Result<Chunk, ReadError> {
        match String::from_utf8(bytes) {
            Ok(text) => Ok(Chunk {
                text,
                line_offset: line,
            }),
            Err(e) => {
                let bytes = e.as_bytes();
                let at = e.utf8_error().valid_up_to();
                let before = &bytes[..at];
                let nl = before.iter().filter(|&&c| c == b'\n').count();
                let line_start = before
                    .iter()
                    .rposition(|&c| c == b'\n')
                    .map_or(0, |p| p + 1);
                let col = String::from_utf8_lossy(&before[line_start..])
                    .chars()
                    .count()
                    + 1;
                let bad = bytes.get(at).copied().unwrap_or(0);
                Err(ReadError {
                    message: format!(
                        "invalid UTF-8 (byte 0x{bad:02X}) at byte offset {}; YAML input must be UTF-8",
                        offset + at as u64
                    ),
                    line: line + nl + 1,
                    col,
                })
            }
        }
    }
}

impl<R: BufRead> Iterator for ChunkReader<R> {
    type Item = Result<Chunk, ReadError>;

    fn next(&mut self) -> Option<Self::Item> {
        let item = self.next_item();
        if item.is_some() {
            self.yielded += 1;
        }
        item
    }
}

impl<R: BufRead> ChunkReader<R> {
    fn next_item(&mut self) -> Option<Result<Chunk, ReadError>> {
        if let Some(p) = self.pending.take() {
            return Some(p);
        }
        if self.eof {
            return None;
        }
        loop {
            let old_len = self.buf.len();
            let cap = MAX_DOCUMENT_BYTES + 1 - old_len.min(MAX_DOCUMENT_BYTES);
            let n = match read_line(&mut self.r, &mut self.buf, cap.max(4096)) {
                Ok(n) => n,
                Err(e) => {
                    self.eof = true;
                    return Some(Err(ReadError {
                        message: format!("read error: {e}"),
                        line: self.lines + 1,
                        col: 1,
                    }));
                }
            };
            if n == 0 {
                self.eof = true;
                if !self.skipping && !self.buf.is_empty() && self.has_content {
                    let bytes = std::mem::take(&mut self.buf);
                    let (l, o) = (self.buf_line, self.buf_offset);
                    return Some(self.finish_chunk(bytes, l, o));
                }
                if self.yielded == 0 && self.seen.non_blank() {
                    self.seen.bytes = self.offset;
                    return Some(Err(ReadError {
                        message: self.seen.describe(),
                        line: 1,
                        col: 1,
                    }));
                }
                return None;
            }
            if self.at_start {
                self.at_start = false;
                if self.buf.starts_with(b"\xEF\xBB\xBF") {
                    self.buf.drain(..3);
                }
            }
            let line_start = !self.mid_line;
            let line = &self.buf[old_len..];
            self.mid_line = line.last() != Some(&b'\n');
            let line_no = self.lines;
            if !self.mid_line {
                self.lines += 1;
            }
            let line_offset_bytes = self.offset;
            self.offset += n as u64;
            if line_start && self.yielded == 0 && !self.has_content {
                self.seen.count(line);
            }
            let sep = line_start && is_doc_start(line);
            if sep && (self.has_content || self.skipping) {
                let content = is_content(line);
                let rest = self.buf.split_off(old_len);
                let prev = std::mem::replace(&mut self.buf, rest);
                let (pl, po) = (self.buf_line, self.buf_offset);
                let was_skipping = self.skipping;
                self.buf_line = line_no;
                self.buf_offset = line_offset_bytes;
                self.has_content = content;
                self.skipping = false;
                if !was_skipping {
                    return Some(self.finish_chunk(prev, pl, po));
                }
                continue;
            }
            if self.skipping {
                self.buf.clear();
                continue;
            }
            if !self.has_content && line_start && is_content(&self.buf[old_len..]) {
                self.has_content = true;
            }
            if self.buf.len() > MAX_DOCUMENT_BYTES {
                self.buf.clear();
                let then = if self.stream {
                    self.eof = true;
                    "stopped reading this input (not a regular file, so its end cannot be known)"
                } else {
                    self.skipping = true;
                    "skipped up to the next `---`"
                };
                return Some(Err(ReadError {
                    message: format!(
                        "document is larger than {} MiB (the Kubernetes API server accepts at most 3 MiB per request); {then}",
                        MAX_DOCUMENT_BYTES / (1024 * 1024)
                    ),
                    line: self.buf_line + 1,
                    col: 1,
                }));
            }
        }
    }
}

/// Reads a whole small input into chunks (convenience; the CLI streams).
pub fn chunks_of(bytes: &[u8]) -> ChunkReader<&[u8]> {
    ChunkReader::new(bytes)
}

// ---------------------------------------------------------------------------------------------
// Emitter (block style; every string that kubectl would read as something else is quoted)

/// Renders a value as a YAML document body (no `---`), readable back to the same value by
/// [`parse_all`] and by kubectl.
pub fn to_yaml(v: &Value) -> String {
    let mut out = String::new();
    match v {
        Value::Object(m) if !m.is_empty() => emit_map(m, 0, false, &mut out),
        Value::Array(a) if !a.is_empty() => emit_seq(a, 0, false, &mut out),
        other => {
            emit_scalar(other, 0, &mut out);
            out.push('\n');
        }
    }
    out
}

fn indent(n: usize, out: &mut String) {
    for _ in 0..n {
        out.push(' ');
    }
}

fn emit_map(m: &Map<String, Value>, ind: usize, inline_first: bool, out: &mut String) {
    for (i, (k, v)) in m.iter().enumerate() {
        if !(i == 0 && inline_first) {
            indent(ind, out);
        }
        emit_string(k, ind, true, out);
        out.push(':');
        match v {
            Value::Object(c) if !c.is_empty() => {
                out.push('\n');
                emit_map(c, ind + 2, false, out);
            }
            Value::Array(a) if !a.is_empty() => {
                out.push('\n');
                emit_seq(a, ind, false, out);
            }
            other => {
                out.push(' ');
                emit_scalar(other, ind + 2, out);
                out.push('\n');
            }
        }
    }
}

fn emit_seq(a: &[Value], ind: usize, inline_first: bool, out: &mut String) {
    for (i, v) in a.iter().enumerate() {
        if !(i == 0 && inline_first) {
            indent(ind, out);
        }
        out.push_str("- ");
        match v {
            Value::Object(c) if !c.is_empty() => emit_map(c, ind + 2, true, out),
            Value::Array(c) if !c.is_empty() => emit_seq(c, ind + 2, true, out),
            other => {
                emit_scalar(other, ind + 2, out);
                out.push('\n');
            }
        }
    }
}

fn emit_scalar(v: &Value, ind: usize, out: &mut String) {
    match v {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => out.push_str(&n.to_string()),
        Value::String(s) => emit_string(s, ind, false, out),
        Value::Object(_) => out.push_str("{}"),
        Value::Array(_) => out.push_str("[]"),
    }
}

fn plain_safe(s: &str, key: bool) -> bool {
    let Some(first) = s.chars().next() else {
        return false;
    };
    if !(first.is_ascii_alphanumeric() || first == '/' || first == '_' || first == '.') {
        return false;
    }
    if s.ends_with([' ', ':']) || s.contains(": ") || s.contains(" #") || s.contains('\t') {
        return false;
    }
    if s.chars().any(|c| {
        c.is_control() || matches!(c, '\u{feff}' | '\u{2028}' | '\u{2029}') || (key && c == '?')
    }) {
        return false;
    }
    if s.starts_with("---") || s.starts_with("...") {
        return false;
    }
    matches!(resolve_plain(s), Ok(Value::String(ref r)) if r == s)
}

fn emit_string(s: &str, ind: usize, key: bool, out: &mut String) {
    if plain_safe(s, key) {
        out.push_str(s);
        return;
    }
    let literal_ok = !key
        && s.contains('\n')
        && !s.starts_with([' ', '\n'])
        && !s.chars().any(|c| {
            (c.is_control() && c != '\n') || matches!(c, '\u{feff}' | '\u{2028}' | '\u{2029}')
        })
        && !s.split('\n').any(|l| l.ends_with(' '));
    if literal_ok {
        let body = s.trim_end_matches('\n');
        let trailing = s.len() - body.len();
        out.push_str(match trailing {
            0 => "|-",
            1 => "|",
            _ => "|+",
        });
        let lines: Vec<&str> = if trailing > 1 {
            s[..s.len() - 1].split('\n').collect()
        } else {
            body.split('\n').collect()
        };
        for l in lines {
            out.push('\n');
            if !l.is_empty() {
                indent(ind.max(2), out);
                out.push_str(l);
            }
        }
        return;
    }
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if c.is_control() || c == '\u{feff}' || c == '\u{2028}' || c == '\u{2029}' => {
                out.push_str(&format!("\\u{:04X}", c as u32));
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn one(s: &str) -> Value {
        parse_all(s).unwrap().remove(0).value
    }

    #[test]
    fn kubectl_scalars() {
        let v = one(
            "a: yes\nb: No\nc: on\nd: OFF\ne: 0777\nf: 0x1F\ng: ~\nh: \"0777\"\ni: 1.5\nj: 09\nk: 1_000\nl: -3\nm: 'true'\nnn: |\n  x\no: 1e3\np:\nq: y\nr: 18446744073709551615\n",
        );
        assert_eq!(
            v,
            json!({"a": true, "b": false, "c": true, "d": false, "e": 511, "f": 31, "g": null,
                   "h": "0777", "i": 1.5, "j": 9.0, "k": 1000, "l": -3, "m": "true", "nn": "x\n",
                   "o": 1000.0, "p": null, "q": true, "r": 18446744073709551615u64})
        );
    }

    #[test]
    fn tags_and_keys() {
        let v = one("a: !!str 12\nb: !!int \"7\"\non: 1\n3: x\n");
        assert_eq!(v, json!({"a": "12", "b": 7, "true": 1, "3": "x"}));
        assert!(parse_all("a: !!int abc\n").is_err());
    }

    #[test]
    fn anchors_and_merge() {
        let v = one("base: &b {x: 1, z: 2}\nc:\n  <<: *b\n  z: 3\nd: *b\n");
        assert_eq!(
            v,
            json!({"base": {"x": 1, "z": 2}, "c": {"z": 3, "x": 1}, "d": {"x": 1, "z": 2}})
        );
    }

    #[test]
    fn duplicate_key_location() {
        let e = parse_all("a: 1\nb:\n  c: 1\n  c: 2\n").unwrap_err();
        assert_eq!((e.line, e.col), (4, 3));
        assert!(e.message.contains("duplicate key \"c\""), "{e}");
    }

    #[test]
    fn billion_laughs_is_bounded() {
        let mut s = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
        for i in 1..12 {
            let p = i - 1;
            s.push_str(&format!(
                "a{i}: &a{i} [*a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}]\n"
            ));
        }
        let e = parse_all(&s).unwrap_err();
        assert!(e.message.contains("more than"), "{e}");
    }

    #[test]
    fn positions() {
        let src = "apiVersion: ray.io/v1\nkind: RayCluster\nspec:\n  workerGroupSpecs:\n  - groupName: a\n    minReplicas: 5\n  - groupName: b\n    maxReplicas: 1\n";
        let d = parse_all(src).unwrap().remove(0);
        let l = d.locate("spec.workerGroupSpecs[0].minReplicas");
        assert_eq!((l.line, l.col, l.len, l.exact), (6, 5, 11, true));
        let l = d.locate("spec.workerGroupSpecs[1].minReplicas");
        assert_eq!((l.line, l.col, l.exact), (7, 5, false));
        let l = d.locate("spec.workerGroupSpecs[b].maxReplicas");
        assert_eq!((l.line, l.col), (8, 5));
        let l = d.locate("workerGroupSpecs[1]");
        assert_eq!((l.line, l.col, l.exact), (7, 5, true));
    }

    #[test]
    fn dotted_keys() {
        let d = parse_all("metadata:\n  annotations:\n    ray.io/ft-enabled: \"true\"\n")
            .unwrap()
            .remove(0);
        let l = d.locate("metadata.annotations.ray.io/ft-enabled");
        assert_eq!((l.line, l.col, l.exact), (3, 5, true));
        let l = d.locate("metadata.annotations[ray.io/ft-enabled]");
        assert_eq!((l.line, l.exact), (3, true));
    }

    #[test]
    fn chunks_split_and_offsets() {
        let src = b"# c\n---\na: 1\n---\nb: 2\nc:\n  - 1\n--- x\n";
        let chunks: Vec<_> = chunks_of(src).map(Result::unwrap).collect();
        assert_eq!(chunks.len(), 3);
        let docs: Vec<_> = chunks
            .iter()
            .flat_map(|c| documents(&c.text, c.line_offset).map(Result::unwrap))
            .collect();
        assert_eq!(docs.len(), 3);
        assert_eq!(docs[1].value, json!({"b": 2, "c": [1]}));
        assert_eq!(docs[1].locate("c").line, 6);
        assert_eq!(docs[2].value, json!("x"));
    }

    #[test]
    fn lone_cr_is_a_line_break_at_any_buffer_boundary() {
        let src = b"# c\ra: 1\r\nb:\r  - x\r---\rc: 2\r";
        let want = ["# c\na: 1\r\nb:\n  - x\n", "---\nc: 2\n"];
        // a 1- to 8-byte buffer puts every CR at the end of a read
        for cap in 1..=8 {
            let r = std::io::BufReader::with_capacity(cap, &src[..]);
            let chunks: Vec<Chunk> = ChunkReader::new(r).map(Result::unwrap).collect();
            let texts: Vec<&str> = chunks.iter().map(|c| c.text.as_str()).collect();
            assert_eq!(texts, want, "buffer {cap}");
            assert_eq!(chunks[1].line_offset, 4);
            let d = documents(&chunks[0].text, 0).next().unwrap().unwrap();
            assert_eq!(d.value, json!({"a": 1, "b": ["x"]}));
            assert_eq!(d.locate("b[0]").line, 4);
        }
    }

    #[test]
    fn no_document_is_described_and_blank_input_is_not() {
        let e = chunks_of(b"# a\n---\n...\n%YAML 1.2\n\n# b \xC2\x85 c")
            .next()
            .unwrap()
            .unwrap_err();
        assert_eq!(
            e.message,
            "no YAML document in 6 lines (31 bytes): 2 comment lines, 1 `---` line, 1 `...` \
             line, 1 `%` directive line, 1 blank line; nothing was checked (the input contains \
             U+0085, U+2028 or U+2029, which YAML 1.2 does not read as line breaks: use LF or CR LF)"
        );
        assert!(chunks_of(b"").next().is_none());
        assert!(chunks_of(b" \n\t\r\n\n").next().is_none());
        // `--- # x` is a marker, `--- x` is content
        assert!(chunks_of(b"--- # x\n").next().unwrap().is_err());
        assert_eq!(
            chunks_of(b"--- x\n").next().unwrap().unwrap().text,
            "--- x\n"
        );
    }

    #[test]
    fn non_utf8_location() {
        let src = b"a: 1\nb: \xff\n";
        let e = chunks_of(src).next().unwrap().unwrap_err();
        assert_eq!((e.line, e.col), (2, 4));
        assert!(e.message.contains("byte offset 8"), "{}", e.message);
    }

    #[test]
    fn emit_round_trip() {
        let v = json!({"a": "yes", "b": "0777", "on": [1, "x: y", {"c": null, "d": "multi\nline\n"}],
                       "e": "", "f": " lead", "g": [], "h": {}, "i": [[1, 2], "#x"], "j": 1.5,
                       "k": "tail\n\n", "l": "no-newline\nend", "m": "-dash", "n": "\u{85}"});
        let y = to_yaml(&v);
        assert_eq!(one(&y), v, "{y}");
    }

    #[test]
    fn nan_is_error() {
        assert!(parse_all("a: .nan\n").is_err());
    }
}
