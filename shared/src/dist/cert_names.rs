//! Which hosts a peer's TLS certificate speaks for, in CA-verified mode (PROTOCOL.md 4.2.1): the
//! subject alternative names of the certificate (DNS names and IP addresses), and the rule that
//! matches them against the host of the node name the peer claims in its HELLO.
//!
//! The certificate has been verified against the cluster's CA by rustls before its names are read
//! here; this module only reads the SAN extension out of its DER encoding (a bounds-checked walk
//! that never panics, whatever the bytes) and compares names.
//!
//! Matching: a host that is an IP literal (`127.0.0.1`, `[::1]`) must be one of the certificate's
//! IP address names; a DNS host must equal one of its DNS names (ignoring case and a trailing
//! dot), or match a wildcard name `*.example.com`, which stands for exactly one leftmost label
//! (`db1.example.com`, not `example.com` nor `a.db1.example.com`). The subject's common name is
//! never used, as in rustls.

use std::fmt;
use std::net::IpAddr;

use crate::name::NodeName;

/// The DER object identifier of the subject alternative name extension (2.5.29.17), encoded.
const SUBJECT_ALT_NAME: &[u8] = &[0x55, 0x1d, 0x11];

/// DER tags met on the way to the names.
mod der_tag {
    pub const BOOLEAN: u8 = 0x01;
    pub const OCTET_STRING: u8 = 0x04;
    pub const OID: u8 = 0x06;
    pub const SEQUENCE: u8 = 0x30;
    /// `[3] EXPLICIT` around a certificate's extensions.
    pub const EXTENSIONS: u8 = 0xa3;
    /// `GeneralName` choice `dNSName [2] IA5String`.
    pub const DNS_NAME: u8 = 0x82;
    /// `GeneralName` choice `iPAddress [7] OCTET STRING`.
    pub const IP_ADDRESS: u8 = 0x87;
}

/// The DNS and IP address names of a certificate.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CertNames {
    dns: Vec<String>,
    ips: Vec<IpAddr>,
}

/// The certificate's DER could not be read far enough to find its names.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("malformed peer certificate: {0}")]
pub struct CertNamesError(&'static str);

impl CertNames {
    /// Names given directly (tests, or names obtained another way). DNS names are kept as given
    /// and compared without regard to case.
    pub fn new(dns: Vec<String>, ips: Vec<IpAddr>) -> CertNames {
        CertNames { dns, ips }
    }

    /// The subject alternative names of a DER-encoded X.509 certificate. A certificate without
    /// the extension has no names (and allows no host).
    pub fn from_der(cert: &[u8]) -> Result<CertNames, CertNamesError> {
        let mut names = CertNames::default();
        let certificate = Der(cert).expect(der_tag::SEQUENCE, "not a certificate")?;
        let tbs = Der(certificate).expect(der_tag::SEQUENCE, "no to-be-signed part")?;
        let mut fields = Der(tbs);
        while !fields.is_empty() {
            let (tag, body) = fields.next()?;
            if tag != der_tag::EXTENSIONS {
                continue;
            }
            let mut extensions = Der(Der(body).expect(der_tag::SEQUENCE, "extensions are not a sequence")?);
            while !extensions.is_empty() {
                let mut extension = Der(extensions.expect(der_tag::SEQUENCE, "extension is not a sequence")?);
                if extension.expect(der_tag::OID, "extension without an identifier")? != SUBJECT_ALT_NAME {
                    continue;
                }
                let (mut tag, mut value) = extension.next()?;
                if tag == der_tag::BOOLEAN {
                    (tag, value) = extension.next()?;
                }
                if tag != der_tag::OCTET_STRING {
                    return Err(CertNamesError("subject alternative names not in an octet string"));
                }
                names.read_general_names(value)?;
            }
        }
        Ok(names)
    }

    fn read_general_names(&mut self, value: &[u8]) -> Result<(), CertNamesError> {
        let mut list = Der(Der(value).expect(der_tag::SEQUENCE, "subject alternative names are not a sequence")?);
        while !list.is_empty() {
            let (tag, body) = list.next()?;
            match tag {
                der_tag::DNS_NAME => {
                    let text = std::str::from_utf8(body)
                        .ok()
                        .filter(|t| t.is_ascii())
                        .ok_or(CertNamesError("a DNS name is not ASCII"))?;
                    self.dns.push(text.to_owned());
                }
                der_tag::IP_ADDRESS => match body.len() {
                    4 => self.ips.push(IpAddr::from(<[u8; 4]>::try_from(body).unwrap_or_default())),
                    16 => self.ips.push(IpAddr::from(<[u8; 16]>::try_from(body).unwrap_or_default())),
                    _ => return Err(CertNamesError("an IP address name is neither 4 nor 16 bytes")),
                },
                // Other kinds (e-mail, URI, directory names...) say nothing about hosts.
                _ => {}
            }
        }
        Ok(())
    }

    /// The DNS names.
    pub fn dns_names(&self) -> &[String] {
        &self.dns
    }

    /// The IP address names.
    pub fn ip_addresses(&self) -> &[IpAddr] {
        &self.ips
    }

    /// Whether a certificate with these names may speak for node `name` (module documentation).
    pub fn allows(&self, name: &NodeName) -> bool {
        let host = name.host_for_connect();
        match host.parse::<IpAddr>() {
            Ok(ip) => self.ips.contains(&ip),
            Err(_) => self.dns.iter().any(|pattern| dns_matches(pattern, host)),
        }
    }

    /// The hosts these names stand for, written as the host part of a node name (DNS names
    /// lowercased, IPv6 in brackets; wildcards left out), in certificate order, IP addresses last.
    pub fn hosts(&self) -> Vec<String> {
        let dns =
            self.dns.iter().filter(|d| !d.starts_with("*.")).map(|d| d.trim_end_matches('.').to_ascii_lowercase());
        let ips = self.ips.iter().map(|ip| match ip {
            IpAddr::V4(v4) => v4.to_string(),
            IpAddr::V6(v6) => format!("[{v6}]"),
        });
        dns.chain(ips).collect()
    }
}

/// Whether the DNS name `pattern` of a certificate covers the (canonical, lowercase) `host`.
fn dns_matches(pattern: &str, host: &str) -> bool {
    let pattern = pattern.trim_end_matches('.');
    match pattern.strip_prefix("*.") {
        Some(parent) => match host.split_once('.') {
            Some((label, rest)) => !label.is_empty() && !parent.is_empty() && rest.eq_ignore_ascii_case(parent),
            None => false,
        },
        None => pattern.eq_ignore_ascii_case(host),
    }
}

/// Lists the names for error messages: `DNS:db1.example.com, IP:10.0.0.7`.
impl fmt::Display for CertNames {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.dns.is_empty() && self.ips.is_empty() {
            return f.write_str("no DNS or IP address names");
        }
        let dns = self.dns.iter().map(|d| format!("DNS:{d}"));
        let ips = self.ips.iter().map(|ip| format!("IP:{ip}"));
        f.write_str(&dns.chain(ips).collect::<Vec<_>>().join(", "))
    }
}

/// A cursor over DER-encoded values (tag, definite length, contents); reads are bounds-checked.
struct Der<'a>(&'a [u8]);

impl<'a> Der<'a> {
    fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The next value's tag and contents.
    fn next(&mut self) -> Result<(u8, &'a [u8]), CertNamesError> {
        let truncated = CertNamesError("truncated DER value");
        let (&tag, rest) = self.0.split_first().ok_or(truncated.clone())?;
        if tag & 0x1f == 0x1f {
            return Err(CertNamesError("DER tag in high-number form"));
        }
        let (&first, rest) = rest.split_first().ok_or(truncated.clone())?;
        let (len, rest) = match first {
            0..=0x7f => (usize::from(first), rest),
            0x81..=0x84 => {
                let n = usize::from(first & 0x7f);
                let bytes = rest.get(..n).ok_or(truncated.clone())?;
                (bytes.iter().fold(0usize, |len, &b| (len << 8) | usize::from(b)), &rest[n..])
            }
            _ => return Err(CertNamesError("DER length indefinite or over 4 bytes")),
        };
        let contents = rest.get(..len).ok_or(truncated)?;
        self.0 = &rest[len..];
        Ok((tag, contents))
    }

    /// The contents of the next value, which must have tag `tag`.
    fn expect(&mut self, tag: u8, what: &'static str) -> Result<&'a [u8], CertNamesError> {
        match self.next()? {
            (found, contents) if found == tag => Ok(contents),
            _ => Err(CertNamesError(what)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name(text: &str) -> NodeName {
        NodeName::parse(text).unwrap()
    }

    fn cert_for(names: &[&str]) -> Vec<u8> {
        let params = rcgen::CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>()).unwrap();
        let key = rcgen::KeyPair::generate().unwrap();
        params.self_signed(&key).unwrap().der().to_vec()
    }

    #[test]
    fn names_are_read_from_a_certificate() {
        let der = cert_for(&["db1.example.com", "127.0.0.1", "::1", "*.nodes.example"]);
        let names = CertNames::from_der(&der).unwrap();
        assert_eq!(names.dns_names(), ["db1.example.com", "*.nodes.example"]);
        assert_eq!(names.ip_addresses(), ["127.0.0.1".parse::<IpAddr>().unwrap(), "::1".parse().unwrap()]);
        assert_eq!(names.hosts(), ["db1.example.com", "127.0.0.1", "[::1]"]);
        assert_eq!(names.to_string(), "DNS:db1.example.com, DNS:*.nodes.example, IP:127.0.0.1, IP:::1");
    }

    #[test]
    fn a_certificate_without_names_allows_nothing() {
        let der = cert_for(&[]);
        let names = CertNames::from_der(&der).unwrap();
        assert_eq!(names, CertNames::default());
        assert!(!names.allows(&name("a@localhost")));
        assert_eq!(names.to_string(), "no DNS or IP address names");
    }

    #[test]
    fn hosts_match_by_kind_case_and_single_label_wildcards() {
        let names = CertNames::new(
            vec!["DB1.Example.com.".into(), "*.nodes.example".into()],
            vec!["10.0.0.7".parse().unwrap(), "fe80::1".parse().unwrap()],
        );
        assert!(names.allows(&name("app@db1.example.com")));
        assert!(names.allows(&name("app@DB1.EXAMPLE.COM")));
        assert!(!names.allows(&name("app@db2.example.com")));
        assert!(names.allows(&name("x@n7.nodes.example")));
        assert!(!names.allows(&name("x@nodes.example")), "a wildcard needs its label");
        assert!(!names.allows(&name("x@a.n7.nodes.example")), "a wildcard covers one label");
        assert!(names.allows(&name("x@10.0.0.7")));
        assert!(!names.allows(&name("x@10.0.0.8")));
        assert!(names.allows(&name("x@[fe80:0:0::1]")));
        assert!(!names.allows(&name("x@[::1]")));
        // An IP literal is never matched against DNS names that spell it.
        let spelled = CertNames::new(vec!["10.0.0.7".into()], Vec::new());
        assert!(!spelled.allows(&name("x@10.0.0.7")));
    }

    #[test]
    fn malformed_der_is_an_error_never_a_panic() {
        let der = cert_for(&["db1.example.com"]);
        for cut in 0..der.len() {
            // Any prefix either fails or (past the names) still reads them; none panics.
            let _ = CertNames::from_der(&der[..cut]);
        }
        assert!(CertNames::from_der(&[]).is_err());
        assert!(CertNames::from_der(&[0x30, 0x85, 0, 0, 0, 0, 1]).is_err());
        assert!(CertNames::from_der(&[0x30, 0x82, 0xff]).is_err());
        assert!(CertNames::from_der(&[0x1f, 0x00]).is_err());
    }
}
