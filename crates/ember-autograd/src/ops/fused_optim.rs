//! Fused in-place optimizer updates as Tensor methods (in progress).
