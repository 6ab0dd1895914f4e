//! Unit tests with hand-built bytes.
