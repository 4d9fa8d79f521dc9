//! A throw-away certificate authority for tests of CA-verified mutual TLS (feature
//! `test-support`; not part of the product).
//!
//! Tests in several crates need a CA and leaf certificates signed by it, as PEM, the form
//! `SNOW_TLS_CERT`/`KEY`/`CA` take. Generation failures are bugs in the test set-up, so they
//! panic with the reason.

/// A fresh CA (its key stays in memory) that signs leaf certificates for a host.
pub struct TestCa {
    key: rcgen::KeyPair,
    cert: rcgen::Certificate,
}

/// A leaf certificate, its private key and the certificate of the CA that signed it, as PEM.
#[derive(Debug, Clone)]
pub struct LeafPem {
    /// The leaf certificate (`SNOW_TLS_CERT`).
    pub cert: String,
    /// Its private key (`SNOW_TLS_KEY`).
    pub key: String,
    /// The CA's certificate (`SNOW_TLS_CA`).
    pub ca: String,
}

impl TestCa {
    /// A new CA with a new key.
    pub fn new() -> TestCa {
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("CA parameters");
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        let key = rcgen::KeyPair::generate().expect("CA key");
        let cert = params.self_signed(&key).expect("self-signed CA certificate");
        TestCa { key, cert }
    }

    /// A new leaf certificate for `host` (a DNS name or an IP address), signed by this CA.
    pub fn leaf(&self, host: &str) -> LeafPem {
        let key = rcgen::KeyPair::generate().expect("leaf key");
        let cert = rcgen::CertificateParams::new(vec![host.to_owned()])
            .expect("leaf parameters")
            .signed_by(&key, &self.cert, &self.key)
            .expect("leaf certificate signed by the CA");
        LeafPem { cert: cert.pem(), key: key.serialize_pem(), ca: self.cert.pem() }
    }
}

impl Default for TestCa {
    fn default() -> TestCa {
        TestCa::new()
    }
}
