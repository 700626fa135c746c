//! Reductions and softmax on `Storage`: device dispatch.
