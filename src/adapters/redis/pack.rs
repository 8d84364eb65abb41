//! `ArgPack`: a limit script's parameters as one MessagePack array (one `ARGV` entry, decoded
//! in the script by Redis's built-in `cmsgpack.unpack`). Sent as separate arguments, each
//! parameter costs Redis about 850 instructions to parse and the script's `tonumber` about
//! 2,000 more (glibc `strtod`); unpacked, the numbers arrive as Lua numbers directly.
//! Measured with callgrind on `redis-server` 7.0: 56 numeric arguments summed by a script cost
//! 173k instructions per call, the same 56 packed 57k.
//!
//! Only what the scripts need is encoded: integers (as exact Lua numbers below 2⁵³, which
//! every time, window, limit and micro-USD amount is) and UTF-8 strings.

/// A MessagePack array being built; [`ArgPack::finish`] gives the bytes of one argument.
#[derive(Debug, Default)]
pub(super) struct ArgPack {
    /// Encoded items, without the array header.
    items: Vec<u8>,
    /// Number of items.
    len: u32,
}

impl ArgPack {
    /// An empty array with room for about `items` parameters.
    pub(super) fn with_capacity(items: usize) -> Self {
        Self {
            items: Vec::with_capacity(items * 9),
            len: 0,
        }
    }

    /// Appends an integer (a positive fixint when it fits in 7 bits, else an int64).
    pub(super) fn int(&mut self, v: i64) -> &mut Self {
        if (0..=0x7f).contains(&v) {
            // Lossless: the range check above keeps it within one byte.
            self.items.push(v as u8);
        } else {
            self.items.push(0xd3);
            self.items.extend_from_slice(&v.to_be_bytes());
        }
        self.len += 1;
        self
    }

    /// Appends a string (fixstr, str8, str16 or str32 by length).
    pub(super) fn str(&mut self, s: &str) -> &mut Self {
        let n = s.len();
        if n < 32 {
            // Lossless: n < 32.
            self.items.push(0xa0 | n as u8);
        } else if let Ok(n) = u8::try_from(n) {
            self.items.push(0xd9);
            self.items.push(n);
        } else if let Ok(n) = u16::try_from(n) {
            self.items.push(0xda);
            self.items.extend_from_slice(&n.to_be_bytes());
        } else {
            // A parameter over 4 GiB cannot reach here (request bodies are far smaller);
            // saturate rather than wrap.
            let n = u32::try_from(n).unwrap_or(u32::MAX);
            self.items.push(0xdb);
            self.items.extend_from_slice(&n.to_be_bytes());
        }
        self.items.extend_from_slice(s.as_bytes());
        self.len += 1;
        self
    }

    /// The encoded array: its header (fixarray, array16 or array32) and the items.
    pub(super) fn finish(self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.items.len() + 5);
        if self.len < 16 {
            // Lossless: len < 16.
            out.push(0x90 | self.len as u8);
        } else if let Ok(n) = u16::try_from(self.len) {
            out.push(0xdc);
            out.extend_from_slice(&n.to_be_bytes());
        } else {
            out.push(0xdd);
            out.extend_from_slice(&self.len.to_be_bytes());
        }
        out.extend_from_slice(&self.items);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_arrays_of_small_ints_and_short_strings_are_compact() {
        let mut p = ArgPack::default();
        p.int(0).int(127).str("r");
        assert_eq!(p.finish(), vec![0x93, 0x00, 0x7f, 0xa1, b'r']);
    }

    #[test]
    fn large_and_negative_ints_are_int64_big_endian() {
        let mut p = ArgPack::default();
        p.int(128).int(-1).int(i64::MAX);
        let out = p.finish();
        assert_eq!(out[0], 0x93);
        assert_eq!(&out[1..10], &[0xd3, 0, 0, 0, 0, 0, 0, 0, 0x80]);
        assert_eq!(
            &out[10..19],
            &[0xd3, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]
        );
        assert_eq!(
            &out[19..28],
            &[0xd3, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]
        );
    }

    #[test]
    fn string_headers_follow_the_length() {
        for (n, header) in [
            (31usize, vec![0xa0 | 31]),
            (32, vec![0xd9, 32]),
            (255, vec![0xd9, 255]),
            (256, vec![0xda, 1, 0]),
            (70_000, vec![0xdb, 0, 1, 0x11, 0x70]),
        ] {
            let s = "x".repeat(n);
            let mut p = ArgPack::default();
            p.str(&s);
            let out = p.finish();
            assert_eq!(&out[1..1 + header.len()], header.as_slice(), "length {n}");
            assert_eq!(out.len(), 1 + header.len() + n);
        }
    }

    #[test]
    fn array_headers_follow_the_count() {
        let mut p = ArgPack::default();
        for _ in 0..15 {
            p.int(1);
        }
        assert_eq!(p.finish()[0], 0x9f);
        let mut p = ArgPack::default();
        for _ in 0..16 {
            p.int(1);
        }
        assert_eq!(&p.finish()[..3], &[0xdc, 0, 16]);
        let mut p = ArgPack::default();
        for _ in 0..70_000 {
            p.int(1);
        }
        assert_eq!(&p.finish()[..5], &[0xdd, 0, 1, 0x11, 0x70]);
    }
}
