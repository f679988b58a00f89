//! Presets and parameters. Every parameter is on 0.0–1.0; out of range is an error,
//! never clamped silently.

use std::fmt;
use std::str::FromStr;

/// Named starting points of the settings dialog; `Natural` is the default.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Preset {
    /// No processing: the agent's video passes unchanged.
    None,
    /// Light smoothing and a touch of brightness (自然).
    #[default]
    Natural,
    /// Stronger skin smoothing (磨皮).
    Smooth,
    /// Lighter skin (美白).
    Fair,
    /// Brighter, rosier picture (亮丽).
    Bright,
}

impl Preset {
    pub const ALL: [Preset; 5] = [
        Preset::None,
        Preset::Natural,
        Preset::Smooth,
        Preset::Fair,
        Preset::Bright,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Preset::None => "none",
            Preset::Natural => "natural",
            Preset::Smooth => "smooth",
            Preset::Fair => "fair",
            Preset::Bright => "bright",
        }
    }

    /// The parameters this preset stands for.
    pub fn params(self) -> BeautyParams {
        let p = |smoothing, whitening, ruddiness, sharpness| BeautyParams {
            smoothing,
            whitening,
            ruddiness,
            sharpness,
        };
        match self {
            Preset::None => p(0.0, 0.0, 0.0, 0.0),
            Preset::Natural => p(0.35, 0.15, 0.10, 0.20),
            Preset::Smooth => p(0.70, 0.20, 0.10, 0.10),
            Preset::Fair => p(0.40, 0.55, 0.05, 0.20),
            Preset::Bright => p(0.35, 0.35, 0.35, 0.30),
        }
    }
}

impl fmt::Display for Preset {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Preset {
    type Err = ParamError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Preset::ALL
            .into_iter()
            .find(|p| p.as_str() == s)
            .ok_or_else(|| ParamError::UnknownPreset(s.to_owned()))
    }
}

/// The filter's knobs, each on 0.0–1.0.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BeautyParams {
    pub smoothing: f64,
    pub whitening: f64,
    pub ruddiness: f64,
    pub sharpness: f64,
}

impl Default for BeautyParams {
    fn default() -> Self {
        Preset::default().params()
    }
}

/// Settings that cannot be used.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ParamError {
    #[error("unknown preset {0:?}")]
    UnknownPreset(String),
    #[error("{name} must be between 0.0 and 1.0, got {value}")]
    OutOfRange { name: &'static str, value: f64 },
}

impl BeautyParams {
    /// Each parameter by name, for validation and display.
    pub fn fields(&self) -> [(&'static str, f64); 4] {
        [
            ("smoothing", self.smoothing),
            ("whitening", self.whitening),
            ("ruddiness", self.ruddiness),
            ("sharpness", self.sharpness),
        ]
    }

    pub fn validate(&self) -> Result<(), ParamError> {
        for (name, value) in self.fields() {
            // NaN fails this test too.
            if !(0.0..=1.0).contains(&value) {
                return Err(ParamError::OutOfRange { name, value });
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn natural_is_the_default_and_every_preset_is_valid() {
        assert_eq!(Preset::default(), Preset::Natural);
        assert_eq!(BeautyParams::default(), Preset::Natural.params());
        for preset in Preset::ALL {
            assert_eq!(preset.params().validate(), Ok(()), "{preset}");
            assert_eq!(preset.as_str().parse::<Preset>(), Ok(preset));
        }
        assert_eq!(
            Preset::None
                .params()
                .fields()
                .iter()
                .map(|f| f.1)
                .sum::<f64>(),
            0.0
        );
    }

    #[test]
    fn out_of_range_and_unknown_are_errors_not_clamped() {
        let mut p = BeautyParams {
            whitening: 1.2,
            ..BeautyParams::default()
        };
        assert_eq!(
            p.validate(),
            Err(ParamError::OutOfRange {
                name: "whitening",
                value: 1.2
            })
        );
        p.whitening = f64::NAN;
        assert!(p.validate().is_err());
        assert!(matches!(
            "glow".parse::<Preset>(),
            Err(ParamError::UnknownPreset(_))
        ));
    }
}
