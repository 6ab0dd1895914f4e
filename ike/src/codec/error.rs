//! Typed codec errors.

/// Why a message could not be parsed. Each maps onto the RFC 2408 notification a responder
/// may send back (`notify_type`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CodecError {
    Placeholder,
}
