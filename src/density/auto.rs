//! Deterministic auto selection (work in progress).
