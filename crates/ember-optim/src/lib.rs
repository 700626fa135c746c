//! Ember's optimizers and learning-rate schedulers (skeleton until its issue lands).
