use super::{Error, Result};

/// A bounds-checked cursor over TL bytes.
///
/// Every read checks the bytes present first; slices it returns borrow the
/// input (no copy).
#[derive(Clone, Debug)]
pub struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    /// A reader at the start of `buf`.
    pub fn new(buf: &'a [u8]) -> Self {
        Self { buf, pos: 0 }
    }

    /// Offset of the next byte to read.
    pub fn pos(&self) -> usize {
        self.pos
    }

    /// Bytes not yet read.
    pub fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    /// The unread bytes, without consuming them.
    pub fn rest(&self) -> &'a [u8] {
        &self.buf[self.pos..]
    }

    /// Fails with [`Error::TrailingBytes`] unless every byte was read.
    pub fn finish(&self) -> Result<()> {
        match self.remaining() {
            0 => Ok(()),
            extra => Err(Error::TrailingBytes { extra }),
        }
    }

    /// Takes the next `n` bytes.
    pub fn read_raw(&mut self, n: usize) -> Result<&'a [u8]> {
        if n > self.remaining() {
            return Err(Error::UnexpectedEof {
                needed: n - self.remaining(),
                at: self.pos,
            });
        }
        let out = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(out)
    }

    /// Takes every unread byte.
    pub fn read_rest(&mut self) -> &'a [u8] {
        let out = &self.buf[self.pos..];
        self.pos = self.buf.len();
        out
    }

    /// Takes the next `N` bytes as an array.
    pub fn read_array<const N: usize>(&mut self) -> Result<[u8; N]> {
        let bytes = self.read_raw(N)?;
        let mut out = [0u8; N];
        out.copy_from_slice(bytes);
        Ok(out)
    }

    /// Reads an `int` as unsigned (constructor ids).
    pub fn read_u32(&mut self) -> Result<u32> {
        self.read_array().map(u32::from_le_bytes)
    }

    /// Reads the next constructor id without consuming it.
    pub fn peek_u32(&self) -> Result<u32> {
        self.clone().read_u32()
    }

    /// Reads an `int`.
    pub fn read_i32(&mut self) -> Result<i32> {
        self.read_array().map(i32::from_le_bytes)
    }

    /// Reads a `long`.
    pub fn read_i64(&mut self) -> Result<i64> {
        self.read_array().map(i64::from_le_bytes)
    }

    /// Reads a `double`.
    pub fn read_f64(&mut self) -> Result<f64> {
        self.read_array().map(f64::from_le_bytes)
    }

    /// Reads a constructor id and fails unless it is `id`.
    pub fn expect_id(&mut self, id: u32) -> Result<()> {
        let at = self.pos;
        let got = self.read_u32()?;
        if got == id {
            Ok(())
        } else {
            Err(Error::UnexpectedConstructor { got, at })
        }
    }

    /// Reads `bytes` / `string`, returning the data without its prefix and
    /// padding.
    pub fn read_bytes(&mut self) -> Result<&'a [u8]> {
        let at = self.pos;
        let first = self.read_array::<1>()?[0];
        let (len, header) = match first {
            0..=253 => (first as usize, 1),
            254 => {
                let l = self.read_array::<3>()?;
                (u32::from_le_bytes([l[0], l[1], l[2], 0]) as usize, 4)
            }
            255 => return Err(Error::BadBytesPrefix { at }),
        };
        let data = self.read_raw(len)?;
        self.read_raw(pad4(header + len))?;
        Ok(data)
    }

    /// Reads a vector's element count after its constructor id (boxed) or
    /// alone (bare), checking that `count` elements of at least
    /// `min_elem_size` bytes fit in the input.
    pub fn read_vector_len(&mut self, boxed: bool, min_elem_size: usize) -> Result<usize> {
        if boxed {
            self.expect_id(super::VECTOR_ID)?;
        }
        let count = self.read_i32()?;
        let remaining = self.remaining();
        match usize::try_from(count) {
            Ok(n) if n.saturating_mul(min_elem_size.max(1)) <= remaining => Ok(n),
            _ => Err(Error::BadVectorCount {
                count: count.into(),
                remaining,
            }),
        }
    }
}

/// Zero bytes needed after `n` bytes to reach a multiple of 4.
pub(super) fn pad4(n: usize) -> usize {
    (4 - n % 4) % 4
}
