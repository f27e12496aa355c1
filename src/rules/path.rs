//! Field paths in Kubernetes notation: `spec.workerGroupSpecs[1].minReplicas`.
//!
//! Object keys made of `[A-Za-z0-9_-]` are joined with `.`; any other key (with `.`, `/`, …)
//! is written in brackets like Kubernetes' `field.Path.Key`: `metadata.annotations[ray.io/ft-enabled]`.
//! Array indices are `[<digits>]`. A bracketed key is never all digits (such keys use `.`), so the
//! notation is unambiguous; [`to_json_pointer`] turns it back into an RFC 6901 pointer.

fn simple_key(k: &str) -> bool {
    !k.is_empty()
        && k.bytes()
            .all(|c| c.is_ascii_alphanumeric() || c == b'_' || c == b'-')
}

/// `base` + object key.
pub fn key(base: &str, k: &str) -> String {
    if simple_key(k) {
        if base.is_empty() {
            k.to_string()
        } else {
            format!("{base}.{k}")
        }
    } else {
        format!("{base}[{k}]")
    }
}

/// `base` + array index.
pub fn idx(base: &str, i: usize) -> String {
    format!("{base}[{i}]")
}

/// One step of a field path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Segment {
    Key(String),
    Index(usize),
}

/// Splits a field path into keys and indices. Never fails: unbalanced brackets are read as
/// part of a key.
pub fn segments(path: &str) -> Vec<Segment> {
    let mut out = Vec::new();
    let b = path.as_bytes();
    let mut i = 0;
    let mut cur = String::new();
    while i < b.len() {
        match b[i] {
            b'.' => {
                if !cur.is_empty() {
                    out.push(Segment::Key(std::mem::take(&mut cur)));
                }
                i += 1;
            }
            b'[' => {
                if let Some(close) = path[i + 1..].find(']') {
                    if !cur.is_empty() {
                        out.push(Segment::Key(std::mem::take(&mut cur)));
                    }
                    let inner = &path[i + 1..i + 1 + close];
                    if !inner.is_empty() && inner.bytes().all(|c| c.is_ascii_digit()) {
                        match inner.parse() {
                            Ok(n) => out.push(Segment::Index(n)),
                            Err(_) => out.push(Segment::Key(inner.to_string())),
                        }
                    } else {
                        out.push(Segment::Key(inner.to_string()));
                    }
                    i += close + 2;
                } else {
                    cur.push('[');
                    i += 1;
                }
            }
            _ => {
                let ch_len = path[i..].chars().next().map_or(1, char::len_utf8);
                cur.push_str(&path[i..i + ch_len]);
                i += ch_len;
            }
        }
    }
    if !cur.is_empty() {
        out.push(Segment::Key(cur));
    }
    out
}

/// Escapes one RFC 6901 reference token (`~` → `~0`, `/` → `~1`).
pub fn escape_token(t: &str) -> String {
    t.replace('~', "~0").replace('/', "~1")
}

/// RFC 6901 JSON Pointer for a field path (`spec.workerGroupSpecs[1].minReplicas` →
/// `/spec/workerGroupSpecs/1/minReplicas`).
pub fn to_json_pointer(path: &str) -> String {
    let mut s = String::new();
    for seg in segments(path) {
        s.push('/');
        match seg {
            Segment::Key(k) => s.push_str(&escape_token(&k)),
            Segment::Index(i) => s.push_str(&i.to_string()),
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let p = key(&idx(&key("spec", "workerGroupSpecs"), 1), "minReplicas");
        assert_eq!(p, "spec.workerGroupSpecs[1].minReplicas");
        assert_eq!(to_json_pointer(&p), "/spec/workerGroupSpecs/1/minReplicas");
        let a = key("metadata.annotations", "ray.io/ft-enabled");
        assert_eq!(a, "metadata.annotations[ray.io/ft-enabled]");
        assert_eq!(
            to_json_pointer(&a),
            "/metadata/annotations/ray.io~1ft-enabled"
        );
        assert_eq!(key("x", "0"), "x.0");
        assert_eq!(to_json_pointer("x.0"), "/x/0");
        assert_eq!(to_json_pointer("a[b"), "/a[b");
        assert_eq!(to_json_pointer(""), "");
    }
}
