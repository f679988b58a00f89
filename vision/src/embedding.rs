//! Face embeddings (templates): unit vectors compared by cosine similarity.

/// An SFace embedding, normalised to unit length.
#[derive(Debug, Clone, PartialEq)]
pub struct Embedding(Vec<f32>);

/// SFace's embedding length.
pub const EMBEDDING_LEN: usize = 128;

impl Embedding {
    /// Normalises `values`; `None` for a zero, non-finite or wrongly sized vector.
    pub fn new(values: Vec<f32>) -> Option<Self> {
        if values.len() != EMBEDDING_LEN || values.iter().any(|v| !v.is_finite()) {
            return None;
        }
        let norm = values.iter().map(|v| v * v).sum::<f32>().sqrt();
        (norm > 1e-6).then(|| Self(values.into_iter().map(|v| v / norm).collect()))
    }

    /// Cosine similarity in [-1, 1]; OpenCV documents ≥ 0.363 as "same person" for SFace.
    pub fn cosine(&self, other: &Embedding) -> f32 {
        self.0.iter().zip(&other.0).map(|(a, b)| a * b).sum()
    }

    /// The best similarity to any of `references` (−1 when there are none).
    pub fn best_match(&self, references: &[Embedding]) -> f32 {
        references
            .iter()
            .map(|r| self.cosine(r))
            .fold(-1.0, f32::max)
    }

    /// Little-endian f32s: the form kept (encrypted) at rest.
    pub fn to_bytes(&self) -> Vec<u8> {
        self.0.iter().flat_map(|v| v.to_le_bytes()).collect()
    }

    pub fn from_bytes(bytes: &[u8]) -> Option<Self> {
        if bytes.len() != EMBEDDING_LEN * 4 {
            return None;
        }
        let values: Vec<f32> = bytes
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect();
        // Stored templates are unit vectors already: kept bit for bit, not renormalised.
        let norm = values.iter().map(|v| v * v).sum::<f32>().sqrt();
        (values.iter().all(|v| v.is_finite()) && (norm - 1.0).abs() < 1e-3).then_some(Self(values))
    }

    pub fn values(&self) -> &[f32] {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn basis(i: usize) -> Embedding {
        let mut v = vec![0.0; EMBEDDING_LEN];
        v[i] = 3.0;
        Embedding::new(v).expect("valid")
    }

    #[test]
    fn embeddings_are_unit_vectors_and_round_trip_as_bytes() {
        let e = basis(3);
        assert!((e.cosine(&e) - 1.0).abs() < 1e-6);
        assert_eq!(e.cosine(&basis(4)), 0.0);
        assert_eq!(Embedding::from_bytes(&e.to_bytes()), Some(e.clone()));
        assert_eq!(e.best_match(&[basis(4), basis(3)]), 1.0);
        assert_eq!(e.best_match(&[]), -1.0);
    }

    #[test]
    fn invalid_vectors_are_refused() {
        assert_eq!(Embedding::new(vec![0.0; EMBEDDING_LEN]), None);
        assert_eq!(Embedding::new(vec![1.0; 3]), None);
        assert_eq!(Embedding::new(vec![f32::NAN; EMBEDDING_LEN]), None);
        assert_eq!(Embedding::from_bytes(&[1, 2, 3]), None);
    }
}
