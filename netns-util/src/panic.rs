//! Panics of threads this crate and its users start: their messages.

use std::any::Any;

/// The message of a panic's payload (what `panic!` was given), or
/// `(no message)` for a payload that is not text.
pub fn panic_text(payload: &(dyn Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "(no message)".to_owned())
}
