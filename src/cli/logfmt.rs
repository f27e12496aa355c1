//! Field formatting for `--log-format text` that cannot be used to forge log lines.
//!
//! tracing-subscriber's default text fields write `%`-recorded values (`name = %o.name`) with
//! `Display`, byte for byte: a `\n` in an object name (mutating webhooks run before the API
//! server validates names) started a new, forged log line, and NUL or ESC bytes reached the log
//! and the terminal. [`EscapedFields`] writes every field, the message included, through
//! [`escape_into`]: control characters (C0, DEL, C1), the Unicode line and paragraph
//! separators and the bidirectional overrides become `\n`, `\r`, `\t`, `\0` or `\u{XX}`;
//! everything else is written as is. (`--log-format json` escapes control characters as JSON
//! does.)

use std::fmt::{self, Write};
use tracing::field::{Field, Visit};
use tracing_subscriber::field::RecordFields;
use tracing_subscriber::fmt::FormatFields;
use tracing_subscriber::fmt::format::Writer;

/// Whether `c` is written escaped.
pub fn needs_escape(c: char) -> bool {
    c.is_control()
        || matches!(c, '\u{2028}' | '\u{2029}' | '\u{200e}' | '\u{200f}')
        || ('\u{202a}'..='\u{202e}').contains(&c)
        || ('\u{2066}'..='\u{2069}').contains(&c)
}

/// Writes `s` to `out` with the characters [`needs_escape`] selects escaped.
pub fn escape_into(out: &mut impl Write, s: &str) -> fmt::Result {
    let mut start = 0;
    for (i, c) in s.char_indices() {
        if !needs_escape(c) {
            continue;
        }
        out.write_str(&s[start..i])?;
        match c {
            '\n' => out.write_str("\\n")?,
            '\r' => out.write_str("\\r")?,
            '\t' => out.write_str("\\t")?,
            '\0' => out.write_str("\\0")?,
            c => write!(out, "\\u{{{:x}}}", u32::from(c))?,
        }
        start = i + c.len_utf8();
    }
    out.write_str(&s[start..])
}

/// A `fmt::Write` that escapes what passes through it.
struct Escaping<'a, W: Write>(&'a mut W);

impl<W: Write> Write for Escaping<'_, W> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        escape_into(self.0, s)
    }
}

/// The text format's fields: `message name=value name=value`, every value escaped.
#[derive(Debug, Clone, Copy, Default)]
pub struct EscapedFields;

struct Visitor<'a, 'w> {
    out: &'a mut Writer<'w>,
    first: bool,
    result: fmt::Result,
}

impl Visitor<'_, '_> {
    fn field(&mut self, field: &Field, value: fmt::Arguments<'_>) {
        if self.result.is_err() {
            return;
        }
        let name = field.name();
        // log crate metadata (target, module, file, line) is written by the event format
        if name.starts_with("log.") {
            return;
        }
        let sep = if self.first { "" } else { " " };
        self.first = false;
        self.result = (|| {
            self.out.write_str(sep)?;
            if name != "message" {
                escape_into(self.out, name.strip_prefix("r#").unwrap_or(name))?;
                self.out.write_char('=')?;
            }
            Escaping(self.out).write_fmt(value)
        })();
    }
}

impl Visit for Visitor<'_, '_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.field(field, format_args!("{value}"));
        } else {
            self.field(field, format_args!("{value:?}"));
        }
    }

    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        self.field(field, format_args!("{value}"));
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.field(field, format_args!("{value:?}"));
    }
}

impl<'w> FormatFields<'w> for EscapedFields {
    fn format_fields<R: RecordFields>(&self, mut writer: Writer<'w>, fields: R) -> fmt::Result {
        let mut v = Visitor {
            out: &mut writer,
            first: true,
            result: Ok(()),
        };
        fields.record(&mut v);
        v.result
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn esc(s: &str) -> String {
        let mut out = String::new();
        escape_into(&mut out, s).unwrap();
        out
    }

    #[test]
    fn control_characters_are_escaped_and_the_rest_kept() {
        assert_eq!(esc("plain café ✓"), "plain café ✓");
        assert_eq!(esc("a\nb\r\tc\0"), "a\\nb\\r\\tc\\0");
        assert_eq!(esc("\u{1b}[31m\u{7f}\u{85}"), "\\u{1b}[31m\\u{7f}\\u{85}");
        assert_eq!(
            esc("x\u{2028}y\u{202e}z\u{2066}"),
            "x\\u{2028}y\\u{202e}z\\u{2066}"
        );
        assert_eq!(esc(""), "");
        for c in (0u32..0x3000).filter_map(char::from_u32) {
            let e = esc(&c.to_string());
            assert!(!e.chars().any(needs_escape), "{c:?} -> {e:?}");
        }
    }

    #[test]
    fn every_field_of_an_event_is_escaped() {
        use std::sync::{Arc, Mutex};
        #[derive(Clone, Default)]
        struct Buf(Arc<Mutex<Vec<u8>>>);
        impl std::io::Write for Buf {
            fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
                self.0.lock().unwrap().extend_from_slice(b);
                Ok(b.len())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let buf = Buf::default();
        let w = buf.clone();
        let sub = tracing_subscriber::fmt()
            .with_ansi(false)
            .without_time()
            .fmt_fields(EscapedFields)
            .with_writer(move || w.clone())
            .finish();
        let evil = "a\nFORGED\0";
        tracing::subscriber::with_default(sub, || {
            let span = tracing::info_span!("conn", peer = %evil);
            let _g = span.enter();
            tracing::info!(name = %evil, debug = ?evil, plain = evil, n = 3, "msg {}", evil);
        });
        let out = String::from_utf8(buf.0.lock().unwrap().clone()).unwrap();
        assert_eq!(out.lines().count(), 1, "{out:?}");
        assert!(out.contains(r"conn{peer=a\nFORGED\0}"), "{out}");
        assert!(out.contains(r"msg a\nFORGED\0 name=a\nFORGED\0"), "{out}");
        assert!(
            out.contains(r#"debug="a\nFORGED\0" plain="a\nFORGED\0" n=3"#),
            "{out}"
        );
    }
}
