//! Matrix products refuse operands of different dtypes with PyTorch 2.x's messages.

use ember_autograd::{DType, Tensor};
use std::panic::{catch_unwind, AssertUnwindSafe};

fn message(f: impl FnOnce() -> Tensor) -> String {
    let e = catch_unwind(AssertUnwindSafe(f)).expect_err("the product should panic");
    e.downcast_ref::<String>()
        .cloned()
        .or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap()
}

#[test]
fn mixed_dtypes_panic_with_pytorchs_messages() {
    let a = Tensor::ones([2, 3]).to_dtype(DType::F64);
    let b = Tensor::ones([3, 4]);
    // torch.mm / torch.matmul (2-D and batched)
    assert_eq!(
        message(|| a.mm(&b)),
        "expected m1 and m2 to have the same dtype, but got: double != float"
    );
    assert_eq!(
        message(|| a.matmul(&b)),
        "expected m1 and m2 to have the same dtype, but got: double != float"
    );
    let a3 = Tensor::ones([2, 2, 3]).to_dtype(DType::F64);
    assert_eq!(
        message(|| a3.matmul(&b)),
        "expected m1 and m2 to have the same dtype, but got: double != float"
    );
    assert_eq!(
        message(|| Tensor::ones([2, 3]).to_dtype(DType::I64).mm(&b)),
        "expected m1 and m2 to have the same dtype, but got: long int != float"
    );
    // torch.matmul of two vectors goes through dot
    assert_eq!(
        message(|| Tensor::ones([3])
            .to_dtype(DType::F64)
            .matmul(&Tensor::ones([3]))),
        "dot : expected both vectors to have same dtype, but found Double and Float"
    );
    // torch.addmm
    assert_eq!(
        message(|| Tensor::ones([4]).addmm(&a, &b, 1.0, 1.0)),
        "mat1 and mat2 must have the same dtype, but got Double and Float"
    );
}

#[test]
fn same_dtypes_still_multiply_and_addmm_promotes_its_bias() {
    let a = Tensor::ones([2, 3]).to_dtype(DType::F64);
    let b = Tensor::ones([3, 4]).to_dtype(DType::F64);
    let y = a.matmul(&b);
    assert_eq!((y.dtype(), y.to_vec::<f64>()[0]), (DType::F64, 3.0));
    // torch.addmm(float32 bias, double, double) runs and gives double.
    let z = Tensor::ones([4]).addmm(&a, &b, 1.0, 1.0);
    assert_eq!((z.dtype(), z.to_vec::<f64>()[0]), (DType::F64, 4.0));
}
