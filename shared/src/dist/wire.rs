//! Small helpers for the fixed-layout fields of distribution messages: a bounds-checked reader
//! that never panics, and the matching writers. Integers are big-endian.

use crate::name::NodeName;

/// Why a field could not be read; a short phrase for error messages.
pub(crate) type FieldError = &'static str;

/// A cursor over a received message. Every read checks bounds and returns an error instead of
/// panicking.
pub(crate) struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    pub(crate) fn new(buf: &'a [u8]) -> Reader<'a> {
        Reader { buf, pos: 0 }
    }

    /// The next `n` bytes.
    pub(crate) fn bytes(&mut self, n: usize, what: FieldError) -> Result<&'a [u8], FieldError> {
        let end = self.pos.checked_add(n).filter(|end| *end <= self.buf.len()).ok_or(what)?;
        let out = &self.buf[self.pos..end];
        self.pos = end;
        Ok(out)
    }

    pub(crate) fn array<const N: usize>(&mut self, what: FieldError) -> Result<[u8; N], FieldError> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.bytes(N, what)?);
        Ok(out)
    }

    pub(crate) fn u8(&mut self, what: FieldError) -> Result<u8, FieldError> {
        Ok(self.array::<1>(what)?[0])
    }

    pub(crate) fn u16(&mut self, what: FieldError) -> Result<u16, FieldError> {
        Ok(u16::from_be_bytes(self.array(what)?))
    }

    pub(crate) fn u32(&mut self, what: FieldError) -> Result<u32, FieldError> {
        Ok(u32::from_be_bytes(self.array(what)?))
    }

    pub(crate) fn u64(&mut self, what: FieldError) -> Result<u64, FieldError> {
        Ok(u64::from_be_bytes(self.array(what)?))
    }

    /// A `u16` length followed by that many bytes of UTF-8 text.
    pub(crate) fn str16(&mut self, what: FieldError) -> Result<&'a str, FieldError> {
        let len = self.u16(what)? as usize;
        std::str::from_utf8(self.bytes(len, what)?).map_err(|_| what)
    }

    /// A node name written by [`put_name`]; an empty string gives `None`. The name is not added
    /// to the atom table ([`NodeName::parse_uninterned`]): it comes from a peer that has not
    /// authenticated yet.
    pub(crate) fn opt_name(&mut self, what: FieldError) -> Result<Option<NodeName>, FieldError> {
        let text = self.str16(what)?;
        if text.is_empty() {
            return Ok(None);
        }
        let name = NodeName::parse_uninterned(text).map_err(|_| what)?;
        // Only the canonical spelling is accepted, so both sides hash the same bytes.
        if name.as_str() != text {
            return Err(what);
        }
        Ok(Some(name))
    }

    /// Bytes not read yet.
    pub(crate) fn rest(&mut self) -> &'a [u8] {
        let out = &self.buf[self.pos..];
        self.pos = self.buf.len();
        out
    }

    /// Fails if any bytes are left.
    pub(crate) fn finish(&self, what: FieldError) -> Result<(), FieldError> {
        if self.pos == self.buf.len() {
            Ok(())
        } else {
            Err(what)
        }
    }
}

/// Writes a `u16` length and the text (callers keep texts under 64 KiB: node names are at most
/// 318 bytes).
pub(crate) fn put_str16(out: &mut Vec<u8>, text: &str) {
    let len = u16::try_from(text.len()).unwrap_or(u16::MAX);
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(&text.as_bytes()[..len as usize]);
}

/// Writes a node name (or the empty string for `None`).
pub(crate) fn put_name(out: &mut Vec<u8>, name: Option<&NodeName>) {
    put_str16(out, name.map(NodeName::as_str).unwrap_or(""));
}

/// Appends a 4-byte big-endian length and the payload: the frame layout of every distribution
/// message (PROTOCOL.md section 1).
pub(crate) fn put_frame(out: &mut Vec<u8>, payload: &[u8]) {
    out.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    out.extend_from_slice(payload);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_are_bounds_checked() {
        let mut r = Reader::new(&[0, 1, 2]);
        assert_eq!(r.u16("a"), Ok(1));
        assert_eq!(r.u16("b"), Err("b"));
        assert_eq!(r.u8("c"), Ok(2));
        assert_eq!(r.bytes(usize::MAX, "d"), Err("d"));
        assert!(r.finish("e").is_ok());
    }

    #[test]
    fn names_must_be_canonical() {
        let mut out = Vec::new();
        put_str16(&mut out, "a@HOST");
        assert_eq!(Reader::new(&out).opt_name("n"), Err("n"));
        out.clear();
        put_name(&mut out, Some(&NodeName::parse("a@host").unwrap()));
        put_name(&mut out, None);
        let mut r = Reader::new(&out);
        assert_eq!(r.opt_name("n").unwrap().unwrap().as_str(), "a@host");
        assert_eq!(r.opt_name("n"), Ok(None));
    }
}
