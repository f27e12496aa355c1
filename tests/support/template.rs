//! Expanding `{{ … }}`-style template actions in test inputs (GitHub Actions' `${{ … }}`,
//! Prometheus annotations' `{{ … }}`) the way the real renderer would for the cases a test uses.

/// `s` with every action `OPEN … }}` replaced by `f(the trimmed text inside)`.
pub fn expand(s: &str, open: &str, mut f: impl FnMut(&str) -> String) -> String {
    let mut out = String::new();
    let mut rest = s;
    while let Some(i) = rest.find(open) {
        out.push_str(&rest[..i]);
        let j = rest[i..]
            .find("}}")
            .unwrap_or_else(|| panic!("unclosed {open} in {s}"))
            + i;
        out.push_str(&f(rest[i + open.len()..j].trim()));
        rest = &rest[j + 2..];
    }
    out.push_str(rest);
    out
}
