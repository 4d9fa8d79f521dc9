//! Replays the committed fuzz corpora (`shared/fuzz/corpus/<target>/*`) through the same checks
//! the fuzz targets run, so every `cargo test` covers what fuzzing found interesting.

#[path = "../fuzz/checks.rs"]
mod checks;

use std::path::PathBuf;

fn replay(target: &str, check: fn(&[u8])) {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus").join(target);
    let mut count = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let data = std::fs::read(&path).unwrap();
        let outcome = std::panic::catch_unwind(|| check(&data));
        assert!(outcome.is_ok(), "corpus file {} fails the {target} check", path.display());
        count += 1;
    }
    assert!(count > 0, "no corpus files in {}", dir.display());
}

#[test]
fn term_decode_corpus() {
    replay("term_decode", checks::check_term);
}

#[test]
fn frame_decode_corpus() {
    replay("frame_decode", checks::check_frames);
}

#[test]
fn control_decode_corpus() {
    replay("control_decode", checks::check_control);
}

#[test]
fn handshake_corpus() {
    replay("handshake", checks::check_handshake);
}

#[test]
fn epmd_corpus() {
    replay("epmd", checks::check_epmd);
}

#[test]
fn gossip_corpus() {
    replay("gossip", checks::check_gossip);
}

#[test]
fn cluster_decode_corpus() {
    replay("cluster_decode", checks::check_cluster);
}

#[test]
fn cached_frames_corpus() {
    replay("cached_frames", checks::check_cached);
}
