//! Start-up from the environment. One test per binary: it sets process environment variables.

mod support;

use support::{name, run};

use snow_node_rt::dist::{ConfigError, StartError};
use snow_node_rt::start_from_env;
use snow_shared::cookie::CookieError;
use snow_shared::dist::tls::TlsError;

#[test]
fn start_up_validates_the_environment() {
    run(async {
        // Unset SNOW_NODE: local-only.
        std::env::remove_var("SNOW_NODE");
        let local = start_from_env().await.unwrap();
        assert!(!local.is_distributed());
        assert!(local.nodes().is_empty());
        assert!(local.connect(&name("x")).await.is_err());
        // A cookie under 16 bytes is refused, naming the problem; nothing starts.
        std::env::set_var("SNOW_NODE", "short@127.0.0.1");
        std::env::set_var("SNOW_COOKIE", "tiny");
        let err = start_from_env().await.unwrap_err();
        assert!(matches!(err, StartError::Config(ConfigError::Cookie(CookieError::TooShort { .. }))), "{err}");
        assert!(!err.to_string().contains("tiny"), "the cookie is not echoed: {err}");
        // A bad port is named too.
        std::env::set_var("SNOW_COOKIE", "0123456789abcdef-long-enough");
        std::env::set_var("SNOW_DIST_PORT", "99999");
        let err = start_from_env().await.unwrap_err().to_string();
        assert!(err.contains("SNOW_DIST_PORT"), "{err}");
        // No snow-epmd at the given address: a clear error.
        std::env::set_var("SNOW_DIST_PORT", "0");
        std::env::set_var("SNOW_EPMD", "127.0.0.1:1");
        let err = start_from_env().await.unwrap_err();
        assert!(matches!(err, StartError::Epmd(_)), "{err}");
        // TLS files are read before anything is opened: a missing one is named, in one line.
        let dir = std::env::temp_dir().join(format!("snow-startup-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let missing = dir.join("no-such-cert.pem");
        std::env::set_var("SNOW_TLS_CERT", &missing);
        std::env::set_var("SNOW_TLS_KEY", dir.join("no-such-key.pem"));
        std::env::set_var("SNOW_TLS_CA", dir.join("no-such-ca.pem"));
        let err = start_from_env().await.unwrap_err();
        assert!(matches!(err, StartError::Tls(TlsError::ReadFile { what: "SNOW_TLS_CERT", .. })), "{err}");
        let text = err.to_string();
        assert!(text.contains("SNOW_TLS_CERT") && text.contains("no-such-cert.pem") && !text.contains('\n'), "{text}");
        // Files that are there but hold no certificate: a TLS error, not a panic.
        for (var, name) in [("SNOW_TLS_CERT", "cert.pem"), ("SNOW_TLS_KEY", "key.pem"), ("SNOW_TLS_CA", "ca.pem")] {
            std::fs::write(dir.join(name), b"not PEM at all").unwrap();
            std::env::set_var(var, dir.join(name));
        }
        // The key file must be private before its contents are even looked at.
        let err = start_from_env().await.unwrap_err();
        assert!(err.to_string().starts_with("SNOW_TLS_KEY ") && err.to_string().contains("chmod 600"), "{err}");
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir.join("key.pem"), std::fs::Permissions::from_mode(0o600)).unwrap();
        let err = start_from_env().await.unwrap_err();
        assert!(matches!(err, StartError::Tls(TlsError::NoCertificate { .. })), "{err}");
        // A listen address that is not an IP address is named, with what is expected.
        std::env::set_var("SNOW_DIST_ADDR", "eth0");
        let err = start_from_env().await.unwrap_err().to_string();
        assert!(err.contains("SNOW_DIST_ADDR=\"eth0\" is not an IP address") && !err.contains('\n'), "{err}");
        std::env::remove_var("SNOW_DIST_ADDR");
        let _ = std::fs::remove_dir_all(&dir);
        for var in
            ["SNOW_NODE", "SNOW_COOKIE", "SNOW_DIST_PORT", "SNOW_EPMD", "SNOW_TLS_CERT", "SNOW_TLS_KEY", "SNOW_TLS_CA"]
        {
            std::env::remove_var(var);
        }
    });
}
