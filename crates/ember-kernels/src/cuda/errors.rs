//! Errors kernels report through a device's error slot: codes and the messages the host
//! panics with (the CPU backend's wording). A code is an error kind (`kernels::err`) in the
//! high bits and, for kinds whose message names the op, the op's number in a process-wide
//! table of op names in the low 16 bits.

use super::kernels::err;
use std::sync::Mutex;

static OPS: Mutex<Vec<&'static str>> = Mutex::new(Vec::new());

/// The error code of `kind` for the op named `op`.
pub fn code(kind: u64, op: &'static str) -> u64 {
    let mut ops = OPS.lock().unwrap_or_else(|e| e.into_inner());
    let id = match ops.iter().position(|&o| o == op) {
        Some(i) => i,
        None => {
            ops.push(op);
            ops.len() - 1
        }
    };
    assert!(id < 1 << 16, "too many op names");
    kind | id as u64
}

fn op_name(code: u64) -> &'static str {
    let ops = OPS.lock().unwrap_or_else(|e| e.into_inner());
    ops.get((code & 0xffff) as usize)
        .copied()
        .unwrap_or("cuda kernel")
}

/// The message of an error recorded as `[code, a, b, c]`.
pub fn message(code: u64, a: u64, b: u64, c: u64) -> String {
    match code & !0xffff {
        err::ZERO_DIVISION => "ZeroDivisionError: integer division by zero".into(),
        err::INDEX => format!(
            "{}: index {} is out of bounds for dimension {b} with size {c}",
            op_name(code),
            a as i64
        ),
        err::ONE_HOT_NEGATIVE => "one_hot: Class values must be non-negative.".into(),
        err::ONE_HOT_TOO_LARGE => "one_hot: Class values must be smaller than num_classes.".into(),
        err::TARGET => format!(
            "{}: target {} is out of bounds: class-index targets must be in [0, {b}) or equal ignore_index ({})",
            op_name(code),
            a as i64,
            c as i64
        ),
        err::BERNOULLI_PROB => format!(
            "bernoulli: expected all probabilities in [0, 1], but found p={:?}",
            f64::from_bits(a)
        ),
        k => format!("CUDA kernel error {k:#x} ({a}, {b}, {c})"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_match_the_cpu_backend() {
        let c = code(err::INDEX, "gather");
        assert_eq!(c, code(err::INDEX, "gather"), "interned once");
        assert_eq!(
            message(c, (-2i64) as u64, 1, 4),
            "gather: index -2 is out of bounds for dimension 1 with size 4"
        );
        let t = code(err::TARGET, "cross_entropy");
        assert_eq!(
            message(t, 7, 3, (-100i64) as u64),
            "cross_entropy: target 7 is out of bounds: class-index targets must be in [0, 3) or equal ignore_index (-100)"
        );
        assert_eq!(
            message(err::BERNOULLI_PROB, 1.5f64.to_bits(), 0, 0),
            "bernoulli: expected all probabilities in [0, 1], but found p=1.5"
        );
        assert_eq!(
            message(err::ONE_HOT_TOO_LARGE, 3, 3, 0),
            "one_hot: Class values must be smaller than num_classes."
        );
    }
}
