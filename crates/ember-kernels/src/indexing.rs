//! TEMPORARY stubs (replaced by the real kernels on merge).
#![allow(missing_docs, unused_variables)]
use crate::{Layout, Scalar, Storage};
impl Storage {
    pub fn index_select(&self, l: &Layout, dim: usize, index: &Storage, li: &Layout) -> Storage {
        unimplemented!()
    }
    pub fn gather(&self, l: &Layout, dim: usize, index: &Storage, li: &Layout) -> Storage {
        unimplemented!()
    }
    pub fn scatter(
        &self,
        l: &Layout,
        dim: usize,
        index: &Storage,
        li: &Layout,
        src: &Storage,
        ls: &Layout,
        add: bool,
    ) -> Storage {
        unimplemented!()
    }
    pub fn masked_fill(&self, l: &Layout, mask: &Storage, lm: &Layout, value: Scalar) -> Storage {
        unimplemented!()
    }
    pub fn cat(parts: &[(&Storage, &Layout)], dim: usize) -> Storage {
        unimplemented!()
    }
    pub fn one_hot(&self, l: &Layout, num_classes: usize) -> Storage {
        unimplemented!()
    }
}
