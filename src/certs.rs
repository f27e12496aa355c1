//! Certificates for the webhook: generate a CA and a serving certificate (rcgen), load a
//! certificate chain + private key pair into rustls, and read a certificate's expiry time.
//!
//! This is an edge module (it reads the clock when generating); PEM/DER parsing is pure.

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, SanType,
};
use rustls::sign::CertifiedKey;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

/// Errors from generating or loading certificates.
#[derive(Debug, thiserror::Error)]
pub enum CertError {
    #[error("failed to generate certificate: {0}")]
    Generate(#[from] rcgen::Error),
    #[error("{what}: no PEM certificate found")]
    NoCertificate { what: String },
    #[error("{what}: invalid PEM certificate: {detail}")]
    BadCertificate { what: String, detail: String },
    #[error("{what}: no usable PEM private key found: {detail}")]
    BadKey { what: String, detail: String },
    #[error("certificate {cert} and key {key} do not form a usable pair: {detail}")]
    Mismatch {
        cert: String,
        key: String,
        detail: String,
    },
    #[error("certificate {what} is expired (notAfter {not_after} < now {now}, unix seconds)")]
    Expired {
        what: String,
        not_after: i64,
        now: i64,
    },
}

/// A generated CA plus a serving certificate signed by it, all PEM.
#[derive(Debug, Clone)]
pub struct GeneratedCerts {
    pub ca_cert_pem: String,
    pub ca_key_pem: String,
    pub cert_pem: String,
    pub key_pem: String,
}

impl GeneratedCerts {
    /// `caBundle` for webhook configurations: base64 of the CA certificate PEM.
    pub fn ca_bundle(&self) -> String {
        use base64::Engine;
        base64::engine::general_purpose::STANDARD.encode(self.ca_cert_pem.as_bytes())
    }
}

/// DNS names a Kubernetes Service is reached by.
pub fn service_dns_names(service: &str, namespace: &str) -> Vec<String> {
    vec![
        service.to_string(),
        format!("{service}.{namespace}"),
        format!("{service}.{namespace}.svc"),
        format!("{service}.{namespace}.svc.cluster.local"),
    ]
}

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

fn validity(days: u32) -> (time::OffsetDateTime, time::OffsetDateTime) {
    let now = unix_now();
    // Back-date by an hour to tolerate clock skew between nodes.
    let nb = time::OffsetDateTime::from_unix_timestamp(now - 3600)
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    let na = time::OffsetDateTime::from_unix_timestamp(now + i64::from(days) * 86_400)
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    (nb, na)
}

/// Generates an ECDSA P-256 CA (`ca_days` valid) and a serving certificate (`days` valid)
/// whose SANs are `dns_names` and `ips`.
pub fn generate(
    common_name: &str,
    dns_names: &[String],
    ips: &[IpAddr],
    ca_days: u32,
    days: u32,
) -> Result<GeneratedCerts, CertError> {
    let ca_key = KeyPair::generate()?;
    let mut ca_params = CertificateParams::new(Vec::<String>::new())?;
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, format!("{common_name} CA"));
    dn.push(DnType::OrganizationName, "raygate");
    ca_params.distinguished_name = dn;
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    ca_params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    (ca_params.not_before, ca_params.not_after) = validity(ca_days);
    let ca_cert = ca_params.self_signed(&ca_key)?;
    let issuer = Issuer::new(ca_params, &ca_key);

    let key = KeyPair::generate()?;
    let mut params = CertificateParams::new(dns_names.to_vec())?;
    for ip in ips {
        params.subject_alt_names.push(SanType::IpAddress(*ip));
    }
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, common_name);
    params.distinguished_name = dn;
    params.is_ca = IsCa::ExplicitNoCa;
    params.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
    ];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    (params.not_before, params.not_after) = validity(days);
    let cert = params.signed_by(&key, &issuer)?;

    Ok(GeneratedCerts {
        ca_cert_pem: ca_cert.pem(),
        ca_key_pem: ca_key.serialize_pem(),
        cert_pem: cert.pem(),
        key_pem: key.serialize_pem(),
    })
}

/// Parses a PEM certificate chain (leaf first).
pub fn parse_chain(pem: &[u8], what: &str) -> Result<Vec<CertificateDer<'static>>, CertError> {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<_, _>>()
        .map_err(|e| CertError::BadCertificate {
            what: what.to_string(),
            detail: e.to_string(),
        })?;
    if certs.is_empty() {
        return Err(CertError::NoCertificate {
            what: what.to_string(),
        });
    }
    Ok(certs)
}

/// A loaded serving pair: the rustls key plus facts for logs and metrics.
#[derive(Debug, Clone)]
pub struct LoadedPair {
    pub key: Arc<CertifiedKey>,
    /// Leaf certificate `notAfter`, unix seconds (None if it could not be read).
    pub not_after: Option<i64>,
}

/// Loads a PEM chain and PEM private key into a rustls `CertifiedKey`, checking that the key
/// matches the leaf certificate and that the leaf is not expired (`now` in unix seconds).
pub fn load_pair(
    cert_pem: &[u8],
    key_pem: &[u8],
    cert_what: &str,
    key_what: &str,
    now: i64,
) -> Result<LoadedPair, CertError> {
    let chain = parse_chain(cert_pem, cert_what)?;
    let key = PrivateKeyDer::from_pem_slice(key_pem).map_err(|e| CertError::BadKey {
        what: key_what.to_string(),
        detail: e.to_string(),
    })?;
    let not_after = not_after_unix(chain[0].as_ref());
    if let Some(na) = not_after
        && na < now
    {
        return Err(CertError::Expired {
            what: cert_what.to_string(),
            not_after: na,
            now,
        });
    }
    let provider = rustls::crypto::ring::default_provider();
    let ck = CertifiedKey::from_der(chain, key, &provider).map_err(|e| CertError::Mismatch {
        cert: cert_what.to_string(),
        key: key_what.to_string(),
        detail: e.to_string(),
    })?;
    Ok(LoadedPair {
        key: Arc::new(ck),
        not_after,
    })
}

/// Current unix time in seconds (for callers of [`load_pair`]).
pub fn now_unix() -> i64 {
    unix_now()
}

// ---- minimal DER reader: Certificate.tbsCertificate.validity.notAfter ----

struct Der<'a> {
    buf: &'a [u8],
}

impl<'a> Der<'a> {
    /// Reads one TLV; returns (tag, content) and advances.
    fn next(&mut self) -> Option<(u8, &'a [u8])> {
        let tag = *self.buf.first()?;
        let first = *self.buf.get(1)?;
        let (len, hdr) = if first < 0x80 {
            (first as usize, 2)
        } else {
            let n = (first & 0x7f) as usize;
            if n == 0 || n > 4 {
                return None;
            }
            let mut len = 0usize;
            for i in 0..n {
                len = (len << 8) | *self.buf.get(2 + i)? as usize;
            }
            (len, 2 + n)
        };
        let end = hdr.checked_add(len)?;
        let content = self.buf.get(hdr..end)?;
        self.buf = self.buf.get(end..)?;
        Some((tag, content))
    }
}

/// `notAfter` of a DER certificate as unix seconds; `None` if the DER is malformed.
pub fn not_after_unix(der: &[u8]) -> Option<i64> {
    let (tag, cert) = Der { buf: der }.next()?;
    if tag != 0x30 {
        return None;
    }
    let (tag, tbs) = Der { buf: cert }.next()?;
    if tag != 0x30 {
        return None;
    }
    let mut r = Der { buf: tbs };
    let (mut tag, _) = r.next()?;
    if tag == 0xa0 {
        // explicit version; next is serialNumber
        (tag, _) = r.next()?;
    }
    if tag != 0x02 {
        return None;
    }
    r.next()?; // signature AlgorithmIdentifier
    r.next()?; // issuer
    let (tag, validity) = r.next()?;
    if tag != 0x30 {
        return None;
    }
    let mut v = Der { buf: validity };
    v.next()?; // notBefore
    let (tag, t) = v.next()?;
    parse_time(tag, t)
}

fn parse_time(tag: u8, t: &[u8]) -> Option<i64> {
    let s = std::str::from_utf8(t).ok()?;
    let s = s.strip_suffix('Z')?;
    let (year, rest) = match tag {
        0x17 => {
            // UTCTime YYMMDDHHMMSS
            let yy: i64 = s.get(0..2)?.parse().ok()?;
            (if yy >= 50 { 1900 + yy } else { 2000 + yy }, s.get(2..)?)
        }
        0x18 => (s.get(0..4)?.parse().ok()?, s.get(4..)?),
        _ => return None,
    };
    let num = |r: std::ops::Range<usize>| -> Option<i64> { rest.get(r)?.parse().ok() };
    let (mo, d, h, mi, se) = (num(0..2)?, num(2..4)?, num(4..6)?, num(6..8)?, num(8..10)?);
    Some(days_from_civil(year, mo, d) * 86_400 + h * 3600 + mi * 60 + se)
}

/// Days since 1970-01-01 for a proleptic Gregorian date.
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_days() {
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(days_from_civil(2000, 3, 1), 11_017);
        assert_eq!(days_from_civil(2026, 11, 28), 20_785);
    }

    #[test]
    fn generated_pair_loads_and_expiry_is_read() {
        let g = generate(
            "raygate-webhook",
            &service_dns_names("raygate-webhook", "raygate-system"),
            &["127.0.0.1".parse().unwrap()],
            3650,
            30,
        )
        .unwrap();
        let now = now_unix();
        let p = load_pair(
            g.cert_pem.as_bytes(),
            g.key_pem.as_bytes(),
            "tls.crt",
            "tls.key",
            now,
        )
        .unwrap();
        let na = p.not_after.unwrap();
        assert!((na - (now + 30 * 86_400)).abs() < 5, "{na} vs {now}");
        let ca = parse_chain(g.ca_cert_pem.as_bytes(), "ca").unwrap();
        let ca_na = not_after_unix(ca[0].as_ref()).unwrap();
        assert!(ca_na > na);
        // a chain (leaf + CA) is accepted too
        let chain = format!("{}{}", g.cert_pem, g.ca_cert_pem);
        load_pair(chain.as_bytes(), g.key_pem.as_bytes(), "c", "k", now).unwrap();
    }

    #[test]
    fn mismatched_or_bad_pairs_are_errors() {
        let a = generate("a", &["a".into()], &[], 1, 1).unwrap();
        let b = generate("b", &["b".into()], &[], 1, 1).unwrap();
        let now = now_unix();
        let e = load_pair(a.cert_pem.as_bytes(), b.key_pem.as_bytes(), "c", "k", now);
        assert!(matches!(e, Err(CertError::Mismatch { .. })), "{e:?}");
        let e = load_pair(b"garbage", a.key_pem.as_bytes(), "c", "k", now);
        assert!(matches!(e, Err(CertError::NoCertificate { .. })), "{e:?}");
        let e = load_pair(a.cert_pem.as_bytes(), b"nope", "c", "k", now);
        assert!(matches!(e, Err(CertError::BadKey { .. })), "{e:?}");
        let e = load_pair(
            a.cert_pem.as_bytes(),
            a.key_pem.as_bytes(),
            "c",
            "k",
            now + 10 * 86_400,
        );
        assert!(matches!(e, Err(CertError::Expired { .. })), "{e:?}");
        assert_eq!(not_after_unix(b"\x30\x03\x02\x01"), None);
    }
}
