//! A bounds-checked little-endian reader shared by the tree and pack decoders.
//!
//! Every read states what it is reading, so a short input fails with an error
//! that names the field ("truncated while reading xattr value: need 9 bytes,
//! 3 remain") instead of panicking or allocating from an unchecked length.

/// The input ended before a field was complete.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Truncated {
    /// The field being read.
    pub what: &'static str,
    /// Bytes the field needs.
    pub needed: usize,
    /// Bytes that were left.
    pub remaining: usize,
}

/// Reads fields front to back from a byte slice.
#[derive(Debug)]
pub(crate) struct Cursor<'a> {
    /// The unread rest of the input.
    rest: &'a [u8],
}

impl<'a> Cursor<'a> {
    pub(crate) fn new(bytes: &'a [u8]) -> Self {
        Self { rest: bytes }
    }

    /// Bytes not yet read.
    pub(crate) fn remaining(&self) -> usize {
        self.rest.len()
    }

    /// Takes the next `n` bytes, or fails without consuming anything.
    pub(crate) fn take(&mut self, n: usize, what: &'static str) -> Result<&'a [u8], Truncated> {
        if n > self.rest.len() {
            return Err(Truncated {
                what,
                needed: n,
                remaining: self.rest.len(),
            });
        }
        let (head, tail) = self.rest.split_at(n);
        self.rest = tail;
        Ok(head)
    }

    pub(crate) fn array<const N: usize>(
        &mut self,
        what: &'static str,
    ) -> Result<[u8; N], Truncated> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N, what)?);
        Ok(out)
    }

    pub(crate) fn u8(&mut self, what: &'static str) -> Result<u8, Truncated> {
        Ok(self.array::<1>(what)?[0])
    }

    pub(crate) fn u16(&mut self, what: &'static str) -> Result<u16, Truncated> {
        self.array(what).map(u16::from_le_bytes)
    }

    pub(crate) fn u32(&mut self, what: &'static str) -> Result<u32, Truncated> {
        self.array(what).map(u32::from_le_bytes)
    }

    pub(crate) fn u64(&mut self, what: &'static str) -> Result<u64, Truncated> {
        self.array(what).map(u64::from_le_bytes)
    }

    pub(crate) fn i64(&mut self, what: &'static str) -> Result<i64, Truncated> {
        self.array(what).map(i64::from_le_bytes)
    }

    /// Reads a u32 length and takes that many bytes.
    pub(crate) fn bytes_u32(&mut self, what: &'static str) -> Result<&'a [u8], Truncated> {
        let len = self.u32(what)?;
        self.take(len as usize, what)
    }

    /// Reads a u16 length and takes that many bytes.
    pub(crate) fn bytes_u16(&mut self, what: &'static str) -> Result<&'a [u8], Truncated> {
        let len = self.u16(what)?;
        self.take(usize::from(len), what)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_are_read_little_endian_in_order() {
        let mut cursor = Cursor::new(&[1, 2, 0, 3, 0, 0, 0, 9]);
        assert_eq!(cursor.u8("a").unwrap(), 1);
        assert_eq!(cursor.u16("b").unwrap(), 2);
        assert_eq!(cursor.u32("c").unwrap(), 3);
        assert_eq!(cursor.remaining(), 1);
    }

    #[test]
    fn a_length_beyond_the_input_fails_and_names_the_field() {
        let mut cursor = Cursor::new(&[0xff, 0xff, 0xff, 0xff, 1, 2]);
        let err = cursor.bytes_u32("symlink target").unwrap_err();
        assert_eq!(
            err,
            Truncated {
                what: "symlink target",
                needed: 0xffff_ffff,
                remaining: 2
            }
        );
    }
}
