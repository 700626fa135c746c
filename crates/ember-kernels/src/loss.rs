//! Fused loss kernels on `Storage` (cross-entropy: log-softmax + NLL): device dispatch.
