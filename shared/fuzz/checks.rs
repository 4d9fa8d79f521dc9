//! The checks both fuzz targets run, shared with `shared/tests/fuzz_corpus.rs`, which replays the
//! committed corpus through the same code on every `cargo test`.
// Each includer uses only some of these functions.
#![allow(dead_code)]

use snow_shared::codec::{decode, decode_with, encode, encoded_len, DecodeLimits};
use snow_shared::fragment::{is_fragment, Reassembler, ReassemblyLimits};
use snow_shared::frame::FrameDecoder;

/// Term decoder: any input decodes or errors; whatever decodes re-encodes to an equal term.
pub fn check_term(data: &[u8]) {
    if let Ok(term) = decode(data) {
        let bytes = encode(&term);
        assert_eq!(bytes.len(), encoded_len(&term));
        assert_eq!(decode(&bytes).as_ref(), Ok(&term));
    }
    let tight = DecodeLimits { max_depth: 4, max_elements: 32, max_bytes: 4096 };
    if let Ok(term) = decode_with(data, &tight) {
        // Anything accepted under tight limits is accepted under the defaults, identically.
        assert_eq!(decode(data).as_ref(), Ok(&term));
    }
}

/// Frame decoder and reassembler: the stream (after two control bytes that pick a split size and
/// a frame limit) gives the same frames and error whether fed at once or in pieces; fragment
/// frames go through a reassembler with small limits whose accounting must stay consistent.
pub fn check_frames(data: &[u8]) {
    let (split, max_frame, stream) = match data {
        [a, b, rest @ ..] => (usize::from(*a).max(1), usize::from(*b) * 4, rest),
        _ => return,
    };
    let whole = run_frames(&[stream], max_frame);
    let pieces: Vec<&[u8]> = stream.chunks(split).collect();
    assert_eq!(run_frames(&pieces, max_frame), whole);

    let limits = ReassemblyLimits { max_in_flight: 4, max_in_flight_bytes: 1024, max_message: 512 };
    let mut reassembler = Reassembler::new(limits);
    for frame in whole.0 {
        if !is_fragment(&frame) {
            let _ = decode(&frame);
            continue;
        }
        if let Ok(Some(message)) = reassembler.push(&frame) {
            assert!(message.len() <= limits.max_message);
            let _ = decode(&message);
        }
        assert!(reassembler.in_flight() <= limits.max_in_flight);
        assert!(reassembler.in_flight_bytes() <= limits.max_in_flight_bytes);
        assert!(reassembler.buffered_bytes() <= reassembler.in_flight_bytes());
        assert!(reassembler.buffered_bytes() <= stream.len());
    }
}

type FrameRun = (Vec<Vec<u8>>, Option<snow_shared::frame::FrameError>, usize);

fn run_frames(pieces: &[&[u8]], max_frame: usize) -> FrameRun {
    let mut decoder = FrameDecoder::new(max_frame);
    let mut frames = Vec::new();
    for piece in pieces {
        decoder.feed(piece);
        loop {
            match decoder.next_frame() {
                Ok(Some(frame)) => {
                    assert!(frame.len() <= max_frame);
                    frames.push(frame);
                }
                Ok(None) => break,
                Err(err) => return (frames, Some(err), 0),
            }
        }
    }
    (frames, None, decoder.buffered())
}
