//! Go standard-library behaviour KubeRay's RayJob/RayService/RayCronJob rules depend on,
//! re-implemented with the same results and error texts: `time.ParseDuration`,
//! `strconv.Atoi`, `time.LoadLocation` (against Go's embedded tz database) and robfig/cron v3's
//! `ParseStandard`. Pure.

/// Go's `time.quote`: double quotes, with `"` and `\` escaped (enough for error texts).
fn go_time_quote(s: &str) -> String {
    let mut o = String::with_capacity(s.len() + 2);
    o.push('"');
    for c in s.chars() {
        match c {
            '"' | '\\' => {
                o.push('\\');
                o.push(c);
            }
            c if (c as u32) < 0x20 || c == '\u{7f}' => o.push_str(&format!("\\x{:02x}", c as u32)),
            c => o.push(c),
        }
    }
    o.push('"');
    o
}

/// Go's `time.unitMap`: the units of a duration, in nanoseconds (`µs` is U+00B5, `μs` U+03BC).
pub const DURATION_UNITS: &[(&str, u64)] = &[
    ("ns", 1),
    ("us", 1_000),
    ("\u{b5}s", 1_000),
    ("\u{3bc}s", 1_000),
    ("ms", 1_000_000),
    ("s", 1_000_000_000),
    ("m", 60_000_000_000),
    ("h", 3_600_000_000_000),
];

/// `time.ParseDuration`: nanoseconds, or Go's error text.
pub fn parse_duration(s: &str) -> Result<i64, String> {
    let orig = s;
    let invalid = || format!("time: invalid duration {}", go_time_quote(orig));
    let mut s = s.as_bytes();
    let mut neg = false;
    if let Some(&c) = s.first()
        && (c == b'-' || c == b'+')
    {
        neg = c == b'-';
        s = &s[1..];
    }
    if s == b"0" {
        return Ok(0);
    }
    if s.is_empty() {
        return Err(invalid());
    }
    let mut total: u64 = 0;
    while !s.is_empty() {
        // leading integer
        if !(s[0] == b'.' || s[0].is_ascii_digit()) {
            return Err(invalid());
        }
        let start = s.len();
        let mut v: u64 = 0;
        let mut overflow = false;
        while let Some(&c) = s.first() {
            if !c.is_ascii_digit() {
                break;
            }
            match v
                .checked_mul(10)
                .and_then(|x| x.checked_add(u64::from(c - b'0')))
            {
                Some(x) if x <= 1 << 63 => v = x,
                _ => overflow = true,
            }
            s = &s[1..];
        }
        if overflow {
            return Err(invalid());
        }
        let pre = s.len() != start;
        let mut f: u64 = 0;
        let mut scale: f64 = 1.0;
        let mut post = false;
        if s.first() == Some(&b'.') {
            s = &s[1..];
            let st = s.len();
            let mut of = false;
            while let Some(&c) = s.first() {
                if !c.is_ascii_digit() {
                    break;
                }
                if !of {
                    // Go's leadingFraction: stop accumulating once the value would pass 2^63.
                    match Some(f)
                        .filter(|&f| f <= ((1u64 << 63) - 1) / 10)
                        .map(|f| f * 10 + u64::from(c - b'0'))
                        .filter(|&y| y <= 1 << 63)
                    {
                        Some(y) => {
                            f = y;
                            scale *= 10.0;
                        }
                        None => of = true,
                    }
                }
                s = &s[1..];
            }
            post = s.len() != st;
        }
        if !pre && !post {
            return Err(invalid());
        }
        let ustart = s.len();
        let mut i = 0;
        while i < s.len() && !(s[i] == b'.' || s[i].is_ascii_digit()) {
            i += 1;
        }
        let unit = &s[..i];
        s = &s[i..];
        if unit.is_empty() {
            return Err(format!(
                "time: missing unit in duration {}",
                go_time_quote(orig)
            ));
        }
        let _ = ustart;
        let Some(&(_, mult)) = DURATION_UNITS.iter().find(|(u, _)| u.as_bytes() == unit) else {
            return Err(format!(
                "time: unknown unit {} in duration {}",
                go_time_quote(&String::from_utf8_lossy(unit)),
                go_time_quote(orig)
            ));
        };
        if v > (1u64 << 63) / mult {
            return Err(invalid());
        }
        v *= mult;
        if f > 0 {
            v += (f as f64 * (mult as f64 / scale)) as u64;
            if v > 1 << 63 {
                return Err(invalid());
            }
        }
        // Go's `d += v` on uint64: 2^63 + 2^63 wraps to 0 (both are at most 2^63 here).
        total = total.wrapping_add(v);
        if total > 1 << 63 {
            return Err(invalid());
        }
    }
    if neg {
        return Ok((total as i128).wrapping_neg() as i64);
    }
    if total > (1u64 << 63) - 1 {
        return Err(invalid());
    }
    Ok(total as i64)
}

/// `strconv.Atoi` (64-bit `int`): the value, or Go's error text.
pub fn atoi(s: &str) -> Result<i64, String> {
    let q = |why: &str| format!("strconv.Atoi: parsing {}: {why}", go_strconv_quote(s));
    let digits = s.strip_prefix(['+', '-']).unwrap_or(s);
    if digits.is_empty() || !digits.bytes().all(|c| c.is_ascii_digit()) {
        return Err(q("invalid syntax"));
    }
    s.parse::<i64>().map_err(|_| q("value out of range"))
}

/// Go's `strconv.Quote` for the strings that reach it here (printable ASCII plus escapes).
pub fn go_strconv_quote(s: &str) -> String {
    super::k8s::go_quote(s)
}

/// `time.LoadLocation` as in KubeRay's operator (Go's embedded tz database): `Ok` or Go's error.
pub fn load_location(name: &str) -> Result<(), String> {
    if name.is_empty() || name == "UTC" || name == "Local" {
        return Ok(());
    }
    if name.contains("..") || name.starts_with('/') || name.starts_with('\\') {
        return Err("time: invalid location name".into());
    }
    if super::tznames::NAMES.binary_search(&name).is_ok() {
        Ok(())
    } else {
        Err(format!("unknown time zone {name}"))
    }
}

struct Bounds {
    min: u32,
    max: u32,
    names: &'static [(&'static str, u32)],
}

const MINUTES: Bounds = Bounds {
    min: 0,
    max: 59,
    names: &[],
};
const HOURS: Bounds = Bounds {
    min: 0,
    max: 23,
    names: &[],
};
const DOM: Bounds = Bounds {
    min: 1,
    max: 31,
    names: &[],
};
const MONTHS: Bounds = Bounds {
    min: 1,
    max: 12,
    names: &[
        ("jan", 1),
        ("feb", 2),
        ("mar", 3),
        ("apr", 4),
        ("may", 5),
        ("jun", 6),
        ("jul", 7),
        ("aug", 8),
        ("sep", 9),
        ("oct", 10),
        ("nov", 11),
        ("dec", 12),
    ],
};
const DOW: Bounds = Bounds {
    min: 0,
    max: 6,
    names: &[
        ("sun", 0),
        ("mon", 1),
        ("tue", 2),
        ("wed", 3),
        ("thu", 4),
        ("fri", 5),
        ("sat", 6),
    ],
};

/// Go's `%s` of a `[]string`: `[a b c]`.
fn go_fields(f: &[&str]) -> String {
    format!("[{}]", f.join(" "))
}

fn must_parse_int(expr: &str) -> Result<u64, String> {
    let n = atoi(expr).map_err(|e| format!("failed to parse int from {expr}: {e}"))?;
    if n < 0 {
        return Err(format!("negative number ({n}) not allowed: {expr}"));
    }
    Ok(n as u64)
}

fn parse_int_or_name(expr: &str, b: &Bounds) -> Result<u64, String> {
    let lower = expr.to_lowercase();
    if let Some((_, v)) = b.names.iter().find(|(n, _)| *n == lower) {
        return Ok(u64::from(*v));
    }
    must_parse_int(expr)
}

fn get_range(expr: &str, b: &Bounds) -> Result<(), String> {
    let range_and_step: Vec<&str> = expr.split('/').collect();
    let low_high: Vec<&str> = range_and_step[0].split('-').collect();
    let single = low_high.len() == 1;
    let (start, mut end);
    if low_high[0] == "*" || low_high[0] == "?" {
        start = u64::from(b.min);
        end = u64::from(b.max);
    } else {
        start = parse_int_or_name(low_high[0], b)?;
        end = match low_high.len() {
            1 => start,
            2 => parse_int_or_name(low_high[1], b)?,
            _ => return Err(format!("too many hyphens: {expr}")),
        };
    }
    let step = match range_and_step.len() {
        1 => 1,
        2 => {
            let s = must_parse_int(range_and_step[1])?;
            if single {
                end = u64::from(b.max);
            }
            s
        }
        _ => return Err(format!("too many slashes: {expr}")),
    };
    if start < u64::from(b.min) {
        return Err(format!(
            "beginning of range ({start}) below minimum ({}): {expr}",
            b.min
        ));
    }
    if end > u64::from(b.max) {
        return Err(format!(
            "end of range ({end}) above maximum ({}): {expr}",
            b.max
        ));
    }
    if start > end {
        return Err(format!(
            "beginning of range ({start}) beyond end of range ({end}): {expr}"
        ));
    }
    if step == 0 {
        return Err(format!("step of range should be a positive number: {expr}"));
    }
    Ok(())
}

/// robfig/cron v3 `ParseStandard` (5 fields or a descriptor): `Ok` or its error text.
pub fn parse_cron_standard(spec: &str) -> Result<(), String> {
    if spec.is_empty() {
        return Err("empty spec string".into());
    }
    let mut spec = spec;
    let owned;
    if spec.starts_with("TZ=") || spec.starts_with("CRON_TZ=") {
        let eq = spec.find('=').unwrap_or(0);
        let Some(i) = spec.find(' ') else {
            // Go slices spec[eq+1:-1] and panics; report it as a bad location instead.
            return Err(format!(
                "provided bad location {}: time: invalid location name",
                &spec[eq + 1..]
            ));
        };
        let loc = spec.get(eq + 1..i).unwrap_or("");
        if let Err(e) = load_location(loc) {
            return Err(format!("provided bad location {loc}: {e}"));
        }
        owned = spec[i..].trim().to_string();
        spec = &owned;
    }
    if let Some(d) = spec.strip_prefix('@') {
        let _ = d;
        return match spec {
            "@yearly" | "@annually" | "@monthly" | "@weekly" | "@daily" | "@midnight"
            | "@hourly" => Ok(()),
            _ => {
                if let Some(rest) = spec.strip_prefix("@every ") {
                    parse_duration(rest)
                        .map(|_| ())
                        .map_err(|e| format!("failed to parse duration {spec}: {e}"))
                } else {
                    Err(format!("unrecognized descriptor: {spec}"))
                }
            }
        };
    }
    let fields: Vec<&str> = spec.split_whitespace().collect();
    if fields.len() != 5 {
        return Err(format!(
            "expected exactly 5 fields, found {}: {}",
            fields.len(),
            go_fields(&fields)
        ));
    }
    for (f, b) in fields.iter().zip([&MINUTES, &HOURS, &DOM, &MONTHS, &DOW]) {
        for expr in f.split(',').filter(|e| !e.is_empty()) {
            get_range(expr, b)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_like_go() {
        assert_eq!(parse_duration("5m"), Ok(300_000_000_000));
        assert_eq!(parse_duration("1h30m"), Ok(5_400_000_000_000));
        assert_eq!(parse_duration("1.5s"), Ok(1_500_000_000));
        assert_eq!(parse_duration("-2s"), Ok(-2_000_000_000));
        assert_eq!(parse_duration("0"), Ok(0));
        assert_eq!(
            parse_duration("30"),
            Err("time: missing unit in duration \"30\"".into())
        );
        assert_eq!(
            parse_duration("5x"),
            Err("time: unknown unit \"x\" in duration \"5x\"".into())
        );
        assert_eq!(
            parse_duration("abc"),
            Err("time: invalid duration \"abc\"".into())
        );
        assert_eq!(
            parse_duration(""),
            Err("time: invalid duration \"\"".into())
        );
        assert!(parse_duration("9999999999999999999h").is_err());
        // Values Go 1.26's time.ParseDuration gives (checked 2026-12-07): the uint64 sum wraps
        // at 2^63 + 2^63, and a fraction stops accumulating before it passes 2^63.
        assert_eq!(
            parse_duration("9223372036854775808ns9223372036854775808ns"),
            Ok(0)
        );
        assert_eq!(
            parse_duration("4611686018427387904ns4611686018427387904ns9223372036854775808ns"),
            Ok(0)
        );
        assert!(parse_duration("9223372036854775808ns1ns").is_err());
        assert_eq!(parse_duration("1.9223372036854775809h"), Ok(6920413933267));
        assert_eq!(parse_duration("1.9223372036854775808h"), Ok(6920413933267));
        assert_eq!(parse_duration("0.00000000000012345678901234567h"), Ok(0));
        assert_eq!(parse_duration("-9223372036854775808ns"), Ok(i64::MIN));
    }

    #[test]
    fn atoi_like_go() {
        assert_eq!(atoi("30"), Ok(30));
        assert_eq!(atoi("-3"), Ok(-3));
        assert_eq!(
            atoi("3a"),
            Err("strconv.Atoi: parsing \"3a\": invalid syntax".into())
        );
        assert_eq!(
            atoi("99999999999999999999"),
            Err("strconv.Atoi: parsing \"99999999999999999999\": value out of range".into())
        );
    }

    #[test]
    fn cron_like_robfig() {
        for ok in [
            "*/5 * * * *",
            "0 9 * * MON-FRI",
            "@hourly",
            "@every 1h30m",
            "0 0 1 jan,jul ?",
            "1-59/2 * * * *",
        ] {
            assert_eq!(parse_cron_standard(ok), Ok(()), "{ok}");
        }
        assert_eq!(
            parse_cron_standard("* * * *"),
            Err("expected exactly 5 fields, found 4: [* * * *]".into())
        );
        assert_eq!(
            parse_cron_standard("60 * * * *"),
            Err("end of range (60) above maximum (59): 60".into())
        );
        assert_eq!(
            parse_cron_standard("* * 0 * *"),
            Err("beginning of range (0) below minimum (1): 0".into())
        );
        assert_eq!(
            parse_cron_standard("5-1 * * * *"),
            Err("beginning of range (5) beyond end of range (1): 5-1".into())
        );
        assert_eq!(
            parse_cron_standard("*/0 * * * *"),
            Err("step of range should be a positive number: */0".into())
        );
        assert_eq!(
            parse_cron_standard("x * * * *"),
            Err("failed to parse int from x: strconv.Atoi: parsing \"x\": invalid syntax".into())
        );
        assert_eq!(
            parse_cron_standard("@often"),
            Err("unrecognized descriptor: @often".into())
        );
        assert_eq!(parse_cron_standard(""), Err("empty spec string".into()));
    }

    #[test]
    fn time_zones() {
        assert!(load_location("America/New_York").is_ok());
        assert!(load_location("UTC").is_ok());
        assert_eq!(
            load_location("Mars/Olympus"),
            Err("unknown time zone Mars/Olympus".into())
        );
        assert_eq!(
            load_location("../etc/passwd"),
            Err("time: invalid location name".into())
        );
    }
}
