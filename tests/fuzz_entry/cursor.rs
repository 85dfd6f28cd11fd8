//! Reading a fuzz input as a sequence of choices. Reads past the end give
//! zeros, so every input is a complete script.

/// A cursor over the fuzz input.
pub struct Cursor<'a> {
    data: &'a [u8],
}

impl<'a> Cursor<'a> {
    pub fn new(data: &'a [u8]) -> Self {
        Self { data }
    }

    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    pub fn remaining(&self) -> usize {
        self.data.len()
    }

    pub fn u8(&mut self) -> u8 {
        match self.data.split_first() {
            Some((&b, rest)) => {
                self.data = rest;
                b
            }
            None => 0,
        }
    }

    pub fn u16(&mut self) -> u16 {
        u16::from_le_bytes([self.u8(), self.u8()])
    }

    pub fn u32(&mut self) -> u32 {
        u32::from_le_bytes([self.u8(), self.u8(), self.u8(), self.u8()])
    }

    pub fn u64(&mut self) -> u64 {
        u64::from(self.u32()) | u64::from(self.u32()) << 32
    }

    pub fn bool(&mut self) -> bool {
        self.u8() & 1 == 1
    }

    /// Up to `n` bytes.
    pub fn take(&mut self, n: usize) -> &'a [u8] {
        let (head, rest) = self.data.split_at(n.min(self.data.len()));
        self.data = rest;
        head
    }

    /// Exactly `N` bytes, zero-filled past the end.
    pub fn array<const N: usize>(&mut self) -> [u8; N] {
        let mut out = [0u8; N];
        let head = self.take(N);
        out[..head.len()].copy_from_slice(head);
        out
    }

    /// A length-prefixed (u16) slice.
    pub fn chunk(&mut self) -> &'a [u8] {
        let n = usize::from(self.u16());
        self.take(n)
    }

    pub fn rest(&mut self) -> &'a [u8] {
        self.take(self.data.len())
    }
}

/// The chunk size a byte stands for: 0..200 as is, then steps of 256 up
/// to 14 KiB.
fn chunk_size(b: u8) -> usize {
    if b < 200 {
        usize::from(b)
    } else {
        usize::from(b - 199) * 256
    }
}

/// Splits `data` into chunks whose sizes cycle through `sizes` (see
/// [`chunk_size`]; a size of 0 feeds an empty slice, a few times at most),
/// or one chunk when no size is above 0.
pub fn chunks<'a>(data: &'a [u8], sizes: &[u8]) -> Vec<&'a [u8]> {
    if sizes.iter().all(|&s| s == 0) {
        return vec![data];
    }
    let mut out = Vec::new();
    let mut rest = data;
    let mut i = 0;
    // Some size is above 0, so every cycle through `sizes` consumes bytes.
    let mut empties = 0;
    while !rest.is_empty() {
        let n = chunk_size(sizes[i % sizes.len()]);
        i += 1;
        if n == 0 {
            if empties < 16 {
                empties += 1;
                out.push(&rest[..0]);
            }
            continue;
        }
        let (head, tail) = rest.split_at(n.min(rest.len()));
        out.push(head);
        rest = tail;
    }
    out
}
