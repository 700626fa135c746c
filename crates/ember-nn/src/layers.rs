//! Basic layers: `Linear`, `Identity`, `Flatten`, `Unflatten`, `Dropout`, `Dropout2d`.

use crate::functional as F;
use crate::init;
use crate::module::{Module, Parameter, TrainFlag};
use ember_autograd::Generator;
use ember_autograd::Tensor;
use ember_nn_derive::Module;

/// `y = x Wᵀ + b` (`nn.Linear`): weight `(out_features, in_features)`, bias `(out_features)`,
/// initialised as PyTorch does: Kaiming-uniform weight with `a = √5` (i.e. `U(±1/√in_features)`)
/// and bias `U(±1/√in_features)`. Inputs are `(*, in_features)`; 2-D inputs go through one fused
/// `addmm`.
///
/// ```
/// use ember_autograd::Tensor;
/// use ember_nn::{Linear, Module};
/// let fc = Linear::new(5, 3);
/// assert_eq!(fc.forward(&Tensor::zeros([4, 5])).shape(), &[4, 3]);
/// let no_bias = Linear::new(5, 3).bias(false);
/// assert!(no_bias.bias.is_none());
/// ```
#[derive(Module)]
pub struct Linear {
    /// The weight, `(out_features, in_features)`.
    pub weight: Parameter,
    /// The bias, `(out_features)`, if any.
    pub bias: Option<Parameter>,
    /// Size of each input sample.
    pub in_features: usize,
    /// Size of each output sample.
    pub out_features: usize,
    training: TrainFlag,
}

impl Linear {
    /// A layer with bias, initialised like PyTorch (from the default generator).
    #[track_caller]
    pub fn new(in_features: usize, out_features: usize) -> Linear {
        Linear::with_options(in_features, out_features, true, None)
    }

    /// [`Linear::new`] drawing its initial values from `gen`.
    #[track_caller]
    pub fn new_with(in_features: usize, out_features: usize, gen: &Generator) -> Linear {
        Linear::with_options(in_features, out_features, true, Some(gen))
    }

    /// `nn.Linear(in_features, out_features, bias=bias)`, drawing from `gen` (the default
    /// generator when `None`). Without a bias only the weight is drawn, as in PyTorch, so the
    /// layers built after it get PyTorch's numbers too.
    ///
    /// ```
    /// use ember_nn::Linear;
    /// let fc = Linear::with_options(5, 3, false, None);
    /// assert!(fc.bias.is_none());
    /// ```
    #[track_caller]
    pub fn with_options(
        in_features: usize,
        out_features: usize,
        bias: bool,
        gen: Option<&Generator>,
    ) -> Linear {
        let w = Tensor::zeros([out_features, in_features]);
        let (a, mode, nl) = (
            5f64.sqrt(),
            init::FanMode::FanIn,
            init::Nonlinearity::LeakyRelu,
        );
        let bound = if in_features > 0 {
            1.0 / (in_features as f64).sqrt()
        } else {
            0.0
        };
        // PyTorch's reset_parameters: the weight's draws, then the bias's.
        match gen {
            Some(g) => init::kaiming_uniform_with_(&w, a, mode, nl, g),
            None => init::kaiming_uniform_(&w, a, mode, nl),
        }
        let b = bias.then(|| {
            let b = Tensor::zeros([out_features]);
            match gen {
                Some(g) => init::uniform_with_(&b, -bound, bound, g),
                None => init::uniform_(&b, -bound, bound),
            }
            Parameter::new(b)
        });
        Linear {
            weight: Parameter::new(w),
            bias: b,
            in_features,
            out_features,
            training: TrainFlag::new(),
        }
    }

    /// A layer with the given weight `(out, in)` and optional bias `(out)` (e.g. pretrained).
    #[track_caller]
    pub fn from_weights(weight: Tensor, bias: Option<Tensor>) -> Linear {
        if weight.dim() != 2 {
            panic!(
                "Linear: the weight must be 2-D (out_features, in_features), got shape {:?}",
                weight.shape()
            );
        }
        let (out_features, in_features) = (weight.shape()[0], weight.shape()[1]);
        if let Some(b) = &bias {
            if b.shape() != [out_features] {
                panic!(
                    "Linear: the bias must have shape [{out_features}], got {:?}",
                    b.shape()
                );
            }
        }
        Linear {
            weight: Parameter::new(weight),
            bias: bias.map(Parameter::new),
            in_features,
            out_features,
            training: TrainFlag::new(),
        }
    }

    /// Keeps (`true`) or drops (`false`) the bias. The bias of a layer built with a bias was
    /// drawn already; for PyTorch's numbers with `bias=False` build with
    /// [`with_options`](Linear::with_options).
    #[track_caller]
    pub fn bias(mut self, bias: bool) -> Linear {
        if !bias {
            self.bias = None;
        } else if self.bias.is_none() {
            self.bias = Some(Parameter::new(
                Tensor::zeros([self.out_features]).to_dtype(self.weight.dtype()),
            ));
        }
        self
    }
}

impl Module for Linear {
    #[track_caller]
    fn forward(&self, input: &Tensor) -> Tensor {
        F::linear(input, &self.weight, self.bias.as_deref())
    }
    #[track_caller]
    fn extra_repr(&self) -> String {
        format!(
            "in_features={}, out_features={}, bias={}",
            self.in_features,
            self.out_features,
            if self.bias.is_some() { "True" } else { "False" }
        )
    }
}

/// Returns its input (`nn.Identity`), a placeholder in a `Sequential`.
#[derive(Module, Clone, Copy, Debug, Default)]
pub struct Identity;

impl Module for Identity {
    #[track_caller]
    fn forward(&self, input: &Tensor) -> Tensor {
        input.clone()
    }
}

/// Flattens dims `start_dim..=end_dim` into one (`nn.Flatten`; defaults 1 and -1, keeping the
/// batch dim).
#[derive(Module, Clone, Copy, Debug)]
pub struct Flatten {
    /// First dim to flatten.
    pub start_dim: isize,
    /// Last dim to flatten (inclusive; negative counts from the end).
    pub end_dim: isize,
}

impl Flatten {
    /// `Flatten(start_dim=1, end_dim=-1)`.
    #[track_caller]
    pub fn new() -> Flatten {
        Flatten {
            start_dim: 1,
            end_dim: -1,
        }
    }
    /// Sets the first dim to flatten.
    #[track_caller]
    pub fn start_dim(mut self, d: isize) -> Flatten {
        self.start_dim = d;
        self
    }
    /// Sets the last dim to flatten.
    #[track_caller]
    pub fn end_dim(mut self, d: isize) -> Flatten {
        self.end_dim = d;
        self
    }
}

impl Default for Flatten {
    #[track_caller]
    fn default() -> Self {
        Flatten::new()
    }
}

impl Module for Flatten {
    #[track_caller]
    fn forward(&self, input: &Tensor) -> Tensor {
        input.flatten(self.start_dim, self.end_dim)
    }
    #[track_caller]
    fn extra_repr(&self) -> String {
        format!("start_dim={}, end_dim={}", self.start_dim, self.end_dim)
    }
}

/// Splits dim `dim` into `sizes` (`nn.Unflatten`; one size may be -1).
#[derive(Module, Clone, Debug)]
pub struct Unflatten {
    /// The dim to split.
    pub dim: isize,
    /// The sizes it becomes.
    pub sizes: Vec<isize>,
}

impl Unflatten {
    /// `Unflatten(dim, sizes)`.
    #[track_caller]
    pub fn new(dim: isize, sizes: impl Into<Vec<isize>>) -> Unflatten {
        Unflatten {
            dim,
            sizes: sizes.into(),
        }
    }
}

impl Module for Unflatten {
    #[track_caller]
    fn forward(&self, input: &Tensor) -> Tensor {
        let d = ember_autograd::shape::normalize_dim(self.dim, input.dim());
        let mut shape: Vec<isize> = input.shape()[..d].iter().map(|&s| s as isize).collect();
        let known: isize = self.sizes.iter().filter(|&&s| s >= 0).product();
        let inferred = self.sizes.iter().filter(|&&s| s < 0).count();
        if inferred > 1
            || (inferred == 0 && known != input.shape()[d] as isize)
            || (inferred == 1 && (known == 0 || input.shape()[d] as isize % known != 0))
        {
            panic!(
                "Unflatten: sizes {:?} do not multiply to the size {} of dim {} of the input of shape {:?}",
                self.sizes,
                input.shape()[d],
                self.dim,
                input.shape()
            );
        }
        shape.extend(&self.sizes);
        shape.extend(input.shape()[d + 1..].iter().map(|&s| s as isize));
        input.reshape(shape)
    }
    #[track_caller]
    fn extra_repr(&self) -> String {
        format!("dim={}, unflattened_size={:?}", self.dim, self.sizes)
    }
}

/// Zeroes each element with probability `p` in training mode and scales the rest by `1/(1-p)`
/// (`nn.Dropout`); the identity in evaluation mode. The mask comes from the default generator,
/// or from the module's own generator when built with [`Dropout::generator`] (reproducible).
///
/// ```
/// use ember_autograd::Tensor;
/// use ember_autograd::Generator;
/// use ember_nn::{Dropout, Module};
/// let d = Dropout::new(0.5).generator(Generator::new(0));
/// let x = Tensor::ones([1000]);
/// let kept = d.forward(&x).to_vec::<f32>().iter().filter(|&&v| v == 2.0).count();
/// assert!((400..600).contains(&kept));
/// d.eval();
/// assert_eq!(d.forward(&x).to_vec::<f32>(), x.to_vec::<f32>());
/// ```
#[derive(Module)]
pub struct Dropout {
    /// The probability of zeroing an element.
    pub p: f64,
    #[module(skip)]
    gen: Option<Generator>,
    training: TrainFlag,
}

impl Dropout {
    /// `Dropout(p)`.
    #[track_caller]
    pub fn new(p: f64) -> Dropout {
        if !(0.0..=1.0).contains(&p) {
            panic!("dropout probability has to be between 0 and 1, but got {p}");
        }
        Dropout {
            p,
            gen: None,
            training: TrainFlag::new(),
        }
    }

    /// Draws masks from `gen` instead of the default generator.
    #[track_caller]
    pub fn generator(mut self, gen: Generator) -> Dropout {
        self.gen = Some(gen);
        self
    }
}

impl Default for Dropout {
    /// `Dropout(p=0.5)`.
    #[track_caller]
    fn default() -> Self {
        Dropout::new(0.5)
    }
}

impl Module for Dropout {
    #[track_caller]
    fn forward(&self, input: &Tensor) -> Tensor {
        F::dropout_with(input, self.p, self.training.get(), self.gen.as_ref())
    }
    #[track_caller]
    fn extra_repr(&self) -> String {
        format!("p={:?}, inplace=False", self.p)
    }
}

/// Zeroes whole channels with probability `p` in training mode and scales the rest by
/// `1/(1-p)` (`nn.Dropout2d`): for `(N, C, H, W)` input each `(n, c)` plane is kept or dropped
/// as a unit (for 3-D input, PyTorch's historical `(N, C, L)` reading); the identity in
/// evaluation mode.
///
/// ```
/// use ember_autograd::{Generator, Tensor};
/// use ember_nn::{Dropout2d, Module};
/// let d = Dropout2d::new(0.5).generator(Generator::new(0));
/// let y = d.forward(&Tensor::ones([8, 16, 3, 3])).reshape([128, 9]);
/// // Each channel is all zeros or all twos.
/// let rows = y.to_vec::<f32>();
/// assert!(rows.chunks(9).all(|r| r.iter().all(|&v| v == r[0]) && (r[0] == 0.0 || r[0] == 2.0)));
/// assert_eq!(d.repr(), "Dropout2d(p=0.5, inplace=False)");
/// ```
#[derive(Module)]
pub struct Dropout2d {
    /// The probability of zeroing a channel.
    pub p: f64,
    #[module(skip)]
    gen: Option<Generator>,
    training: TrainFlag,
}

impl Dropout2d {
    /// `Dropout2d(p)`.
    pub fn new(p: f64) -> Dropout2d {
        if !(0.0..=1.0).contains(&p) {
            panic!("dropout probability has to be between 0 and 1, but got {p}");
        }
        Dropout2d {
            p,
            gen: None,
            training: TrainFlag::new(),
        }
    }

    /// Draws masks from `gen` instead of the default generator.
    pub fn generator(mut self, gen: Generator) -> Dropout2d {
        self.gen = Some(gen);
        self
    }
}

impl Default for Dropout2d {
    /// `Dropout2d(p=0.5)`.
    fn default() -> Self {
        Dropout2d::new(0.5)
    }
}

impl Module for Dropout2d {
    fn forward(&self, input: &Tensor) -> Tensor {
        F::dropout2d_with(input, self.p, self.training.get(), self.gen.as_ref())
    }
    fn extra_repr(&self) -> String {
        format!("p={:?}, inplace=False", self.p)
    }
}
