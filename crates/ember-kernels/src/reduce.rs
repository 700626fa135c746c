//! TEMPORARY stubs (replaced by the real kernels on merge).
#![allow(missing_docs, unused_variables)]
use crate::{cpu::CpuStorage, op::ReduceOp, DType, Layout, Storage};
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ArgReduceOp {
    Max,
    Min,
}
impl Storage {
    pub fn reduce(&self, layout: &Layout, dims: &[usize], op: ReduceOp) -> Storage {
        let dims: Vec<usize> = if dims.is_empty() {
            (0..layout.ndim()).collect()
        } else {
            dims.to_vec()
        };
        let out_shape: Vec<usize> = layout
            .shape()
            .iter()
            .enumerate()
            .map(|(i, &s)| if dims.contains(&i) { 1 } else { s })
            .collect();
        let ol = Layout::contiguous(&out_shape);
        let v = self.to_vec::<f64>(layout);
        let mut out = vec![0.0; ol.numel()];
        let cl = Layout::contiguous(layout.shape());
        let st = cl.strides().to_vec();
        for (i, x) in v.iter().enumerate() {
            let idx: Vec<usize> = (0..layout.ndim())
                .map(|d| {
                    if dims.contains(&d) {
                        0
                    } else {
                        (i / st[d]) % layout.shape()[d]
                    }
                })
                .collect();
            out[ol.position(&idx)] += x;
        }
        let dt = if self.dtype().is_float() {
            self.dtype()
        } else {
            DType::I64
        };
        Storage::Cpu(CpuStorage::from_vec(out)).cast(&ol, dt)
    }
    pub fn arg_reduce(&self, layout: &Layout, dim: usize, op: ArgReduceOp) -> (Storage, Storage) {
        unimplemented!()
    }
    pub fn var(&self, layout: &Layout, dims: &[usize], correction: f64) -> Storage {
        unimplemented!()
    }
    pub fn logsumexp(&self, layout: &Layout, dims: &[usize]) -> Storage {
        unimplemented!()
    }
    pub fn softmax(&self, layout: &Layout, dim: usize, log: bool) -> Storage {
        unimplemented!()
    }
    pub fn softmax_backward(
        &self,
        lg: &Layout,
        out: &Storage,
        lo: &Layout,
        dim: usize,
        log: bool,
    ) -> Storage {
        unimplemented!()
    }
}
