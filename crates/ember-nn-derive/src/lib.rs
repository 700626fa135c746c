//! `#[derive(Module)]` for Ember's neural-network modules.
//!
//! The derive implements `ember_nn::ModuleVisit` for a struct: it walks the fields in declaration
//! order and hands each to `ember_nn::Member::visit_member` under the field's name, so
//! `Parameter`s, `Buffer`s and submodules (anything implementing `Module`, `Option`s and `Vec`s of
//! them) are found without hand-written lists; plain data fields (numbers, strings, …) are
//! skipped by their `Member` impls, and any other field can be marked `#[module(skip)]`.
//! The user still writes `impl Module for T { fn forward … }`. The derive also implements
//! `Display` as PyTorch's `print(model)`, so `println!("{model}")` works for every module.
//!
//! The generated code names the `ember-nn` API as `::ember_nn` when the calling crate depends on
//! `ember-nn`, and as `::ember::nn` when it depends on the `ember` facade only (found in the
//! calling crate's `Cargo.toml`); `#[module(crate = "path::to::nn")]` on the struct overrides it.
//!
//! ```ignore
//! #[derive(Module)]
//! struct FizBuzNet { hidden: nn::Linear, out: nn::Linear }
//! impl nn::Module for FizBuzNet {
//!     fn forward(&self, x: &Tensor) -> Tensor { self.out.forward(&self.hidden.forward(x).sigmoid()) }
//! }
//! ```

#![warn(missing_docs)]

use proc_macro::TokenStream;
use proc_macro2::TokenStream as TokenStream2;
use quote::quote;
use syn::{parse_macro_input, Data, DeriveInput, Fields, Index};

/// Derives `ember_nn::ModuleVisit` (the parameter/buffer/submodule walk) from the struct's
/// fields, and `std::fmt::Display` as PyTorch's `print(model)` (the module's `repr()`). Field
/// names become PyTorch's dotted names (`hidden.weight`); tuple fields are named `0`, `1`, ….
/// `#[module(skip)]` leaves a field out.
#[proc_macro_derive(Module, attributes(module))]
pub fn derive_module(input: TokenStream) -> TokenStream {
    let input = parse_macro_input!(input as DeriveInput);
    match expand(&input) {
        Ok(ts) => ts.into(),
        Err(e) => e.to_compile_error().into(),
    }
}

fn skipped(attrs: &[syn::Attribute]) -> syn::Result<bool> {
    let mut skip = false;
    for a in attrs.iter().filter(|a| a.path().is_ident("module")) {
        a.parse_nested_meta(|m| {
            if m.path.is_ident("skip") {
                skip = true;
                Ok(())
            } else {
                Err(m.error("unknown `module` attribute (expected `#[module(skip)]`)"))
            }
        })?;
    }
    Ok(skip)
}

/// True when `manifest` (a Cargo.toml) declares a dependency on `package`.
fn depends_on(manifest: &str, package: &str) -> bool {
    manifest.lines().any(|line| {
        let l = line.trim_start();
        if let Some(rest) = l.strip_prefix(package) {
            // `ember-nn = …`, `ember-nn.workspace = true`, but not `ember-nn-derive = …`.
            return rest.starts_with([' ', '=', '.', '\t']);
        }
        l.starts_with('[') && l.contains(&format!("dependencies.{package}]"))
    })
}

/// The path of the `ember-nn` API as the calling crate sees it.
fn crate_path(input: &DeriveInput) -> syn::Result<TokenStream2> {
    for a in input.attrs.iter().filter(|a| a.path().is_ident("module")) {
        let mut path = None;
        a.parse_nested_meta(|m| {
            if m.path.is_ident("crate") {
                let s: syn::LitStr = m.value()?.parse()?;
                path = Some(s.parse::<syn::Path>()?);
                Ok(())
            } else {
                Err(m.error("unknown `module` attribute on the struct (expected `#[module(crate = \"…\")]`)"))
            }
        })?;
        if let Some(p) = path {
            return Ok(quote!(#p));
        }
    }
    if std::env::var("CARGO_PKG_NAME").as_deref() == Ok("ember-nn") {
        return Ok(quote!(::ember_nn));
    }
    let manifest = std::env::var("CARGO_MANIFEST_DIR")
        .ok()
        .and_then(|d| std::fs::read_to_string(std::path::Path::new(&d).join("Cargo.toml")).ok())
        .unwrap_or_default();
    if !depends_on(&manifest, "ember-nn") && depends_on(&manifest, "ember") {
        return Ok(quote!(::ember::nn));
    }
    Ok(quote!(::ember_nn))
}

fn expand(input: &DeriveInput) -> syn::Result<TokenStream2> {
    let name = &input.ident;
    let nn = crate_path(input)?;
    let Data::Struct(data) = &input.data else {
        return Err(syn::Error::new_spanned(
            input,
            "#[derive(Module)] supports structs only",
        ));
    };
    let mut visits = Vec::new();
    let mut visits_mut = Vec::new();
    let members: Vec<(TokenStream2, String, &syn::Field)> = match &data.fields {
        Fields::Named(f) => f
            .named
            .iter()
            .map(|f| {
                let id = f.ident.as_ref().unwrap();
                let s = id.to_string();
                (quote!(#id), s.trim_start_matches("r#").to_string(), f)
            })
            .collect(),
        Fields::Unnamed(f) => f
            .unnamed
            .iter()
            .enumerate()
            .map(|(i, f)| {
                let idx = Index::from(i);
                (quote!(#idx), i.to_string(), f)
            })
            .collect(),
        Fields::Unit => Vec::new(),
    };
    for (access, label, field) in members {
        if skipped(&field.attrs)? {
            continue;
        }
        visits.push(quote! {
            #nn::Member::visit_member(&self.#access, #label, visitor);
        });
        visits_mut.push(quote! {
            #nn::Member::visit_member_mut(&mut self.#access, #label, visitor);
        });
    }
    let (impl_g, ty_g, where_g) = input.generics.split_for_impl();
    let type_name = name.to_string();
    Ok(quote! {
        impl #impl_g #nn::ModuleVisit for #name #ty_g #where_g {
            fn visit<'__a>(&'__a self, visitor: &mut dyn #nn::Visitor<'__a>) {
                #(#visits)*
                let _ = visitor;
            }
            fn visit_mut(&mut self, visitor: &mut dyn #nn::VisitorMut) {
                #(#visits_mut)*
                let _ = visitor;
            }
            fn as_any(&self) -> &dyn ::std::any::Any {
                self
            }
            fn as_any_mut(&mut self) -> &mut dyn ::std::any::Any {
                self
            }
            fn as_module(&self) -> &dyn #nn::Module {
                self
            }
            fn type_name(&self) -> &'static str {
                #type_name
            }
        }

        // `println!("{model}")` prints PyTorch's `print(model)`.
        impl #impl_g ::std::fmt::Display for #name #ty_g #where_g {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                f.write_str(&#nn::Module::repr(self))
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::depends_on;

    #[test]
    fn finds_dependencies_in_a_manifest() {
        let m = "[package]\nname = \"app\"\n[dependencies]\nember = { path = \"../ember\" }\nember-nn-derive = \"0.1\"\n";
        assert!(depends_on(m, "ember"));
        assert!(!depends_on(m, "ember-nn"));
        assert!(depends_on(
            "[dependencies]\nember-nn.workspace = true\n",
            "ember-nn"
        ));
        assert!(depends_on(
            "[dependencies.ember-nn]\npath = \"x\"\n",
            "ember-nn"
        ));
        assert!(!depends_on("[dependencies]\nembers = \"1\"\n", "ember"));
    }
}
