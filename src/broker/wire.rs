//! Length-prefixed binary fields (little-endian), for the places a message leaves the process
//! as bytes: the durable store and the cluster engine. Reading checks every length, so a
//! damaged or hostile value is refused, never trusted.

/// Appends `bytes` with its `u32` length in front.
pub fn put_bytes(out: &mut Vec<u8>, bytes: &[u8]) {
    out.extend_from_slice(&(bytes.len() as u32).to_le_bytes());
    out.extend_from_slice(bytes);
}

/// Appends a header list: its count, then each name and value (see [`put_bytes`]).
pub fn put_headers<'a>(
    out: &mut Vec<u8>,
    headers: impl ExactSizeIterator<Item = &'a (String, String)>,
) {
    out.extend_from_slice(&(headers.len() as u32).to_le_bytes());
    for (name, value) in headers {
        put_bytes(out, name.as_bytes());
        put_bytes(out, value.as_bytes());
    }
}

/// Bytes a header list takes (see [`put_headers`]).
pub fn headers_len(headers: &[(String, String)]) -> usize {
    4 + headers
        .iter()
        .map(|(n, v)| 8 + n.len() + v.len())
        .sum::<usize>()
}

/// Reads fields off the front of a byte slice.
pub struct Reader<'a> {
    /// What is left.
    pub data: &'a [u8],
}

impl<'a> Reader<'a> {
    /// A reader over `data`.
    pub fn new(data: &'a [u8]) -> Reader<'a> {
        Reader { data }
    }

    /// The next `n` bytes.
    pub fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.data.len() < n {
            return None;
        }
        let (head, rest) = self.data.split_at(n);
        self.data = rest;
        Some(head)
    }

    /// A little-endian `u32`.
    pub fn u32(&mut self) -> Option<u32> {
        Some(u32::from_le_bytes(self.take(4)?.try_into().ok()?))
    }

    /// A little-endian `u64`.
    pub fn u64(&mut self) -> Option<u64> {
        Some(u64::from_le_bytes(self.take(8)?.try_into().ok()?))
    }

    /// A length-prefixed UTF-8 string.
    pub fn string(&mut self) -> Option<String> {
        let n = self.u32()? as usize;
        String::from_utf8(self.take(n)?.to_vec()).ok()
    }

    /// A header list written by [`put_headers`].
    pub fn headers(&mut self) -> Option<Vec<(String, String)>> {
        let count = self.u32()? as usize;
        // Each header takes at least 8 bytes: a count beyond what is left is damage.
        if count > self.data.len() / 8 {
            return None;
        }
        let mut headers = Vec::with_capacity(count);
        for _ in 0..count {
            headers.push((self.string()?, self.string()?));
        }
        Some(headers)
    }
}
