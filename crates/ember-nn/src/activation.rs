//! Activation modules: `ReLU`, `LeakyReLU`, `ELU`, `GELU`, `SiLU`, `Sigmoid`, `Tanh`,
//! `Softmax(dim)`, `LogSoftmax(dim)`. The parameterless ones are unit structs (`.add(nn::ReLU)`).

use crate::module::Module;
use ember_autograd::Tensor;
use ember_nn_derive::Module;

macro_rules! unit_activation {
    ($($(#[$doc:meta])* $name:ident => $f:ident;)*) => {$(
        $(#[$doc])*
        #[derive(Module, Clone, Copy, Debug, Default)]
        pub struct $name;

        impl Module for $name {
            #[track_caller]
            fn forward(&self, input: &Tensor) -> Tensor {
                input.$f()
            }
        }
    )*};
}

unit_activation! {
    /// `max(x, 0)` (`nn.ReLU`).
    ReLU => relu;
    /// `x * sigmoid(x)` (`nn.SiLU`).
    SiLU => silu;
    /// `1 / (1 + exp(-x))` (`nn.Sigmoid`).
    Sigmoid => sigmoid;
    /// `tanh(x)` (`nn.Tanh`).
    Tanh => tanh;
}

/// `x` where positive, `negative_slope * x` elsewhere (`nn.LeakyReLU`, default slope 0.01).
#[derive(Module, Clone, Copy, Debug)]
pub struct LeakyReLU {
    /// The slope for negative inputs.
    pub negative_slope: f64,
}

impl LeakyReLU {
    /// `LeakyReLU(negative_slope)`.
    #[track_caller]
    pub fn new(negative_slope: f64) -> LeakyReLU {
        LeakyReLU { negative_slope }
    }
}

impl Default for LeakyReLU {
    #[track_caller]
    fn default() -> Self {
        LeakyReLU::new(0.01)
    }
}

impl Module for LeakyReLU {
    #[track_caller]
    fn forward(&self, input: &Tensor) -> Tensor {
        input.leaky_relu(self.negative_slope)
    }
    #[track_caller]
    fn extra_repr(&self) -> String {
        format!("negative_slope={:?}", self.negative_slope)
    }
}

/// `x` where positive, `alpha * (exp(x) - 1)` elsewhere (`nn.ELU`, default alpha 1).
#[derive(Module, Clone, Copy, Debug)]
pub struct ELU {
    /// The scale of the negative part.
    pub alpha: f64,
}

impl ELU {
    /// `ELU(alpha)`.
    #[track_caller]
    pub fn new(alpha: f64) -> ELU {
        ELU { alpha }
    }
}

impl Default for ELU {
    #[track_caller]
    fn default() -> Self {
        ELU::new(1.0)
    }
}

impl Module for ELU {
    #[track_caller]
    fn forward(&self, input: &Tensor) -> Tensor {
        input.elu(self.alpha)
    }
    #[track_caller]
    fn extra_repr(&self) -> String {
        format!("alpha={:?}", self.alpha)
    }
}

/// GELU (`nn.GELU`): exact (`"none"`, the default) or the `"tanh"` approximation.
#[derive(Module, Clone, Copy, Debug)]
pub struct GELU {
    /// `"none"` or `"tanh"`.
    pub approximate: &'static str,
}

impl GELU {
    /// Exact GELU.
    #[track_caller]
    pub fn new() -> GELU {
        GELU {
            approximate: "none",
        }
    }
    /// Sets the approximation (`"none"` or `"tanh"`).
    #[track_caller]
    pub fn approximate(mut self, approximate: &'static str) -> GELU {
        if approximate != "none" && approximate != "tanh" {
            panic!("GELU: approximate must be 'none' or 'tanh', got '{approximate}'");
        }
        self.approximate = approximate;
        self
    }
}

impl Default for GELU {
    #[track_caller]
    fn default() -> Self {
        GELU::new()
    }
}

impl Module for GELU {
    #[track_caller]
    fn forward(&self, input: &Tensor) -> Tensor {
        input.gelu(self.approximate)
    }
    #[track_caller]
    fn extra_repr(&self) -> String {
        format!("approximate='{}'", self.approximate)
    }
}

/// Softmax along `dim` (`nn.Softmax(dim)`).
#[derive(Module, Clone, Copy, Debug)]
pub struct Softmax {
    /// The dim that sums to 1.
    pub dim: isize,
}

impl Softmax {
    /// `Softmax(dim)`.
    #[track_caller]
    pub fn new(dim: isize) -> Softmax {
        Softmax { dim }
    }
}

impl Module for Softmax {
    #[track_caller]
    fn forward(&self, input: &Tensor) -> Tensor {
        input.softmax(self.dim)
    }
    #[track_caller]
    fn extra_repr(&self) -> String {
        format!("dim={}", self.dim)
    }
}

/// Log-softmax along `dim` (`nn.LogSoftmax(dim)`), the usual last layer before `NLLLoss`.
#[derive(Module, Clone, Copy, Debug)]
pub struct LogSoftmax {
    /// The dim normalised over.
    pub dim: isize,
}

impl LogSoftmax {
    /// `LogSoftmax(dim)`.
    #[track_caller]
    pub fn new(dim: isize) -> LogSoftmax {
        LogSoftmax { dim }
    }
}

impl Module for LogSoftmax {
    #[track_caller]
    fn forward(&self, input: &Tensor) -> Tensor {
        input.log_softmax(self.dim)
    }
    #[track_caller]
    fn extra_repr(&self) -> String {
        format!("dim={}", self.dim)
    }
}
