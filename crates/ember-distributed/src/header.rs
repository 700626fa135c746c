//! The header exchange that precedes every collective: each rank contributes a few words
//! describing the call (which operation, its root or reduction, the tensor's dtype and shape),
//! and every rank compares them all. Ranks that called different operations, or with different
//! tensors, get a `Mismatch` error naming the ranks and their tensors instead of a hang or
//! silently wrong data. The exchange is one all-gather of [`WORDS`] integers.

use crate::error::DistError;
use ember_kernels::DType;

/// Dimensions carried in full; longer shapes are compared through a hash of the rest.
const DIMS: usize = 6;
/// Words per rank: kind, parameter, dtype, numel, ndim, the first dims, a hash of the others.
pub(crate) const WORDS: usize = 5 + DIMS + 1;

/// The dtype word of a rank whose call failed its own argument checks: the others then report
/// a mismatch naming it instead of waiting for it.
const INVALID: i64 = -2;

/// The collective being called.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    AllReduce,
    Broadcast,
    AllGather,
    ReduceScatter,
    Barrier,
    /// Internal bookkeeping exchanges (DDP's model check).
    Verify,
    /// The header a `send` puts before its data, checked by `recv`.
    Send,
}

impl Kind {
    fn code(self) -> i64 {
        self as i64 + 1
    }

    fn from_code(c: i64) -> Option<Kind> {
        [
            Kind::AllReduce,
            Kind::Broadcast,
            Kind::AllGather,
            Kind::ReduceScatter,
            Kind::Barrier,
            Kind::Verify,
            Kind::Send,
        ]
        .into_iter()
        .find(|k| k.code() == c)
    }

    pub(crate) fn name(self) -> &'static str {
        match self {
            Kind::AllReduce => "all_reduce",
            Kind::Broadcast => "broadcast",
            Kind::AllGather => "all_gather",
            Kind::ReduceScatter => "reduce_scatter",
            Kind::Barrier => "barrier",
            Kind::Verify => "DistributedDataParallel's model check",
            Kind::Send => "send",
        }
    }
}

pub(crate) fn dtype_code(d: DType) -> i64 {
    match d {
        DType::Bool => 0,
        DType::U8 => 1,
        DType::I64 => 2,
        DType::F32 => 3,
        DType::F64 => 4,
    }
}

fn dtype_name(code: i64) -> &'static str {
    match code {
        0 => "bool",
        1 => "uint8",
        2 => "int64",
        3 => "float32",
        4 => "float64",
        _ => "unknown-dtype",
    }
}

/// One rank's description of its call.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Header {
    pub kind: Kind,
    /// The root (`broadcast`) or the reduction (`all_reduce`, `reduce_scatter`).
    pub param: i64,
    pub dtype: Option<DType>,
    pub shape: Vec<usize>,
}

impl Header {
    pub(crate) fn new(kind: Kind, param: i64, dtype: Option<DType>, shape: &[usize]) -> Header {
        Header {
            kind,
            param,
            dtype,
            shape: shape.to_vec(),
        }
    }

    /// This rank's header when its arguments were refused.
    pub(crate) fn encode_invalid(&self) -> [i64; WORDS] {
        let mut w = self.encode();
        w[2] = INVALID;
        w
    }

    pub(crate) fn encode(&self) -> [i64; WORDS] {
        let mut w = [0i64; WORDS];
        w[0] = self.kind.code();
        w[1] = self.param;
        w[2] = self.dtype.map_or(-1, dtype_code);
        w[3] = self.shape.iter().product::<usize>() as i64;
        w[4] = self.shape.len() as i64;
        for (i, &d) in self.shape.iter().take(DIMS).enumerate() {
            w[5 + i] = d as i64;
        }
        // FNV-1a over the dims past DIMS.
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for &d in self.shape.iter().skip(DIMS) {
            h = (h ^ d as u64).wrapping_mul(0x0100_0000_01b3);
        }
        w[5 + DIMS] = h as i64;
        w
    }

    /// The call a header describes, in words (`all_reduce(SUM) of a float32 tensor of shape
    /// [2, 3]`).
    pub(crate) fn describe_words(w: &[i64], param_name: impl Fn(Kind, i64) -> String) -> String {
        let Some(kind) = Kind::from_code(w[0]) else {
            return format!("an unknown call (header {w:?})");
        };
        let param = param_name(kind, w[1]);
        let call = if param.is_empty() {
            kind.name().to_string()
        } else {
            format!("{}({param})", kind.name())
        };
        if w[2] == INVALID {
            return format!("{call} with arguments it refused");
        }
        if w[2] < 0 {
            return call;
        }
        let ndim = w[4] as usize;
        let dims: Vec<String> = w[5..5 + ndim.min(DIMS)]
            .iter()
            .map(|d| d.to_string())
            .collect();
        let more = if ndim > DIMS { ", …" } else { "" };
        format!(
            "{call} of a {} tensor of shape [{}{more}]",
            dtype_name(w[2]),
            dims.join(", ")
        )
    }
}

/// How a collective's parameter word reads in messages.
pub(crate) fn param_name(kind: Kind, p: i64) -> String {
    match kind {
        Kind::AllReduce | Kind::ReduceScatter => ["SUM", "AVG", "MAX", "MIN", "PRODUCT"]
            .get(p as usize)
            .map_or_else(|| format!("op {p}"), |s| s.to_string()),
        Kind::Broadcast => format!("src={p}"),
        Kind::AllGather | Kind::Barrier | Kind::Send => String::new(),
        Kind::Verify => format!("{p} parameters"),
    }
}

/// Compares every rank's header (`all`: `WORDS` words per rank, in rank order) with this rank's;
/// the error names each rank that differs and what it called.
pub(crate) fn check(all: &[i64], me: usize, op: &'static str) -> Result<(), DistError> {
    let mine = &all[me * WORDS..(me + 1) * WORDS];
    let differing: Vec<usize> = (0..all.len() / WORDS)
        .filter(|&r| &all[r * WORDS..(r + 1) * WORDS] != mine)
        .collect();
    if differing.is_empty() {
        return Ok(());
    }
    let describe = |r: usize| Header::describe_words(&all[r * WORDS..(r + 1) * WORDS], param_name);
    let others: Vec<String> = differing
        .iter()
        .map(|&r| format!("rank {r} called {}", describe(r)))
        .collect();
    Err(DistError::Mismatch {
        rank: me,
        op,
        message: format!(
            "the ranks disagree: this rank ({me}) called {}, but {}",
            describe(me),
            others.join("; ")
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gather(hs: &[Header]) -> Vec<i64> {
        hs.iter().flat_map(|h| h.encode()).collect()
    }

    #[test]
    fn equal_headers_pass() {
        let h = Header::new(Kind::AllReduce, 0, Some(DType::F32), &[2, 3]);
        check(&gather(&[h.clone(), h.clone(), h]), 1, "all_reduce").unwrap();
    }

    #[test]
    fn a_shape_mismatch_names_the_rank_and_both_tensors() {
        let a = Header::new(Kind::AllReduce, 0, Some(DType::F32), &[2, 3]);
        let b = Header::new(Kind::AllReduce, 0, Some(DType::F32), &[3, 3]);
        let e = check(&gather(&[a.clone(), b, a]), 0, "all_reduce").unwrap_err();
        assert_eq!(
            e.to_string(),
            "rank 0: all_reduce: the ranks disagree: this rank (0) called all_reduce(SUM) of a \
             float32 tensor of shape [2, 3], but rank 1 called all_reduce(SUM) of a float32 \
             tensor of shape [3, 3]"
        );
    }

    #[test]
    fn different_operations_roots_and_long_shapes_are_told_apart() {
        let a = Header::new(Kind::Broadcast, 0, Some(DType::I64), &[4]);
        let b = Header::new(Kind::Broadcast, 1, Some(DType::I64), &[4]);
        let c = Header::new(Kind::Barrier, 0, None, &[]);
        let msg = check(&gather(&[a, b, c]), 0, "broadcast")
            .unwrap_err()
            .to_string();
        assert!(
            msg.contains("rank 1 called broadcast(src=1) of a int64"),
            "{msg}"
        );
        assert!(msg.contains("rank 2 called barrier"), "{msg}");
        let long = |last| {
            Header::new(
                Kind::AllGather,
                0,
                Some(DType::F64),
                &[1, 1, 1, 1, 1, 1, 2, last],
            )
        };
        assert!(check(&gather(&[long(5), long(6)]), 1, "all_gather").is_err());
        check(&gather(&[long(5), long(5)]), 1, "all_gather").unwrap();
    }
}
