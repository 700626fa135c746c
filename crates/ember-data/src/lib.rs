//! Ember's datasets and DataLoader (skeleton until its issue lands).
