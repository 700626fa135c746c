//! Shape arguments: arrays, slices and vectors of any integer type, with `-1` where a view or
//! reshape should infer a size.

use smallvec::SmallVec;

/// A list of sizes as users write them: `[2, 3]`, `&[2usize, 3]`, `vec![n, -1]`, `x.shape()`.
pub trait IntoShape {
    /// The sizes, possibly containing one `-1`.
    fn to_isizes(&self) -> SmallVec<[isize; 6]>;

    /// The sizes as dims, panicking (naming `op`) on negative entries.
    #[track_caller]
    fn to_dims(&self, op: &str) -> ember_kernels::shape::Dims {
        // A loop, not a closure: the panic reports the caller's line (`#[track_caller]`).
        let mut dims = ember_kernels::shape::Dims::new();
        for s in self.to_isizes() {
            match usize::try_from(s) {
                Ok(d) => dims.push(d),
                Err(_) => panic!("{op}: negative dimension {s}"),
            }
        }
        dims
    }
}

macro_rules! into_shape {
    ($($t:ty),*) => {$(
        impl<const N: usize> IntoShape for [$t; N] {
            fn to_isizes(&self) -> SmallVec<[isize; 6]> {
                self.iter().map(|&s| s as isize).collect()
            }
        }
        impl<const N: usize> IntoShape for &[$t; N] {
            fn to_isizes(&self) -> SmallVec<[isize; 6]> {
                self.iter().map(|&s| s as isize).collect()
            }
        }
        impl IntoShape for &[$t] {
            fn to_isizes(&self) -> SmallVec<[isize; 6]> {
                self.iter().map(|&s| s as isize).collect()
            }
        }
        impl IntoShape for Vec<$t> {
            fn to_isizes(&self) -> SmallVec<[isize; 6]> {
                self.iter().map(|&s| s as isize).collect()
            }
        }
        impl IntoShape for &Vec<$t> {
            fn to_isizes(&self) -> SmallVec<[isize; 6]> {
                self.iter().map(|&s| s as isize).collect()
            }
        }
    )*};
}
into_shape!(usize, isize, i64, i32, u32);

/// A list of dims for reductions: one dim (`1`, `-1`) or several (`[0, 2]`).
pub trait IntoDims {
    /// The dims as given (possibly negative).
    fn to_dim_list(&self) -> SmallVec<[isize; 6]>;
}

macro_rules! into_dims {
    ($($t:ty),*) => {$(
        impl IntoDims for $t {
            fn to_dim_list(&self) -> SmallVec<[isize; 6]> {
                smallvec::smallvec![*self as isize]
            }
        }
        impl<const N: usize> IntoDims for [$t; N] {
            fn to_dim_list(&self) -> SmallVec<[isize; 6]> {
                self.iter().map(|&d| d as isize).collect()
            }
        }
        impl IntoDims for &[$t] {
            fn to_dim_list(&self) -> SmallVec<[isize; 6]> {
                self.iter().map(|&d| d as isize).collect()
            }
        }
    )*};
}
into_dims!(usize, isize, i64, i32);
