//! Matrix products on `Storage` (matmul, batched matmul, addmm): device dispatch.
