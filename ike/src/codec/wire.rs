//! Bounds-checked reading and length-checked writing of big-endian fields.

use super::error::Part;
use super::CodecError;

/// A cursor over a byte slice. Every read checks the bytes are present first, so parsing
/// code never indexes directly and cannot panic.
pub(crate) struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
    part: Part,
}

impl<'a> Reader<'a> {
    pub(crate) fn new(buf: &'a [u8], part: Part) -> Self {
        Self { buf, pos: 0, part }
    }

    pub(crate) fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    pub(crate) fn take(&mut self, n: usize) -> Result<&'a [u8], CodecError> {
        let available = self.remaining();
        if n > available {
            return Err(CodecError::Truncated {
                part: self.part,
                needed: n,
                available,
            });
        }
        let s = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }

    pub(crate) fn array<const N: usize>(&mut self) -> Result<[u8; N], CodecError> {
        let mut a = [0u8; N];
        a.copy_from_slice(self.take(N)?);
        Ok(a)
    }

    pub(crate) fn u8(&mut self) -> Result<u8, CodecError> {
        Ok(self.array::<1>()?[0])
    }

    pub(crate) fn u16(&mut self) -> Result<u16, CodecError> {
        Ok(u16::from_be_bytes(self.array()?))
    }

    pub(crate) fn u32(&mut self) -> Result<u32, CodecError> {
        Ok(u32::from_be_bytes(self.array()?))
    }

    /// Everything not yet read.
    pub(crate) fn rest(&mut self) -> &'a [u8] {
        let s = &self.buf[self.pos..];
        self.pos = self.buf.len();
        s
    }
}

/// `n` as a u8 field, or `TooLong`.
pub(crate) fn fit_u8(part: Part, n: usize) -> Result<u8, CodecError> {
    u8::try_from(n).map_err(|_| CodecError::TooLong {
        part,
        length: n,
        max: u8::MAX.into(),
    })
}

/// `n` as a u16 field, or `TooLong`.
pub(crate) fn fit_u16(part: Part, n: usize) -> Result<u16, CodecError> {
    u16::try_from(n).map_err(|_| CodecError::TooLong {
        part,
        length: n,
        max: u16::MAX.into(),
    })
}

/// Reserves a 4-byte generic header (next payload, reserved, length) at the end of `out`,
/// to be completed by [`finish_generic`] once the body is written.
pub(crate) fn start_generic(out: &mut Vec<u8>, next: u8) -> usize {
    let at = out.len();
    out.extend_from_slice(&[next, 0, 0, 0]);
    at
}

/// Fills in the length of a generic header started at `at`; the length covers the header
/// and everything written since.
pub(crate) fn finish_generic(out: &mut [u8], at: usize, part: Part) -> Result<(), CodecError> {
    let len = fit_u16(part, out.len() - at)?;
    out[at + 2..at + 4].copy_from_slice(&len.to_be_bytes());
    Ok(())
}
