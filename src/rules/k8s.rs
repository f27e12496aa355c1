//! Kubernetes name/label validators and apimachinery `ParseGeneric` version parsing, with the
//! exact message texts of k8s.io/apimachinery v0.36.0 (the version KubeRay v1.7.0 builds with).
//! Written from the documented behaviour; no code copied.

/// `util/validation.MaxLenError` (DNS validators).
fn max_len_chars(n: usize) -> String {
    format!("must be no more than {n} characters")
}

/// `api/validate/content.MaxLenError` (label keys and values).
fn max_len_bytes(n: usize) -> String {
    format!("must be no more than {n} bytes")
}

/// `RegexError(msg, re, examples...)`.
fn regex_error(msg: &str, re: &str, examples: &[&str]) -> String {
    if examples.is_empty() {
        return format!("{msg} (regex used for validation is '{re}')");
    }
    let mut s = format!("{msg} (e.g. ");
    for (i, e) in examples.iter().enumerate() {
        if i > 0 {
            s.push_str(" or ");
        }
        s.push('\'');
        s.push_str(e);
        s.push_str("', ");
    }
    s.push_str("regex used for validation is '");
    s.push_str(re);
    s.push_str("')");
    s
}

fn is_lower_alnum(c: u8) -> bool {
    c.is_ascii_lowercase() || c.is_ascii_digit()
}

/// `^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`
fn matches_dns1123_label(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && is_lower_alnum(b[0])
        && is_lower_alnum(b[b.len() - 1])
        && b.iter().all(|&c| is_lower_alnum(c) || c == b'-')
}

/// `^label(\.label)*$`
fn matches_dns1123_subdomain(s: &str) -> bool {
    s.split('.').all(matches_dns1123_label)
}

/// `validation.IsDNS1123Subdomain` passes (object names).
pub fn is_dns1123_subdomain(s: &str) -> bool {
    s.len() <= 253 && matches_dns1123_subdomain(s)
}

/// `^[a-z]([-a-z0-9]*[a-z0-9])?$`
fn matches_dns1035_label(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty() && b[0].is_ascii_lowercase() && matches_dns1123_label(s)
}

const DNS1035_FMT: &str = "[a-z]([-a-z0-9]*[a-z0-9])?";
const DNS1035_MSG: &str = "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic character, and end with an alphanumeric character";
const DNS1123_LABEL_FMT: &str = "[a-z0-9]([-a-z0-9]*[a-z0-9])?";
const DNS1123_LABEL_MSG: &str = "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character";
const DNS1123_SUBDOMAIN_FMT: &str =
    "[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*";
const DNS1123_SUBDOMAIN_MSG: &str = "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character";
const LABEL_KEY_FMT: &str = "([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]";
const LABEL_KEY_MSG: &str = "must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character";
const LABEL_VALUE_FMT: &str = "(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?";
const LABEL_VALUE_MSG: &str = "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character";

/// `validation.IsDNS1035Label`.
pub fn is_dns1035_label(value: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if value.len() > 63 {
        errs.push(max_len_chars(63));
    }
    if !matches_dns1035_label(value) {
        errs.push(regex_error(
            DNS1035_MSG,
            DNS1035_FMT,
            &["my-name", "abc-123"],
        ));
    }
    errs
}

/// `validation.IsDNS1123Label`.
pub fn is_dns1123_label(value: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if value.len() > 63 {
        errs.push(max_len_chars(63));
    }
    if !matches_dns1123_label(value) {
        if matches_dns1123_subdomain(value) {
            errs.push("must not contain dots".to_string());
        } else {
            errs.push(regex_error(
                DNS1123_LABEL_MSG,
                DNS1123_LABEL_FMT,
                &["my-name", "123-abc"],
            ));
        }
    }
    errs
}

/// `content.IsDNS1123Subdomain` (used for label-key prefixes).
fn is_dns1123_subdomain_content(value: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if value.len() > 253 {
        errs.push(max_len_bytes(253));
    }
    if !matches_dns1123_subdomain(value) {
        errs.push(regex_error(
            DNS1123_SUBDOMAIN_MSG,
            DNS1123_SUBDOMAIN_FMT,
            &["example.com"],
        ));
    }
    errs
}

/// `^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$`
fn matches_label_key_name(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b[0].is_ascii_alphanumeric()
        && b[b.len() - 1].is_ascii_alphanumeric()
        && b.iter()
            .all(|&c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_' || c == b'.')
}

/// `validation.IsQualifiedName` (= `content.IsLabelKey` in apimachinery v0.36).
pub fn is_qualified_name(value: &str) -> Vec<String> {
    let mut errs = Vec::new();
    let parts: Vec<&str> = value.split('/').collect();
    let name = match parts.len() {
        1 => parts[0],
        2 => {
            let prefix = parts[0];
            if prefix.is_empty() {
                errs.push("prefix part must be non-empty".to_string());
            } else {
                for m in is_dns1123_subdomain_content(prefix) {
                    errs.push(format!("prefix part {m}"));
                }
            }
            parts[1]
        }
        _ => {
            errs.push(format!(
                "a valid label key {} with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')",
                regex_error(LABEL_KEY_MSG, LABEL_KEY_FMT, &["MyName", "my.name", "123-abc"])
            ));
            return errs;
        }
    };
    if name.is_empty() {
        errs.push("name part must be non-empty".to_string());
    } else if name.len() > 63 {
        errs.push(format!("name part {}", max_len_bytes(63)));
    }
    if !matches_label_key_name(name) {
        errs.push(format!(
            "name part {}",
            regex_error(
                LABEL_KEY_MSG,
                LABEL_KEY_FMT,
                &["MyName", "my.name", "123-abc"]
            )
        ));
    }
    errs
}

/// `validation.IsValidLabelValue` (= `content.IsLabelValue`).
pub fn is_valid_label_value(value: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if value.len() > 63 {
        errs.push(max_len_bytes(63));
    }
    if !(value.is_empty() || matches_label_key_name(value)) {
        errs.push(regex_error(
            LABEL_VALUE_MSG,
            LABEL_VALUE_FMT,
            &["MyValue", "my_value", "12345"],
        ));
    }
    errs
}

/// Go's `fmt.Sprintf("%v", []string{...})`: `[a b c]`.
pub fn go_string_slice(items: &[String]) -> String {
    format!("[{}]", items.join(" "))
}

/// Go's `%q` for a string (double-quoted, Go escapes).
pub fn go_quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            '\u{7}' => out.push_str("\\a"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\u{b}' => out.push_str("\\v"),
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                out.push_str(&format!("\\x{:02x}", c as u32));
            }
            c if c.is_control() => {
                let v = c as u32;
                if v <= 0xffff {
                    out.push_str(&format!("\\u{v:04x}"));
                } else {
                    out.push_str(&format!("\\U{v:08x}"));
                }
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// A version parsed like apimachinery's `version.ParseGeneric`: ≥ 2 dot-separated numeric
/// components after an optional `v`; trailing text is ignored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GenericVersion {
    components: Vec<u64>,
}

fn is_go_space(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\n' | '\u{c}' | '\r')
}

impl GenericVersion {
    /// Parses like `version.ParseGeneric`; the error text is Go's.
    pub fn parse(s: &str) -> Result<GenericVersion, String> {
        let cannot = || format!("could not parse {} as version", go_quote(s));
        // ^\s*v?([0-9]+(?:\.[0-9]+)*)(.*)*$  — `.` does not match '\n'.
        let rest = s.trim_start_matches(is_go_space);
        let rest = rest.strip_prefix('v').unwrap_or(rest);
        let b = rest.as_bytes();
        let mut end = 0;
        while end < b.len() && b[end].is_ascii_digit() {
            end += 1;
        }
        if end == 0 {
            return Err(cannot());
        }
        loop {
            if end + 1 < b.len() && b[end] == b'.' && b[end + 1].is_ascii_digit() {
                end += 1;
                while end < b.len() && b[end].is_ascii_digit() {
                    end += 1;
                }
            } else {
                break;
            }
        }
        let (numbers, extra) = rest.split_at(end);
        if extra.contains('\n') {
            return Err(cannot());
        }
        let comps: Vec<&str> = numbers.split('.').collect();
        if comps.len() < 2 {
            return Err(format!("illegal version string {}", go_quote(s)));
        }
        let mut components = Vec::with_capacity(comps.len());
        for (i, comp) in comps.iter().enumerate() {
            if i == 0 && comp.starts_with('0') && *comp != "0" {
                return Err(format!(
                    "illegal zero-prefixed version component {} in {}",
                    go_quote(comp),
                    go_quote(s)
                ));
            }
            match comp.parse::<u64>() {
                Ok(n) => components.push(n),
                Err(_) => {
                    return Err(format!(
                        "illegal non-numeric version component {} in {}: strconv.ParseUint: parsing {}: value out of range",
                        go_quote(comp),
                        go_quote(s),
                        go_quote(comp)
                    ));
                }
            }
        }
        Ok(GenericVersion { components })
    }

    /// `v.LessThan(other)` for generic versions (missing components count as 0).
    pub fn less_than(&self, other: &GenericVersion) -> bool {
        let n = self.components.len().max(other.components.len());
        for i in 0..n {
            let a = self.components.get(i).copied().unwrap_or(0);
            let b = other.components.get(i).copied().unwrap_or(0);
            if a != b {
                return a < b;
            }
        }
        false
    }

    pub fn new(components: &[u64]) -> GenericVersion {
        GenericVersion {
            components: components.to_vec(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dns1035() {
        assert!(is_dns1035_label("raycluster-sample").is_empty());
        assert_eq!(
            is_dns1035_label("invalid.name"),
            vec!["a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic character, and end with an alphanumeric character (e.g. 'my-name',  or 'abc-123', regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')".to_string()]
        );
        assert_eq!(is_dns1035_label("1abc").len(), 1);
        assert_eq!(is_dns1035_label("").len(), 1);
        assert_eq!(is_dns1035_label(&"a".repeat(64)), vec![max_len_chars(63)]);
    }

    #[test]
    fn dns1123_label() {
        assert!(is_dns1123_label("123-abc").is_empty());
        assert_eq!(
            is_dns1123_label("a.b"),
            vec!["must not contain dots".to_string()]
        );
        assert_eq!(
            is_dns1123_label("Group"),
            vec!["a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')".to_string()]
        );
    }

    #[test]
    fn qualified_names_and_values() {
        assert!(is_qualified_name("app.kubernetes.io/name").is_empty());
        assert!(is_qualified_name("ray.io/node-type").is_empty());
        assert_eq!(
            is_qualified_name("/x"),
            vec!["prefix part must be non-empty".to_string()]
        );
        assert_eq!(is_qualified_name("a/b/c").len(), 1);
        assert!(is_qualified_name("a/b/c")[0].starts_with("a valid label key must consist"));
        assert_eq!(
            is_qualified_name("-bad")[0],
            "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')"
        );
        assert_eq!(
            is_qualified_name("UPPER.com/x")[0],
            "prefix part a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"
        );
        assert!(is_valid_label_value("").is_empty());
        assert!(is_valid_label_value("My_value.1").is_empty());
        assert_eq!(
            is_valid_label_value("bad value")[0],
            "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')"
        );
        assert_eq!(
            is_valid_label_value(&"a".repeat(64)),
            vec!["must be no more than 63 bytes".to_string()]
        );
    }

    #[test]
    fn parse_generic() {
        let v = |s: &str| GenericVersion::parse(s);
        assert_eq!(
            v("nightly"),
            Err("could not parse \"nightly\" as version".into())
        );
        assert_eq!(v("2"), Err("illegal version string \"2\"".into()));
        assert_eq!(v("2."), Err("illegal version string \"2.\"".into()));
        assert!(v("2.52.0").is_ok());
        assert!(v("v2.52.0").is_ok());
        assert!(v("  2.52.0rc1").is_ok());
        assert!(v("2.9").is_ok());
        assert_eq!(
            v("02.1"),
            Err("illegal zero-prefixed version component \"02\" in \"02.1\"".into())
        );
        let min = GenericVersion::new(&[2, 52, 0]);
        assert!(v("2.51.9").unwrap().less_than(&min));
        assert!(!v("2.52").unwrap().less_than(&min));
        assert!(!v("2.52.0.1").unwrap().less_than(&min));
        assert!(v("2.9.3").unwrap().less_than(&min));
        assert!(!v("10.0").unwrap().less_than(&min));
    }

    #[test]
    fn go_quote_escapes() {
        assert_eq!(go_quote("a\"b\n"), "\"a\\\"b\\n\"");
        assert_eq!(go_string_slice(&["x".into(), "y".into()]), "[x y]");
    }
}
