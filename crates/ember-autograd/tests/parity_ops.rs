//! Every op case PyTorch computed in `parity/` (unary, binary, reduce, matmul, views, index,
//! cast): forward values and the input gradients of `sum(output * grad_seed)`.

use ember_autograd::{DType, Device, Tensor};
use ember_testkit::{assert_close, cases, elementwise_tol, input, reduction_tol, tensor};
use serde_json::Value;

fn f(args: &Value, k: &str) -> f64 {
    args[k]
        .as_f64()
        .unwrap_or_else(|| panic!("missing arg {k}"))
}
fn i(args: &Value, k: &str) -> isize {
    args[k]
        .as_i64()
        .unwrap_or_else(|| panic!("missing arg {k}")) as isize
}
fn dims(args: &Value) -> Vec<isize> {
    match &args["dim"] {
        Value::Array(a) => a.iter().map(|d| d.as_i64().unwrap() as isize).collect(),
        Value::Number(n) => vec![n.as_i64().unwrap() as isize],
        _ => vec![],
    }
}
fn keepdim(args: &Value) -> bool {
    args["keepdim"].as_bool().unwrap_or(false)
}

/// Runs the op named in the case on its (viewed) inputs; returns all outputs.
fn run(op: &str, args: &Value, x: &[Tensor]) -> Vec<Tensor> {
    let one = |t: Tensor| vec![t];
    match op {
        "neg" => one(x[0].neg()),
        "abs" => one(x[0].abs()),
        "exp" => one(x[0].exp()),
        "log" => one(x[0].log()),
        "log1p" => one(x[0].log1p()),
        "sqrt" => one(x[0].sqrt()),
        "rsqrt" => one(x[0].rsqrt()),
        "sin" => one(x[0].sin()),
        "cos" => one(x[0].cos()),
        "tanh" => one(x[0].tanh()),
        "sigmoid" => one(x[0].sigmoid()),
        "relu" => one(x[0].relu()),
        "reciprocal" => one(x[0].reciprocal()),
        "sign" => one(x[0].sign()),
        "square" => one(x[0].square()),
        "gelu" => one(x[0].gelu(args["approximate"].as_str().unwrap())),
        "clamp" => one(x[0].clamp(args["min"].as_f64(), args["max"].as_f64())),
        "pow" if x.len() == 1 => one(x[0].pow(f(args, "exponent"))),
        "pow" => one(x[0].pow(&x[1])),
        "leaky_relu" => one(x[0].leaky_relu(f(args, "negative_slope"))),
        "elu" => one(x[0].elu(f(args, "alpha"))),
        "silu" => one(x[0].silu()),
        "add" if x.len() == 1 => one(&x[0] + f(args, "other")),
        "mul" if x.len() == 1 => one(&x[0] * f(args, "other")),
        "div" if x.len() == 1 => one(&x[0] / f(args, "other")),
        "rsub" => one(x[0].rsub(f(args, "other"))),
        "add" => one(&x[0] + &x[1]),
        "sub" => one(&x[0] - &x[1]),
        "mul" => one(&x[0] * &x[1]),
        "div" => one(&x[0] / &x[1]),
        "maximum" => one(x[0].maximum(&x[1])),
        "minimum" => one(x[0].minimum(&x[1])),
        "eq" => one(x[0].eq(&x[1])),
        "ne" => one(x[0].ne(&x[1])),
        "lt" => one(x[0].lt(&x[1])),
        "le" => one(x[0].le(&x[1])),
        "gt" => one(x[0].gt(&x[1])),
        "ge" => one(x[0].ge(&x[1])),
        "where" => one(Tensor::where_cond(&x[0], &x[1], &x[2])),
        "sum" if args.get("dim").is_some() => one(x[0].sum_dim(&dims(args)[..], keepdim(args))),
        "sum" => one(x[0].sum()),
        "mean" if args.get("dim").is_some() => one(x[0].mean_dim(&dims(args)[..], keepdim(args))),
        "mean" => one(x[0].mean()),
        "prod" => one(x[0].prod_dim(i(args, "dim"), keepdim(args))),
        "max" => {
            let (v, ix) = x[0].max_dim(i(args, "dim"), keepdim(args));
            vec![v, ix]
        }
        "min" => {
            let (v, ix) = x[0].min_dim(i(args, "dim"), keepdim(args));
            vec![v, ix]
        }
        "amax" => one(x[0].max()),
        "argmax" => one(x[0].argmax(Some(i(args, "dim")), keepdim(args))),
        "argmin" => one(x[0].argmin(Some(i(args, "dim")), keepdim(args))),
        "var" => one(x[0].var(
            &dims(args)[..],
            args["unbiased"].as_bool().unwrap(),
            keepdim(args),
        )),
        "std" => one(x[0].std_all()),
        "logsumexp" => one(x[0].logsumexp(&dims(args)[..], keepdim(args))),
        "softmax" => one(x[0].softmax(i(args, "dim"))),
        "log_softmax" => one(x[0].log_softmax(i(args, "dim"))),
        "matmul" => one(x[0].matmul(&x[1])),
        "addmm" => one(x[0].addmm(&x[1], &x[2], f(args, "beta"), f(args, "alpha"))),
        "linear" => one(x[0].matmul(&x[1].t()).add(&x[2])),
        "view" => one(x[0].view(shape_arg(args))),
        "reshape_neg" => one(x[0].reshape(shape_arg(args))),
        "transpose" => one(x[0].transpose(i(args, "dim0"), i(args, "dim1"))),
        "permute" => one(x[0].permute(
            args["dims"]
                .as_array()
                .unwrap()
                .iter()
                .map(|d| d.as_i64().unwrap())
                .collect::<Vec<i64>>(),
        )),
        "narrow" => one(x[0].narrow(
            i(args, "dim"),
            i(args, "start") as usize,
            i(args, "length") as usize,
        )),
        "unsqueeze" => one(x[0].unsqueeze(i(args, "dim"))),
        "flatten" => one(x[0].flatten(i(args, "start_dim"), i(args, "end_dim"))),
        "expand" => one(x[0].narrow(1, 0, 1).expand([2, 5, 4])), // x[:, :1, :].expand(2, 5, 4)
        "slice_step" => one(x[0].slice(1, 0, usize::MAX, 2).slice(2, 1, usize::MAX, 1)), // x[:, ::2, 1:]
        "contiguous_t" => one(x[0].transpose(1, 2).contiguous()),
        "squeeze" => one(x[0].squeeze_dim(i(args, "dim"))),
        "t" => one(x[0].t()),
        "index_select" => one(x[0].index_select(i(args, "dim"), &x[1])),
        "gather" => one(x[0].gather(i(args, "dim"), &x[1])),
        "scatter_add" => one(x[0].scatter_add(i(args, "dim"), &x[1], &x[2])),
        "cat" => one(Tensor::cat(x, i(args, "dim"))),
        "stack" => one(Tensor::stack(x, i(args, "dim"))),
        "masked_fill" => one(x[0].masked_fill(&x[1], f(args, "value"))),
        "one_hot" => one(x[0].one_hot(Some(i(args, "num_classes") as usize))),
        "to" => one(x[0].to_dtype(DType::from_name(args["dtype"].as_str().unwrap()).unwrap())),
        other => panic!("parity: op {other} not mapped"),
    }
}

fn shape_arg(args: &Value) -> Vec<i64> {
    args["shape"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d.as_i64().unwrap())
        .collect()
}

/// The devices every case runs on: the CPU, and CUDA device 0 when one can be used (the inputs
/// are copied there, so the gradients flow back through the copy to the CPU leaves).
fn devices() -> Vec<Device> {
    let mut d = vec![Device::Cpu];
    match ember_kernels::cuda::unavailable_reason() {
        None => d.push(Device::Cuda(0)),
        Some(why) => eprintln!("parity on CUDA skipped: {why}"),
    }
    d
}

fn check_file(file: &str, reduction: bool) {
    for device in devices() {
        check_file_on(file, reduction, device);
    }
}

fn check_file_on(file: &str, reduction: bool, device: Device) {
    let cs = cases(file);
    assert!(!cs.is_empty());
    for c in &cs {
        let name = &format!("{} on {device}", c["name"].as_str().unwrap());
        let op = c["op"].as_str().unwrap();
        let (leaves, xs): (Vec<Tensor>, Vec<Tensor>) =
            c["inputs"].as_array().unwrap().iter().map(input).unzip();
        let xs: Vec<Tensor> = xs.iter().map(|x| x.to_device(device)).collect();
        let outs = run(op, &c["args"], &xs);
        for o in &outs {
            assert_eq!(o.device(), device, "{name}: output on the wrong device");
        }
        let wants: Vec<Value> = match &c["output"] {
            Value::Array(a) => a.clone(),
            v => vec![v.clone()],
        };
        assert_eq!(outs.len(), wants.len(), "{name}: number of outputs");
        for (k, (o, w)) in outs.iter().zip(&wants).enumerate() {
            let (atol, rtol) = if reduction {
                reduction_tol(o.dtype())
            } else {
                elementwise_tol(o.dtype())
            };
            assert_close(&format!("{file}/{name} output {k}"), o, w, atol, rtol);
        }
        let Some(grads) = c.get("grads").and_then(|g| g.as_array()) else {
            continue;
        };
        let seed = tensor(&c["grad_seed"]).to_device(device);
        outs[0].backward_with(&seed);
        for (k, (leaf, want)) in leaves.iter().zip(grads).enumerate() {
            if want.is_null() {
                continue;
            }
            let g = leaf
                .grad()
                .unwrap_or_else(|| panic!("{file}/{name}: input {k} got no gradient"));
            let (atol, rtol) = reduction_tol(g.dtype());
            assert_close(&format!("{file}/{name} grad {k}"), &g, want, atol, rtol);
        }
    }
}

#[test]
fn unary() {
    check_file("unary", false);
}
#[test]
fn binary() {
    check_file("binary", false);
}
#[test]
fn reduce() {
    check_file("reduce", true);
}
#[test]
fn matmul() {
    check_file("matmul", true);
}
#[test]
fn views() {
    check_file("views", false);
}
#[test]
fn index() {
    check_file("index", false);
}
#[test]
fn cast() {
    check_file("cast", false);
}
