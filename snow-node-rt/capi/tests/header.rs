//! The header C programs include is what the code generates: cbindgen regenerates it from this
//! crate's source and the test compares it with the checked-in `include/snow_node.h`, so the two
//! never drift. `SNOW_CAPI_BLESS=1` writes the generated header instead (then review the diff).

use std::path::Path;

#[test]
fn the_checked_in_header_is_what_the_code_generates() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    let config = cbindgen::Config::from_file(dir.join("cbindgen.toml")).expect("cbindgen.toml is valid");
    let bindings = cbindgen::Builder::new()
        .with_config(config)
        .with_src(dir.join("src/lib.rs"))
        .generate()
        .expect("cbindgen generates the header from the crate's source");
    let mut generated = Vec::new();
    bindings.write(&mut generated);
    let path = dir.join("include/snow_node.h");
    if std::env::var_os("SNOW_CAPI_BLESS").is_some() {
        std::fs::write(&path, &generated).expect("include/snow_node.h is writable");
    }
    let checked_in = std::fs::read(&path).unwrap_or_default();
    assert!(
        checked_in == generated,
        "include/snow_node.h differs from what the code generates: run \
         `SNOW_CAPI_BLESS=1 cargo test -p snow-node-capi --test header` and commit the header"
    );
}
