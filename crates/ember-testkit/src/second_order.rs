//! Which backward nodes the second-derivative checks went through, so a test can demand that
//! every node an op's source records is checked by `gradgradcheck`: a new op whose backward is
//! not differentiable (or never checked) fails that test instead of going unnoticed.
//!
//! A property test calls [`note_nodes`] after its `gradgradcheck` passed; a coverage test runs
//! the properties once on fixed inputs and calls [`assert_every_node_checked`] with the op
//! sources (`include_str!`).

use ember_autograd::{autograd, grad_mode, Node, Tensor};
use std::cell::RefCell;
use std::collections::{BTreeSet, HashSet};
use std::sync::Arc;

thread_local! {
    // Per thread: a coverage test counts only what it ran itself, not what a property test
    // running beside it in the same binary happened to check.
    static CHECKED: RefCell<BTreeSet<&'static str>> = const { RefCell::new(BTreeSet::new()) };
}

/// Records, as checked on this thread, the name of every node in the graph of `f(inputs)` and
/// in the graph of its first derivative (taken with `create_graph`, as `gradgradcheck` does).
/// Call it after `gradgradcheck(f, inputs, …)` succeeded.
pub fn note_nodes(f: impl Fn(&[Tensor]) -> Tensor, inputs: &[Tensor]) {
    let _mode = grad_mode(true);
    let xs: Vec<Tensor> = inputs
        .iter()
        .map(|x| {
            if x.requires_grad() {
                x.clone()
            } else {
                x.detach().requires_grad_(true)
            }
        })
        .collect();
    let out = f(&xs);
    let mut roots: Vec<Arc<Node>> = out.grad_fn().into_iter().collect();
    if out.requires_grad() {
        // A constant seed: nothing but the op's own backward is recorded.
        let seed = out.detach().ones_like();
        let grads = autograd::grad(
            std::slice::from_ref(&out),
            &xs,
            Some(std::slice::from_ref(&seed)),
            true,
            true,
        );
        roots.extend(grads.iter().flatten().filter_map(|g| g.grad_fn()));
    }
    let names = walk(roots);
    CHECKED.with(|c| c.borrow_mut().extend(names));
}

/// Every node name reachable from `roots`.
fn walk(mut stack: Vec<Arc<Node>>) -> BTreeSet<&'static str> {
    let mut visited: HashSet<*const Node> = HashSet::new();
    let mut names = BTreeSet::new();
    while let Some(n) = stack.pop() {
        if !visited.insert(Arc::as_ptr(&n)) {
            continue;
        }
        names.insert(n.name());
        stack.extend(n.next_functions().into_iter().flatten());
    }
    names
}

/// The node names noted as checked on this thread so far.
pub fn checked_nodes() -> BTreeSet<&'static str> {
    CHECKED.with(|c| c.borrow().clone())
}

/// The node names a source file records: its string literals that look like PyTorch's node
/// names (`MulBackward0`, `CopyBackwards`, `CopySlices`).
pub fn recorded_names(src: &str) -> BTreeSet<String> {
    src.split('"')
        .skip(1)
        .step_by(2)
        .filter(|s| {
            let alnum = !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric());
            let base = s.trim_end_matches(|c: char| c.is_ascii_digit());
            alnum
                && s.starts_with(|c: char| c.is_ascii_uppercase())
                && (base.ends_with("Backward") || base.ends_with("Backwards") || *s == "CopySlices")
        })
        .map(str::to_owned)
        .collect()
}

/// Panics unless every node name recorded by `sources` (`(file name, text)`) was noted as
/// checked on this thread or is listed in `exempt` (`(name, why)`). An exemption for a name that
/// no source records any more, or that is checked after all, panics too, so the list stays true.
pub fn assert_every_node_checked(sources: &[(&str, &str)], exempt: &[(&str, &str)]) {
    let checked = checked_nodes();
    let mut recorded = BTreeSet::new();
    let mut missing = Vec::new();
    for (file, src) in sources {
        for name in recorded_names(src) {
            if !checked.contains(name.as_str()) && !exempt.iter().any(|(e, _)| *e == name) {
                missing.push(format!("{name} ({file})"));
            }
            recorded.insert(name);
        }
    }
    assert!(
        missing.is_empty(),
        "nodes recorded but never through gradgradcheck: {}",
        missing.join(", ")
    );
    for (name, why) in exempt {
        assert!(
            recorded.contains(*name),
            "exemption {name} ({why}): no source records it any more"
        );
        assert!(
            !checked.contains(name),
            "exemption {name} ({why}): it is checked after all, drop the exemption"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_node_names_in_source() {
        let src = r#"record(out, "MulBackward0", ..); let s = "not a node"; node("CopySlices", ..);
            self.record_inplace("CopyBackwards", ..); "TBackward0" "Backward0x" "mulBackward0""#;
        let names: Vec<String> = recorded_names(src).into_iter().collect();
        assert_eq!(
            names,
            ["CopyBackwards", "CopySlices", "MulBackward0", "TBackward0"]
        );
    }

    #[test]
    fn notes_the_nodes_of_the_op_and_of_its_backward() {
        let x = Tensor::from_slice(&[0.5f64, 1.5], [2]).requires_grad_(true);
        note_nodes(|v| v[0].sin().sum(), &[x]);
        let seen = checked_nodes();
        // sin's backward multiplies by cos: both appear.
        for n in [
            "SinBackward0",
            "SumBackward0",
            "CosBackward0",
            "MulBackward0",
        ] {
            assert!(seen.contains(n), "{n} not in {seen:?}");
        }
    }

    #[test]
    #[should_panic(
        expected = "nodes recorded but never through gradgradcheck: ExpBackward0 (a.rs)"
    )]
    fn an_unchecked_node_fails() {
        assert_every_node_checked(&[("a.rs", r#"record(o, "ExpBackward0", ..)"#)], &[]);
    }

    #[test]
    #[should_panic(expected = "no source records it any more")]
    fn a_stale_exemption_fails() {
        assert_every_node_checked(&[("a.rs", "")], &[("ExpBackward0", "gone")]);
    }
}
