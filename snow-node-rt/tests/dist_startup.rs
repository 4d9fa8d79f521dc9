//! Start-up from the environment. One test per binary: it sets process environment variables.

mod dist_support;

use snow_node_rt::dist::{start_from_env, ConfigError, StartError};
use snow_shared::cookie::CookieError;

#[async_std::test]
async fn start_up_validates_the_environment() {
    // Unset SNOW_NODE: local-only.
    std::env::remove_var("SNOW_NODE");
    let local = start_from_env().await.unwrap();
    assert!(!local.is_distributed());
    assert!(local.nodes().is_empty());
    assert!(local.connect("x@127.0.0.1").await.is_err());
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
    for var in ["SNOW_NODE", "SNOW_COOKIE", "SNOW_DIST_PORT", "SNOW_EPMD"] {
        std::env::remove_var(var);
    }
}
