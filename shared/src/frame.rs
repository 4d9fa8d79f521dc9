//! Length-prefixed framing, sans-IO (PROTOCOL.md section 2).
//!
//! On a connection, every frame is a 4-byte big-endian payload length followed by the payload.
//! [`FrameDecoder`] accepts the byte stream in whatever pieces the socket delivers and hands out
//! whole payloads; [`encode_frame`] writes one frame. A zero-length frame is valid and is delivered
//! as an empty payload: the distribution layer uses it as a keepalive that costs four bytes.
//!
//! A header that announces a payload over the decoder's maximum is an error reported as soon as the
//! four header bytes are in, before anything is reserved for the payload. Since the stream cannot
//! be resynchronised after that, the decoder stays failed and the connection should be closed.

/// Bytes in a frame header.
pub const FRAME_HEADER_LEN: usize = 4;

/// Default largest frame payload a [`FrameDecoder`] accepts: 8 MiB. Larger messages travel as
/// fragments (see [`crate::fragment`]), so this bounds per-connection buffering, not message size.
pub const DEFAULT_MAX_FRAME: usize = 8 << 20;

/// Largest payload the 4-byte header can describe.
pub const MAX_ENCODABLE_FRAME: usize = u32::MAX as usize;

/// What is wrong with a frame.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    /// The payload is longer than the limit (the decoder's maximum, or the 4-byte header's range
    /// when encoding).
    #[error("frame payload of {len} bytes exceeds the limit of {max}; send large messages as fragments or raise the frame limit on the receiver")]
    TooLarge {
        /// The payload length announced or requested.
        len: usize,
        /// The limit in force.
        max: usize,
    },
}

/// The 4-byte header for a payload of `len` bytes.
pub fn frame_header(len: usize) -> Result<[u8; FRAME_HEADER_LEN], FrameError> {
    let len32 = u32::try_from(len).map_err(|_| FrameError::TooLarge { len, max: MAX_ENCODABLE_FRAME })?;
    Ok(len32.to_be_bytes())
}

/// Appends one frame (header, then `payload`) to `out`. Fails only if the payload is longer than
/// 4 GiB - 1; whether the receiver accepts it depends on the receiver's configured maximum.
pub fn encode_frame(payload: &[u8], out: &mut Vec<u8>) -> Result<(), FrameError> {
    let header = frame_header(payload.len())?;
    out.reserve(FRAME_HEADER_LEN + payload.len());
    out.extend_from_slice(&header);
    out.extend_from_slice(payload);
    Ok(())
}

/// Incremental frame decoder: [`feed`](FrameDecoder::feed) bytes as they arrive, then call
/// [`next_frame`](FrameDecoder::next_frame) until it returns `Ok(None)`.
///
/// The frames that come out are the same whatever way the stream was split into `feed` calls.
/// Memory held is the bytes fed and not yet returned as frames; a driver that drains frames after
/// each read therefore buffers at most one frame plus one read.
#[derive(Debug)]
pub struct FrameDecoder {
    buf: Vec<u8>,
    /// Offset in `buf` of the first byte not yet handed out.
    start: usize,
    max_frame: usize,
    failed: Option<FrameError>,
}

impl Default for FrameDecoder {
    fn default() -> FrameDecoder {
        FrameDecoder::new(DEFAULT_MAX_FRAME)
    }
}

impl FrameDecoder {
    /// A decoder that rejects payloads longer than `max_frame` bytes.
    pub fn new(max_frame: usize) -> FrameDecoder {
        FrameDecoder { buf: Vec::new(), start: 0, max_frame, failed: None }
    }

    /// The largest payload this decoder accepts.
    pub fn max_frame(&self) -> usize {
        self.max_frame
    }

    /// Appends received bytes. After an error the decoder is failed and discards input.
    pub fn feed(&mut self, bytes: &[u8]) {
        if self.failed.is_some() || bytes.is_empty() {
            return;
        }
        // Drop consumed bytes once they are at least half the buffer: amortised O(1) per byte.
        if self.start > 0 && self.start >= self.buf.len() - self.start {
            self.buf.drain(..self.start);
            self.start = 0;
        }
        self.buf.extend_from_slice(bytes);
    }

    /// The next whole payload, `Ok(None)` if more bytes are needed, or the error that failed the
    /// stream (returned again on every later call).
    pub fn next_frame(&mut self) -> Result<Option<Vec<u8>>, FrameError> {
        if let Some(err) = &self.failed {
            return Err(err.clone());
        }
        let pending = &self.buf[self.start..];
        let Some(header) = pending.first_chunk::<FRAME_HEADER_LEN>() else {
            return Ok(None);
        };
        let announced = u32::from_be_bytes(*header);
        let len = usize::try_from(announced).unwrap_or(usize::MAX);
        if len > self.max_frame {
            let err = FrameError::TooLarge { len, max: self.max_frame };
            self.failed = Some(err.clone());
            self.buf = Vec::new();
            self.start = 0;
            return Err(err);
        }
        let end = FRAME_HEADER_LEN + len;
        if pending.len() < end {
            return Ok(None);
        }
        let payload = pending[FRAME_HEADER_LEN..end].to_vec();
        self.start += end;
        if self.start == self.buf.len() {
            self.buf.clear();
            self.start = 0;
        }
        Ok(Some(payload))
    }

    /// Bytes received but not yet returned as frames (a partial frame, or frames not yet taken).
    pub fn buffered(&self) -> usize {
        self.buf.len() - self.start
    }

    /// Whether the stream has failed; see [`next_frame`](FrameDecoder::next_frame).
    pub fn is_failed(&self) -> bool {
        self.failed.is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frames(payloads: &[&[u8]]) -> Vec<u8> {
        let mut out = Vec::new();
        for p in payloads {
            encode_frame(p, &mut out).unwrap();
        }
        out
    }

    fn drain(decoder: &mut FrameDecoder) -> Vec<Vec<u8>> {
        let mut got = Vec::new();
        while let Some(frame) = decoder.next_frame().unwrap() {
            got.push(frame);
        }
        got
    }

    #[test]
    fn header_is_big_endian_length() {
        let mut out = Vec::new();
        encode_frame(b"abc", &mut out).unwrap();
        assert_eq!(out, [0, 0, 0, 3, b'a', b'b', b'c']);
        assert_eq!(frame_header(0x0102_0304).unwrap(), [1, 2, 3, 4]);
    }

    #[test]
    fn byte_at_a_time_gives_the_same_frames() {
        let stream = frames(&[b"one", b"", b"three"]);
        let mut decoder = FrameDecoder::new(16);
        let mut got = Vec::new();
        for b in &stream {
            decoder.feed(std::slice::from_ref(b));
            got.extend(drain(&mut decoder));
        }
        assert_eq!(got, [b"one".to_vec(), Vec::new(), b"three".to_vec()]);
        assert_eq!(decoder.buffered(), 0);
    }

    #[test]
    fn partial_frames_stay_buffered() {
        let stream = frames(&[b"hello"]);
        let mut decoder = FrameDecoder::default();
        decoder.feed(&stream[..6]);
        assert_eq!(decoder.next_frame(), Ok(None));
        assert_eq!(decoder.buffered(), 6);
        decoder.feed(&stream[6..]);
        assert_eq!(decoder.next_frame(), Ok(Some(b"hello".to_vec())));
        assert_eq!(decoder.next_frame(), Ok(None));
    }

    #[test]
    fn oversized_frame_fails_without_buffering_the_payload() {
        let mut decoder = FrameDecoder::new(4);
        decoder.feed(&[0xff, 0xff, 0xff, 0xff]);
        let err = FrameError::TooLarge { len: u32::MAX as usize, max: 4 };
        assert_eq!(decoder.next_frame(), Err(err.clone()));
        decoder.feed(&[0; 100]);
        assert_eq!(decoder.buffered(), 0);
        assert!(decoder.is_failed());
        assert_eq!(decoder.next_frame(), Err(err));
    }

    #[test]
    fn frame_at_the_limit_is_accepted() {
        let mut decoder = FrameDecoder::new(3);
        decoder.feed(&frames(&[b"abc", b"abcd"]));
        assert_eq!(decoder.next_frame(), Ok(Some(b"abc".to_vec())));
        assert_eq!(decoder.next_frame(), Err(FrameError::TooLarge { len: 4, max: 3 }));
    }

    #[test]
    fn consumed_bytes_are_reclaimed() {
        let mut decoder = FrameDecoder::new(64);
        for _ in 0..10_000 {
            decoder.feed(&frames(&[b"0123456789"])[..9]);
            decoder.feed(&frames(&[b"0123456789"])[9..]);
            assert_eq!(drain(&mut decoder).len(), 1);
        }
        assert!(decoder.buf.capacity() < 1024, "buffer grew to {}", decoder.buf.capacity());
    }
}
