//! Fused optimizer updates on `Storage` (SGD, Adam, …), in place: device dispatch.
