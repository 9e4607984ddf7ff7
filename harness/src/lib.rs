//! The conformance framework.
