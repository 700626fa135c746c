//! `#[derive(Module)]` for Ember's neural-network modules.
//!
//! The derive implements `ember_nn::ModuleVisit` for a struct: it walks the fields in declaration
//! order and hands each to `ember_nn::Member::visit_member` under the field's name, so
//! `Parameter`s, `Buffer`s and submodules (anything implementing `Module`, `Option`s and `Vec`s of
//! them) are found without hand-written lists; plain data fields (numbers, strings, …) are
//! skipped by their `Member` impls, and any other field can be marked `#[module(skip)]`.
//! The user still writes `impl Module for T { fn forward … }`.
//!
//! ```ignore
//! #[derive(Module)]
//! struct FizBuzNet { hidden: nn::Linear, out: nn::Linear }
//! impl nn::Module for FizBuzNet {
//!     fn forward(&self, x: &Tensor) -> Tensor { self.out.forward(&self.hidden.forward(x).sigmoid()) }
//! }
//! ```

use proc_macro::TokenStream;
use proc_macro2::TokenStream as TokenStream2;
use quote::quote;
use syn::{parse_macro_input, Data, DeriveInput, Fields, Index};

/// Derives `ember_nn::ModuleVisit` (the parameter/buffer/submodule walk) from the struct's
/// fields. Field names become PyTorch's dotted names (`hidden.weight`); tuple fields are named
/// `0`, `1`, …. `#[module(skip)]` leaves a field out.
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

fn expand(input: &DeriveInput) -> syn::Result<TokenStream2> {
    let name = &input.ident;
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
            ::ember_nn::Member::visit_member(&self.#access, #label, visitor);
        });
        visits_mut.push(quote! {
            ::ember_nn::Member::visit_member_mut(&mut self.#access, #label, visitor);
        });
    }
    let (impl_g, ty_g, where_g) = input.generics.split_for_impl();
    let type_name = name.to_string();
    Ok(quote! {
        impl #impl_g ::ember_nn::ModuleVisit for #name #ty_g #where_g {
            fn visit<'__a>(&'__a self, visitor: &mut dyn ::ember_nn::Visitor<'__a>) {
                #(#visits)*
                let _ = visitor;
            }
            fn visit_mut(&mut self, visitor: &mut dyn ::ember_nn::VisitorMut) {
                #(#visits_mut)*
                let _ = visitor;
            }
            fn as_any(&self) -> &dyn ::std::any::Any {
                self
            }
            fn as_any_mut(&mut self) -> &mut dyn ::std::any::Any {
                self
            }
            fn as_module(&self) -> &dyn ::ember_nn::Module {
                self
            }
            fn type_name(&self) -> &'static str {
                #type_name
            }
        }
    })
}
