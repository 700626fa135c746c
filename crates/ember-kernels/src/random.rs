//! Seeded random numbers and creation ops (arange, linspace, eye, uniform, normal, …).
