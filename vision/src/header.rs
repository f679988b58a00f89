//! Reads an image's format and dimensions from its first bytes, before anything is
//! decoded: a tiny file that claims 60000×60000 pixels is refused without allocating.

/// The formats the engine accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImageFormat {
    Jpeg,
    Png,
}

/// What the header says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ImageHeader {
    pub format: ImageFormat,
    pub width: u32,
    pub height: u32,
}

/// Format and size, or `None` when the bytes are not a JPEG or PNG we can read.
pub fn read_header(bytes: &[u8]) -> Option<ImageHeader> {
    if bytes.starts_with(&[0x89, b'P', b'N', b'G', 0x0d, 0x0a, 0x1a, 0x0a]) {
        return png_header(bytes);
    }
    if bytes.starts_with(&[0xff, 0xd8]) {
        return jpeg_header(bytes);
    }
    None
}

fn be_u32(b: &[u8], at: usize) -> Option<u32> {
    let s = b.get(at..at + 4)?;
    Some(u32::from_be_bytes([s[0], s[1], s[2], s[3]]))
}

fn be_u16(b: &[u8], at: usize) -> Option<u16> {
    let s = b.get(at..at + 2)?;
    Some(u16::from_be_bytes([s[0], s[1]]))
}

fn png_header(b: &[u8]) -> Option<ImageHeader> {
    // Signature (8), chunk length (4), "IHDR" (4), width (4), height (4).
    if b.get(12..16)? != b"IHDR" {
        return None;
    }
    let (width, height) = (be_u32(b, 16)?, be_u32(b, 20)?);
    (width > 0 && height > 0).then_some(ImageHeader {
        format: ImageFormat::Png,
        width,
        height,
    })
}

/// Walks the JPEG markers to the first start-of-frame.
fn jpeg_header(b: &[u8]) -> Option<ImageHeader> {
    let mut at = 2;
    loop {
        // Markers may be padded with 0xff bytes.
        while *b.get(at)? == 0xff && *b.get(at + 1)? == 0xff {
            at += 1;
        }
        if *b.get(at)? != 0xff {
            return None;
        }
        let marker = *b.get(at + 1)?;
        match marker {
            // Standalone markers carry no length.
            0xd0..=0xd7 | 0x01 => at += 2,
            // SOF0..SOF15 except DHT (c4), JPG (c8) and DAC (cc).
            0xc0..=0xcf if !matches!(marker, 0xc4 | 0xc8 | 0xcc) => {
                let height = u32::from(be_u16(b, at + 5)?);
                let width = u32::from(be_u16(b, at + 7)?);
                return (width > 0 && height > 0).then_some(ImageHeader {
                    format: ImageFormat::Jpeg,
                    width,
                    height,
                });
            }
            0xd9 | 0xda => return None,
            _ => {
                let len = usize::from(be_u16(b, at + 2)?);
                if len < 2 {
                    return None;
                }
                at += 2 + len;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn png_dimensions_are_read_from_ihdr() {
        let mut b = vec![0x89, b'P', b'N', b'G', 0x0d, 0x0a, 0x1a, 0x0a, 0, 0, 0, 13];
        b.extend_from_slice(b"IHDR");
        b.extend_from_slice(&640u32.to_be_bytes());
        b.extend_from_slice(&480u32.to_be_bytes());
        assert_eq!(
            read_header(&b),
            Some(ImageHeader {
                format: ImageFormat::Png,
                width: 640,
                height: 480
            })
        );
    }

    #[test]
    fn jpeg_dimensions_are_found_past_other_segments() {
        // SOI, APP0 with a 4-byte body, SOF0 (len 17, precision 8, h=300, w=400).
        let mut b = vec![0xff, 0xd8, 0xff, 0xe0, 0x00, 0x06, 1, 2, 3, 4];
        b.extend_from_slice(&[0xff, 0xc0, 0x00, 0x11, 0x08, 0x01, 0x2c, 0x01, 0x90]);
        assert_eq!(
            read_header(&b).map(|h| (h.format, h.width, h.height)),
            Some((ImageFormat::Jpeg, 400, 300))
        );
    }

    #[test]
    fn garbage_and_truncated_headers_are_not_images() {
        assert_eq!(read_header(b"hello world"), None);
        assert_eq!(read_header(&[0xff, 0xd8, 0xff]), None);
        assert_eq!(read_header(&[0xff, 0xd8, 0xff, 0xe0, 0x00, 0x01]), None);
        assert_eq!(read_header(&[]), None);
    }
}
