//! Private temporary directories (removed on drop) and secret files (mode 600), for cookies,
//! certificates, snow-epmd data and compiled Erlang modules: the workspace's one
//! [`snow_shared::test_support::TempDir`], plus cookies and free ports.

pub use snow_shared::test_support::{write_secret, TempDir};

/// A fresh random cookie (the same format as `snow-epmd gen-cookie`).
pub fn random_cookie() -> String {
    snow_shared::cookie::Cookie::generate(rand::random())
}

/// A TCP port that was free a moment ago on 127.0.0.1 (bound to port 0, then released). Only for
/// programs that cannot be told to use port 0 and report the port, such as Erlang's epmd.
pub fn free_port() -> std::io::Result<u16> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(listener.local_addr()?.port())
}
