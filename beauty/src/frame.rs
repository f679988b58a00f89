//! A borrowed I420 (YUV 4:2:0 planar) picture: what decoders give and encoders take.

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

impl I420<'_> {
    /// Whether the planes are big enough for the size and strides claimed.
    pub fn is_consistent(&self) -> bool {
        let (w, h) = (self.width, self.height);
        let (cw, ch) = (w.div_ceil(2), h.div_ceil(2));
        let fits = |len: usize, stride: usize, width: usize, rows: usize| {
            stride >= width && rows > 0 && len >= stride * (rows - 1) + width
        };
        w >= 2
            && h >= 2
            && w % 2 == 0
            && h % 2 == 0
            && fits(self.y.len(), self.y_stride, w, h)
            && fits(self.u.len(), self.u_stride, cw, ch)
            && fits(self.v.len(), self.v_stride, cw, ch)
    }
}
