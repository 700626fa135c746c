//! Ember's neural-network modules, losses and initialisers (skeleton until its issue lands).
