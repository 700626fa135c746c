//! Fused losses as Tensor ops (in progress).
