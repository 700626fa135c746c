//! TEMPORARY stubs (replaced by the real kernels on merge).
#![allow(missing_docs, unused_variables)]
use crate::{Layout, Storage};
impl Storage {
    pub fn matmul(&self, la: &Layout, rhs: &Storage, lb: &Layout) -> Storage {
        unimplemented!()
    }
    pub fn addmm(
        &self,
        lbias: &Layout,
        a: &Storage,
        la: &Layout,
        b: &Storage,
        lb: &Layout,
        beta: f64,
        alpha: f64,
    ) -> Storage {
        unimplemented!()
    }
}
