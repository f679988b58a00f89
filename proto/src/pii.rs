//! Personal data (ID numbers, phone numbers, faces, addresses) in a wrapper that never
//! prints what it holds: `{redacted}` in `Debug` and `Display`, so a log line or an
//! error message cannot leak it by accident.

use std::fmt;

/// A value that must not reach a log. Read it with [`Pii::expose`] where it is used.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct Pii<T>(T);

impl<T> Pii<T> {
    pub fn new(value: T) -> Self {
        Self(value)
    }

    /// The value itself, for the code that needs it (encryption, a comparison).
    pub fn expose(&self) -> &T {
        &self.0
    }

    pub fn into_inner(self) -> T {
        self.0
    }
}

impl<T> From<T> for Pii<T> {
    fn from(value: T) -> Self {
        Self(value)
    }
}

impl<T> fmt::Debug for Pii<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("{redacted}")
    }
}

impl<T> fmt::Display for Pii<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("{redacted}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn neither_debug_nor_display_shows_the_value() {
        let id = Pii::new("110101199003071234".to_owned());
        assert_eq!(format!("{id}"), "{redacted}");
        assert_eq!(format!("{id:?}"), "{redacted}");
        #[derive(Debug)]
        #[allow(dead_code)] // only printed
        struct Agent {
            id_number: Pii<String>,
        }
        let shown = format!(
            "{:?}",
            Agent {
                id_number: id.clone()
            }
        );
        assert!(!shown.contains("1101"), "{shown}");
        assert_eq!(id.expose(), "110101199003071234");
    }
}
