//! Indexing ops on `Storage` (index_select, gather, scatter, masked_fill, cat): device dispatch.
