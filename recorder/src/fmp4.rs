//! Finds how much of a fragmented MP4 spool file is complete.
//!
//! The spool file is the journal: the muxer appends `ftyp`, `moov`, then one `moof` +
//! `mdat` pair per fragment. Whatever ends on a complete `mdat` (or `moov`, or the
//! closing `mfra`) is playable; a torn tail after a crash is cut there.

use std::io::{self, Read, Seek, SeekFrom};

/// Reads box headers from `offset` on and returns the end of the last complete unit:
/// a header box (`ftyp`, `moov`, `free`, `sidx`, `mfra`) or a `moof` with its `mdat`.
/// `offset` must be a durable boundary returned earlier (or 0).
pub fn durable_end<R: Read + Seek>(file: &mut R, offset: u64, len: u64) -> io::Result<u64> {
    let mut pos = offset;
    let mut durable = offset;
    let mut pending_moof = false;
    while pos + 8 <= len {
        file.seek(SeekFrom::Start(pos))?;
        let mut header = [0u8; 16];
        file.read_exact(&mut header[..8])?;
        let size32 = u32::from_be_bytes([header[0], header[1], header[2], header[3]]);
        let kind = [header[4], header[5], header[6], header[7]];
        let size = match size32 {
            // 64-bit size follows the type.
            1 => {
                if pos + 16 > len {
                    break;
                }
                file.read_exact(&mut header[8..16])?;
                let mut b = [0u8; 8];
                b.copy_from_slice(&header[8..16]);
                u64::from_be_bytes(b)
            }
            // "Extends to the end of the file": never complete while the file grows.
            0 => break,
            n => u64::from(n),
        };
        if size < 8 || pos + size > len {
            break;
        }
        pos += size;
        match &kind {
            b"moof" => pending_moof = true,
            b"mdat" => {
                if pending_moof {
                    durable = pos;
                }
                pending_moof = false;
            }
            _ if !pending_moof => durable = pos,
            _ => {}
        }
    }
    Ok(durable)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Cursor;

    fn mp4_box(kind: &[u8; 4], payload: usize) -> Vec<u8> {
        let mut b = ((payload + 8) as u32).to_be_bytes().to_vec();
        b.extend_from_slice(kind);
        b.extend(std::iter::repeat_n(0u8, payload));
        b
    }

    fn end_of(bytes: &[u8], from: u64) -> u64 {
        durable_end(&mut Cursor::new(bytes), from, bytes.len() as u64).expect("in memory")
    }

    #[test]
    fn whole_fragments_count_torn_ones_do_not() {
        let mut f = mp4_box(b"ftyp", 16);
        f.extend(mp4_box(b"moov", 100));
        let header = f.len() as u64;
        assert_eq!(end_of(&f, 0), header);

        f.extend(mp4_box(b"moof", 40));
        // A moof alone is not a fragment.
        assert_eq!(end_of(&f, 0), header);
        f.extend(mp4_box(b"mdat", 1000));
        let one = f.len() as u64;
        assert_eq!(end_of(&f, 0), one);
        assert_eq!(end_of(&f, header), one, "resumes from a durable offset");

        // A crash in the middle of the next mdat.
        f.extend(mp4_box(b"moof", 40));
        let mut torn = mp4_box(b"mdat", 1000);
        torn.truncate(300);
        f.extend(torn);
        assert_eq!(end_of(&f, 0), one);
        // A header cut short.
        assert_eq!(end_of(&f[..(one as usize + 5)], 0), one);
    }

    #[test]
    fn garbage_sizes_stop_the_scan() {
        let mut f = mp4_box(b"ftyp", 8);
        let good = f.len() as u64;
        f.extend_from_slice(&[0, 0, 0, 3, b'b', b'a', b'd', b'!']);
        f.extend_from_slice(&[0u8; 64]);
        assert_eq!(end_of(&f, 0), good);
        let mut big = mp4_box(b"ftyp", 8);
        big.extend_from_slice(&[
            0, 0, 0, 1, b'm', b'd', b'a', b't', 0xff, 0, 0, 0, 0, 0, 0, 0,
        ]);
        assert_eq!(end_of(&big, 0), good);
    }
}
