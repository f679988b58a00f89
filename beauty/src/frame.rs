//! Borrowed I420 (YUV 4:2:0 planar) pictures: what decoders give and encoders take.

/// Planes of one I420 frame, each with its stride (bytes per row, ≥ its width).
#[derive(Debug)]
pub struct I420<'a> {
    pub width: usize,
    pub height: usize,
    pub y: &'a mut [u8],
    pub y_stride: usize,
    pub u: &'a mut [u8],
    pub u_stride: usize,
    pub v: &'a mut [u8],
    pub v_stride: usize,
}

/// A read-only I420 picture, e.g. a decoder's, which must not be written (the decoder
/// predicts the next frames from it).
#[derive(Debug, Clone, Copy)]
pub struct I420Ref<'a> {
    pub width: usize,
    pub height: usize,
    pub y: &'a [u8],
    pub y_stride: usize,
    pub u: &'a [u8],
    pub u_stride: usize,
    pub v: &'a [u8],
    pub v_stride: usize,
}

impl I420<'_> {
    /// Whether the planes are big enough for the size and strides claimed.
    pub fn is_consistent(&self) -> bool {
        self.as_ref().is_consistent()
    }

    pub fn as_ref(&self) -> I420Ref<'_> {
        I420Ref {
            width: self.width,
            height: self.height,
            y: self.y,
            y_stride: self.y_stride,
            u: self.u,
            u_stride: self.u_stride,
            v: self.v,
            v_stride: self.v_stride,
        }
    }
}

impl I420Ref<'_> {
    /// Whether the planes are big enough for the size and strides claimed.
    pub fn is_consistent(&self) -> bool {
        let (w, h) = (self.width, self.height);
        let (cw, ch) = (w.div_ceil(2), h.div_ceil(2));
        w >= 2
            && h >= 2
            && w % 2 == 0
            && h % 2 == 0
            && plane_fits(self.y.len(), self.y_stride, w, h)
            && plane_fits(self.u.len(), self.u_stride, cw, ch)
            && plane_fits(self.v.len(), self.v_stride, cw, ch)
    }
}

/// Whether a plane of `len` bytes holds `rows` rows of `width` bytes, `stride` apart.
pub(crate) fn plane_fits(len: usize, stride: usize, width: usize, rows: usize) -> bool {
    stride >= width && rows > 0 && len >= stride * (rows - 1) + width
}
