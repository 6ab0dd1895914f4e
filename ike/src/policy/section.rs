//! The names of a phase-1 peer and of a phase-2 connection: the isakmpd.conf section that
//! configures each. Types of their own, so that one cannot be passed where the other (or any
//! other string) is meant; on the wire of IPC and in logs they are the plain name.

use serde::{Deserialize, Serialize};
use std::borrow::Borrow;
use std::fmt;
use std::ops::Deref;

macro_rules! section_name {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            pub fn new(name: impl Into<String>) -> Self {
                Self(name.into())
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl Deref for $name {
            type Target = str;
            fn deref(&self) -> &str {
                &self.0
            }
        }

        impl Borrow<str> for $name {
            fn borrow(&self) -> &str {
                &self.0
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl From<&str> for $name {
            fn from(s: &str) -> Self {
                Self(s.to_string())
            }
        }

        impl From<String> for $name {
            fn from(s: String) -> Self {
                Self(s)
            }
        }

        impl From<$name> for String {
            fn from(n: $name) -> String {
                n.0
            }
        }

        impl PartialEq<str> for $name {
            fn eq(&self, other: &str) -> bool {
                self.0 == other
            }
        }

        impl PartialEq<&str> for $name {
            fn eq(&self, other: &&str) -> bool {
                self.0 == *other
            }
        }

        impl PartialEq<String> for $name {
            fn eq(&self, other: &String) -> bool {
                &self.0 == other
            }
        }

        impl PartialEq<$name> for str {
            fn eq(&self, other: &$name) -> bool {
                self == other.0
            }
        }

        impl PartialEq<$name> for &str {
            fn eq(&self, other: &$name) -> bool {
                *self == other.0
            }
        }
    };
}

section_name!(
    /// A phase-1 peer: its `[Phase 1]` tag and section (`ISAKMP-peer` of a connection).
    PeerName
);

section_name!(
    /// A phase-2 connection: its `[Phase 2]` entry and section.
    ConnectionName
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_name_compares_with_strings_and_serialises_as_one() {
        let c = ConnectionName::new("west-east");
        assert_eq!(c, "west-east");
        assert!("west-east" == c);
        assert_ne!(c, "east-west");
        assert_eq!(c.to_string(), "west-east");
        let bytes = postcard::to_allocvec(&c).expect("serialise");
        assert_eq!(
            bytes,
            postcard::to_allocvec("west-east").expect("serialise")
        );
        let mut m = std::collections::BTreeMap::new();
        m.insert(c.clone(), 1);
        assert_eq!(m.get("west-east"), Some(&1));
    }
}
