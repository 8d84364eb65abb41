//! Compressed client request bodies: `Content-Encoding` gzip (`x-gzip`), deflate (zlib, or raw
//! deflate as some clients send it), br and zstd, alone or stacked (`gzip, br`: decoded last
//! first). Decoding streams into an output that grows in steps, each step first covered by the
//! caller's memory budget and never past `cap` (`MAX_DECOMPRESSED_REQUEST_BYTES`), so a
//! decompression bomb (a kilobyte that would expand to gigabytes) is refused after at most
//! `cap` bytes, and many concurrent bombs cannot together exceed the shared body budget.

use std::io::Read;

/// Output grows by this much at a time.
const STEP: usize = 64 * 1024;

/// One content coding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Coding {
    /// gzip / x-gzip.
    Gzip,
    /// deflate: zlib-wrapped per RFC 9110 (raw deflate is accepted too).
    Deflate,
    /// Brotli.
    Brotli,
    /// Zstandard.
    Zstd,
}

/// Why a body could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DecodeError {
    /// An encoding cch does not read (415); names it.
    Unsupported(String),
    /// The decoded body would be larger than the cap (413).
    TooLarge,
    /// The memory budget for bodies in flight is used up (503).
    Busy,
    /// Not a valid stream of its encoding (400).
    Corrupt(String),
}

/// The codings of a `Content-Encoding` value, in the order they were applied; `identity` is
/// skipped. An unknown coding is an error naming it.
pub fn parse_codings(header: &str) -> Result<Vec<Coding>, DecodeError> {
    let mut out = Vec::new();
    for part in header.split(',') {
        let name = part.trim().to_ascii_lowercase();
        match name.as_str() {
            "" | "identity" => {}
            "gzip" | "x-gzip" => out.push(Coding::Gzip),
            "deflate" => out.push(Coding::Deflate),
            "br" => out.push(Coding::Brotli),
            "zstd" => out.push(Coding::Zstd),
            _ => return Err(DecodeError::Unsupported(name.chars().take(40).collect())),
        }
    }
    Ok(out)
}

/// Reads `reader` to its end into a buffer that never exceeds `cap`, asking `cover(total)`
/// before each growth.
fn read_bounded(
    mut reader: impl Read,
    cap: usize,
    cover: &mut dyn FnMut(usize) -> bool,
) -> Result<Vec<u8>, DecodeError> {
    let mut out: Vec<u8> = Vec::new();
    loop {
        if out.len() == out.capacity() || out.capacity() - out.len() < 4096 {
            let want = (out.len() + STEP).min(cap.saturating_add(1));
            if want <= out.len() {
                return Err(DecodeError::TooLarge);
            }
            if !cover(want) {
                return Err(DecodeError::Busy);
            }
            out.reserve_exact(want - out.len());
        }
        let start = out.len();
        let room = out.capacity() - start;
        out.resize(start + room, 0);
        let n = match reader.read(&mut out[start..]) {
            Ok(n) => n,
            Err(e) => {
                out.truncate(start);
                return Err(DecodeError::Corrupt(e.to_string()));
            }
        };
        out.truncate(start + n);
        if n == 0 {
            return Ok(out);
        }
        if out.len() > cap {
            return Err(DecodeError::TooLarge);
        }
    }
}

fn decode_one(
    coding: Coding,
    input: &[u8],
    cap: usize,
    cover: &mut dyn FnMut(usize) -> bool,
) -> Result<Vec<u8>, DecodeError> {
    match coding {
        Coding::Gzip => read_bounded(flate2::read::MultiGzDecoder::new(input), cap, cover),
        Coding::Deflate => {
            // zlib per the RFC; a stream without the zlib header is raw deflate.
            let zlib = input.len() >= 2
                && input[0] & 0x0f == 8
                && (u16::from(input[0]) << 8 | u16::from(input[1])) % 31 == 0;
            if zlib {
                read_bounded(flate2::read::ZlibDecoder::new(input), cap, cover)
            } else {
                read_bounded(flate2::read::DeflateDecoder::new(input), cap, cover)
            }
        }
        Coding::Brotli => read_bounded(
            brotli_decompressor::Decompressor::new(input, 4096),
            cap,
            cover,
        ),
        Coding::Zstd => {
            let decoder = ruzstd::decoding::StreamingDecoder::new(input)
                .map_err(|e| DecodeError::Corrupt(e.to_string()))?;
            read_bounded(decoder, cap, cover)
        }
    }
}

/// Decodes `body` encoded with `codings` (in the order they were applied) into at most `cap`
/// bytes. `cover(n)` must make room for `n` output bytes in the caller's budget (it is asked
/// before the output grows) and return `false` when there is none.
pub fn decode(
    body: &[u8],
    codings: &[Coding],
    cap: usize,
    cover: &mut dyn FnMut(usize) -> bool,
) -> Result<Vec<u8>, DecodeError> {
    let mut current: Option<Vec<u8>> = None;
    for coding in codings.iter().rev() {
        let input = current.as_deref().unwrap_or(body);
        let next = decode_one(*coding, input, cap, cover)?;
        current = Some(next);
    }
    Ok(current.unwrap_or_else(|| body.to_vec()))
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;

    fn gzip(data: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    fn allow_all(_: usize) -> bool {
        true
    }

    #[test]
    fn codings_parse_in_order_and_unknown_ones_are_named() {
        assert_eq!(
            parse_codings("gzip, br").unwrap(),
            vec![Coding::Gzip, Coding::Brotli]
        );
        assert_eq!(parse_codings("identity").unwrap(), vec![]);
        assert_eq!(parse_codings("X-GZIP").unwrap(), vec![Coding::Gzip]);
        assert_eq!(
            parse_codings("compress"),
            Err(DecodeError::Unsupported("compress".into()))
        );
    }

    #[test]
    fn gzip_zlib_and_raw_deflate_decode() {
        let data = b"{\"model\":\"m\"}".repeat(1000);
        assert_eq!(
            decode(&gzip(&data), &[Coding::Gzip], 1 << 20, &mut allow_all).unwrap(),
            data
        );
        let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::fast());
        z.write_all(&data).unwrap();
        let z = z.finish().unwrap();
        assert_eq!(
            decode(&z, &[Coding::Deflate], 1 << 20, &mut allow_all).unwrap(),
            data
        );
        let mut r = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::fast());
        r.write_all(&data).unwrap();
        let r = r.finish().unwrap();
        assert_eq!(
            decode(&r, &[Coding::Deflate], 1 << 20, &mut allow_all).unwrap(),
            data
        );
    }

    #[test]
    fn a_bomb_stops_at_the_cap_without_allocating_its_size() {
        // 1 GiB of zeros compresses to about 1 MiB; 64 MiB of zeros to about 64 KiB.
        let zeros = vec![0u8; 64 << 20];
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        e.write_all(&zeros).unwrap();
        let bomb = e.finish().unwrap();
        assert!(bomb.len() < 200 << 10);
        let mut largest = 0;
        let r = decode(&bomb, &[Coding::Gzip], 1 << 20, &mut |n| {
            largest = largest.max(n);
            true
        });
        assert_eq!(r, Err(DecodeError::TooLarge));
        assert!(largest <= (1 << 20) + 1, "asked for {largest} bytes");
    }

    #[test]
    fn the_budget_is_asked_before_growing() {
        let data = vec![7u8; 300 << 10];
        let r = decode(&gzip(&data), &[Coding::Gzip], 1 << 20, &mut |n| {
            n <= 128 << 10
        });
        assert_eq!(r, Err(DecodeError::Busy));
    }

    /// A Brotli stream of uncompressed meta-blocks (RFC 7932 §9.2), as the tests' encoder.
    pub(crate) fn brotli_stored(data: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        let mut first = true;
        for chunk in data.chunks(1 << 16) {
            // WBITS = 16 (one 0 bit) before the first block, then ISLAST = 0, MNIBBLES = 4,
            // MLEN - 1 in 16 bits, ISUNCOMPRESSED = 1; padded to a byte.
            let shift = u32::from(first);
            let bits: u32 = ((chunk.len() as u32 - 1) << (3 + shift)) | (1 << (19 + shift));
            out.extend_from_slice(&bits.to_le_bytes()[..3]);
            out.extend_from_slice(chunk);
            first = false;
        }
        // ISLAST = 1, ISLASTEMPTY = 1 (after WBITS when there was no block).
        out.push(if first { 0b110 } else { 0b11 });
        out
    }

    #[test]
    fn brotli_and_zstd_decode() {
        let data = b"{\"messages\":[]} ".repeat(5000);
        let br = brotli_stored(&data);
        assert_eq!(
            decode(&br, &[Coding::Brotli], 1 << 20, &mut allow_all).unwrap(),
            data
        );
        let zs = ruzstd::encoding::compress_to_vec(
            &data[..],
            ruzstd::encoding::CompressionLevel::Fastest,
        );
        assert!(zs.len() < data.len() / 4);
        assert_eq!(
            decode(&zs, &[Coding::Zstd], 1 << 20, &mut allow_all).unwrap(),
            data
        );
        // Stacked: gzip applied first, then zstd.
        let both = ruzstd::encoding::compress_to_vec(
            &gzip(&data)[..],
            ruzstd::encoding::CompressionLevel::Fastest,
        );
        assert_eq!(
            decode(
                &both,
                &[Coding::Gzip, Coding::Zstd],
                1 << 20,
                &mut allow_all
            )
            .unwrap(),
            data
        );
    }

    #[test]
    fn corrupt_streams_are_errors() {
        for c in [Coding::Gzip, Coding::Deflate, Coding::Brotli, Coding::Zstd] {
            let r = decode(b"definitely not compressed", &[c], 1 << 20, &mut allow_all);
            assert!(matches!(r, Err(DecodeError::Corrupt(_))), "{c:?}: {r:?}");
        }
    }
}
