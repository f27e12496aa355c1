//! Exact Kubernetes resource quantities ("500m", "512Mi", "1e3", "0.5Gi", "1.5"). Pure.
//!
//! A [`Quantity`] is stored as `mantissa × 10^exponent` with an `i128` mantissa, so parsing and
//! comparison never round (binary suffixes are exact integer multiples of 2^10). The accepted
//! grammar is Kubernetes' (`k8s.io/apimachinery/pkg/api/resource`):
//!
//! ```text
//! quantity ::= [+-] number suffix
//! number   ::= digits | digits "." digits? | "." digits
//! suffix   ::= "" | Ki | Mi | Gi | Ti | Pi | Ei | n | u | m | k | M | G | T | P | E
//!            | (e|E) [+-] digits
//! ```
//!
//! Unlike Kubernetes, precision below 1n is kept rather than rounded up, and a quantity with more
//! than [`MAX_SIGNIFICANT_DIGITS`] significant digits is refused instead of capped.

use std::cmp::Ordering;
use std::fmt;
use std::str::FromStr;

/// Most significant decimal digits a quantity may carry.
pub const MAX_SIGNIFICANT_DIGITS: usize = 36;
/// Largest decimal exponent (after suffixes) accepted.
const MAX_EXPONENT: i64 = 10_000;

/// An exact Kubernetes quantity: `mantissa × 10^exponent`.
#[derive(Debug, Clone, Copy)]
pub struct Quantity {
    mantissa: i128,
    exponent: i32,
}

/// Why a string is not a quantity. Messages follow apimachinery's where it has one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QuantityError {
    /// Empty string, or no digits, or garbage around the number (`ErrFormatWrong`).
    #[error(
        "quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'"
    )]
    Format,
    /// A suffix made of suffix characters that is not a known suffix (`ErrSuffix`).
    #[error("unable to parse quantity's suffix")]
    Suffix,
    #[error("quantity has more than {MAX_SIGNIFICANT_DIGITS} significant digits")]
    TooPrecise,
    #[error("quantity is too large")]
    TooLarge,
}

impl Quantity {
    /// Zero.
    pub const ZERO: Quantity = Quantity {
        mantissa: 0,
        exponent: 0,
    };

    /// `mantissa × 10^exponent`.
    pub fn new(mantissa: i128, exponent: i32) -> Quantity {
        Quantity { mantissa, exponent }.normalized()
    }

    /// Parses a quantity given as a JSON value: a string, or a number (Kubernetes quantities are
    /// int-or-string). `None` for other JSON types.
    pub fn from_json(value: &serde_json::Value) -> Option<Result<Quantity, QuantityError>> {
        match value {
            serde_json::Value::String(s) => Some(s.parse()),
            serde_json::Value::Number(n) => Some(n.to_string().parse()),
            _ => None,
        }
    }

    pub fn is_negative(&self) -> bool {
        self.mantissa < 0
    }

    pub fn is_zero(&self) -> bool {
        self.mantissa == 0
    }

    /// The mantissa and decimal exponent (normalised: the mantissa has no trailing zeros).
    pub fn parts(&self) -> (i128, i32) {
        (self.mantissa, self.exponent)
    }

    /// The value scaled by `10^scale`, rounded up (towards +∞) to an integer; `None` if it does
    /// not fit an `i128`. `ceil_scaled(3)` gives milli-units, `ceil_scaled(0)` whole units.
    pub fn ceil_scaled(&self, scale: i32) -> Option<i128> {
        let e = self.exponent as i64 + scale as i64;
        if self.mantissa == 0 {
            return Some(0);
        }
        if e >= 0 {
            let f = pow10(u32::try_from(e).ok()?)?;
            self.mantissa.checked_mul(f)
        } else {
            let d = u32::try_from(-e).ok()?;
            match pow10(d) {
                Some(f) => {
                    let q = self.mantissa.div_euclid(f);
                    let r = self.mantissa.rem_euclid(f);
                    Some(if r == 0 { q } else { q + 1 })
                }
                // |mantissa| < 10^39 ≤ divisor: the value lies strictly between -1 and 1.
                None => Some(if self.mantissa > 0 { 1 } else { 0 }),
            }
        }
    }

    /// Milli-units rounded up (`"500m"` → 500, `"1"` → 1000).
    pub fn milli_ceil(&self) -> Option<i128> {
        self.ceil_scaled(3)
    }

    /// An approximation as `f64` (for display and heuristics only, never for comparisons).
    pub fn as_f64(&self) -> f64 {
        self.mantissa as f64 * 10f64.powi(self.exponent)
    }

    fn normalized(mut self) -> Quantity {
        if self.mantissa == 0 {
            self.exponent = 0;
            return self;
        }
        while self.mantissa % 10 == 0 {
            self.mantissa /= 10;
            self.exponent += 1;
        }
        self
    }
}

fn pow10(e: u32) -> Option<i128> {
    10i128.checked_pow(e)
}

fn decimal_digits(mut m: u128) -> i64 {
    let mut n = 0;
    while m > 0 {
        m /= 10;
        n += 1;
    }
    n
}

impl FromStr for Quantity {
    type Err = QuantityError;

    fn from_str(s: &str) -> Result<Quantity, QuantityError> {
        let b = s.as_bytes();
        let mut pos = 0;
        let negative = match b.first() {
            Some(b'-') => {
                pos += 1;
                true
            }
            Some(b'+') => {
                pos += 1;
                false
            }
            Some(_) => false,
            None => return Err(QuantityError::Format),
        };
        let int_start = pos;
        while pos < b.len() && b[pos].is_ascii_digit() {
            pos += 1;
        }
        let int_digits = &s[int_start..pos];
        let mut frac_digits = "";
        if pos < b.len() && b[pos] == b'.' {
            pos += 1;
            let fs = pos;
            while pos < b.len() && b[pos].is_ascii_digit() {
                pos += 1;
            }
            frac_digits = &s[fs..pos];
        }
        if int_digits.is_empty() && frac_digits.is_empty() {
            return Err(QuantityError::Format);
        }
        let suffix = &s[pos..];
        let (exp_suffix, binary_pow): (i64, u32) = match suffix {
            "" => (0, 0),
            "Ki" => (0, 10),
            "Mi" => (0, 20),
            "Gi" => (0, 30),
            "Ti" => (0, 40),
            "Pi" => (0, 50),
            "Ei" => (0, 60),
            "n" => (-9, 0),
            "u" => (-6, 0),
            "m" => (-3, 0),
            "k" => (3, 0),
            "M" => (6, 0),
            "G" => (9, 0),
            "T" => (12, 0),
            "P" => (15, 0),
            "E" => (18, 0),
            _ => (parse_exponent_suffix(suffix)?, 0),
        };

        // Significant digits: skip leading zeros; trailing zeros move to the exponent.
        let mut exponent: i64 = -(frac_digits.len() as i64) + exp_suffix;
        let all = int_digits.bytes().chain(frac_digits.bytes());
        let mut mantissa: i128 = 0;
        let mut significant = 0usize;
        let mut pending_zeros = 0usize;
        for c in all.skip_while(|&c| c == b'0') {
            if c == b'0' {
                pending_zeros += 1;
                continue;
            }
            significant += pending_zeros + 1;
            if significant > MAX_SIGNIFICANT_DIGITS {
                return Err(QuantityError::TooPrecise);
            }
            for _ in 0..pending_zeros {
                mantissa *= 10;
            }
            pending_zeros = 0;
            mantissa = mantissa * 10 + i128::from(c - b'0');
        }
        exponent += pending_zeros as i64;
        if mantissa == 0 {
            return Ok(Quantity::ZERO);
        }
        if binary_pow > 0 {
            mantissa = mantissa
                .checked_mul(1i128 << binary_pow)
                .ok_or(QuantityError::TooLarge)?;
        }
        if !(-MAX_EXPONENT..=MAX_EXPONENT).contains(&exponent) {
            return Err(QuantityError::TooLarge);
        }
        if negative {
            mantissa = -mantissa;
        }
        Ok(Quantity {
            mantissa,
            exponent: exponent as i32,
        }
        .normalized())
    }
}

/// `(e|E)[+-]?digits`; anything else is a suffix or format error as apimachinery reports it.
fn parse_exponent_suffix(suffix: &str) -> Result<i64, QuantityError> {
    let b = suffix.as_bytes();
    if b.len() >= 2 && (b[0] == b'e' || b[0] == b'E') {
        let rest = &suffix[1..];
        let (neg, digits) = match rest.as_bytes()[0] {
            b'-' => (true, &rest[1..]),
            b'+' => (false, &rest[1..]),
            _ => (false, rest),
        };
        if !digits.is_empty() && digits.bytes().all(|c| c.is_ascii_digit()) {
            let trimmed = digits.trim_start_matches('0');
            if trimmed.len() > 6 {
                return Err(QuantityError::TooLarge);
            }
            let v: i64 = trimmed.parse().unwrap_or(0);
            return Ok(if neg { -v } else { v });
        }
    }
    // apimachinery: suffix characters followed by an optional signed number parse as a suffix
    // (and then fail as unknown); anything else is a format error.
    let letters_end = suffix
        .bytes()
        .position(|c| !b"eEinumkKMGTP".contains(&c))
        .unwrap_or(suffix.len());
    let mut rest = &suffix[letters_end..];
    if let Some(r) = rest.strip_prefix(['+', '-']) {
        rest = r;
    }
    if rest.bytes().all(|c| c.is_ascii_digit()) {
        Err(QuantityError::Suffix)
    } else {
        Err(QuantityError::Format)
    }
}

impl PartialEq for Quantity {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for Quantity {}

impl PartialOrd for Quantity {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Quantity {
    fn cmp(&self, other: &Self) -> Ordering {
        let (sa, sb) = (self.mantissa.signum(), other.mantissa.signum());
        if sa != sb {
            return sa.cmp(&sb);
        }
        if sa == 0 {
            return Ordering::Equal;
        }
        let mag = cmp_magnitude(
            self.mantissa.unsigned_abs(),
            self.exponent,
            other.mantissa.unsigned_abs(),
            other.exponent,
        );
        if sa > 0 { mag } else { mag.reverse() }
    }
}

fn cmp_magnitude(m1: u128, e1: i32, m2: u128, e2: i32) -> Ordering {
    let top1 = decimal_digits(m1) + e1 as i64;
    let top2 = decimal_digits(m2) + e2 as i64;
    if top1 != top2 {
        return top1.cmp(&top2);
    }
    // Same leading-digit position: scaling the one with the larger exponent cannot overflow,
    // because the result has as many digits as the other mantissa.
    if e1 >= e2 {
        let f = 10u128.checked_pow((e1 - e2) as u32);
        match f.and_then(|f| m1.checked_mul(f)) {
            Some(a) => a.cmp(&m2),
            None => Ordering::Greater,
        }
    } else {
        let f = 10u128.checked_pow((e2 - e1) as u32);
        match f.and_then(|f| m2.checked_mul(f)) {
            Some(b) => m1.cmp(&b),
            None => Ordering::Less,
        }
    }
}

impl fmt::Display for Quantity {
    /// Plain decimal notation when short (`1.5`, `536870912`, `0.5`), else `<mantissa>e<exp>`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (m, e) = (self.mantissa, self.exponent);
        if (0..=18).contains(&e) {
            write!(f, "{m}")?;
            for _ in 0..e {
                f.write_str("0")?;
            }
            Ok(())
        } else if (-18..0).contains(&e) {
            let digits = m.unsigned_abs().to_string();
            let sign = if m < 0 { "-" } else { "" };
            let scale = (-e) as usize;
            if digits.len() > scale {
                let (a, b) = digits.split_at(digits.len() - scale);
                write!(f, "{sign}{a}.{b}")
            } else {
                write!(f, "{sign}0.{}{digits}", "0".repeat(scale - digits.len()))
            }
        } else {
            write!(f, "{m}e{e}")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(s: &str) -> Quantity {
        s.parse().unwrap()
    }

    #[test]
    fn parses_suffixes_exactly() {
        assert_eq!(q("500m"), q("0.5"));
        assert_eq!(q("512Mi"), q("536870912"));
        assert_eq!(q("1e3"), q("1k"));
        assert_eq!(q("0.5Gi"), q("512Mi"));
        assert_eq!(q("1.5"), q("1500m"));
        assert_eq!(q("1E3"), q("1000"));
        assert_eq!(q("1e-3"), q("1m"));
        assert_eq!(q("+2"), q("2"));
        assert_eq!(q(".5"), q("500m"));
        assert_eq!(q("5."), q("5"));
        assert_eq!(q("0"), Quantity::ZERO);
        assert_eq!(q("-0"), Quantity::ZERO);
        assert_eq!(q("100n"), q("0.1u"));
        assert_eq!(q("1Ei"), q("1152921504606846976"));
        assert_eq!(q("1.5Gi").to_string(), "1610612736");
        assert_eq!(q("500m").to_string(), "0.5");
        assert_eq!(q("-1.25").to_string(), "-1.25");
        assert_eq!(q("2k").to_string(), "2000");
    }

    #[test]
    fn orders_without_rounding() {
        assert!(q("1") < q("1001m"));
        assert!(q("0.1") < q("100000001n"));
        assert!(q("1Gi") > q("1G"));
        assert!(q("-1") < q("0"));
        assert!(q("-2") < q("-1"));
        assert!(q("1e100") > q("1Ei"));
        assert!(q("1e-100") > q("0"));
        assert!(q("999999999999999999999999999999") < q("1e30"));
        let mut v = vec![q("2Gi"), q("1"), q("500m"), q("1k")];
        v.sort();
        assert_eq!(v, vec![q("500m"), q("1"), q("1k"), q("2Gi")]);
    }

    #[test]
    fn rejects_garbage_with_clear_errors() {
        for bad in [
            "", "abc", "1.2.3", "1 Gi", "Gi", "-", ".", "1x", "1e", "1e+",
        ] {
            assert!(bad.parse::<Quantity>().is_err(), "{bad:?} should not parse");
        }
        assert_eq!("1Qi".parse::<Quantity>(), Err(QuantityError::Format));
        assert_eq!("1iK".parse::<Quantity>(), Err(QuantityError::Suffix));
        assert_eq!(
            "1e9999999".parse::<Quantity>(),
            Err(QuantityError::TooLarge)
        );
        assert_eq!(
            "1234567890123456789012345678901234567".parse::<Quantity>(),
            Err(QuantityError::TooPrecise)
        );
        assert!(
            QuantityError::Format
                .to_string()
                .contains("regular expression")
        );
    }

    #[test]
    fn ceil_scaled() {
        assert_eq!(q("500m").milli_ceil(), Some(500));
        assert_eq!(q("1.0001").ceil_scaled(0), Some(2));
        assert_eq!(q("-1.5").ceil_scaled(0), Some(-1));
        assert_eq!(q("1n").milli_ceil(), Some(1));
        assert_eq!(q("1e-60").ceil_scaled(0), Some(1));
        assert_eq!(q("1Gi").ceil_scaled(0), Some(1 << 30));
        assert_eq!(q("1e60").ceil_scaled(0), None);
    }

    #[test]
    fn from_json_numbers() {
        let v = serde_json::json!(1.5);
        assert_eq!(Quantity::from_json(&v), Some(Ok(q("1500m"))));
        assert_eq!(Quantity::from_json(&serde_json::json!(2)), Some(Ok(q("2"))));
        assert_eq!(Quantity::from_json(&serde_json::json!(true)), None);
    }
}
