//! `#[derive(Args)]` for switchboard plugins: a typed callback's arguments. Use it through
//! `switchboard_plugin_api::prelude`, never directly.

use proc_macro::TokenStream;
use proc_macro2::TokenStream as Tokens;
use quote::quote;
use syn::{parse_macro_input, Data, DeriveInput, Fields, GenericParam, LitStr};

/// Implements `switchboard_plugin_api::TypedArgs` for a struct with named fields and at
/// most one lifetime, so that a callback can take it as its arguments:
///
/// ```ignore
/// #[derive(Args)]
/// struct Joined<'a> { name: &'a str, email: &'a str }
/// ```
///
/// Each field is read from the argument of the same name (or `#[serde(rename = "...")]`)
/// with serde; `#[serde(default)]` fields take their default when the argument is absent
/// or null.
#[proc_macro_derive(Args, attributes(serde))]
pub fn derive_args(input: TokenStream) -> TokenStream {
    let input = parse_macro_input!(input as DeriveInput);
    expand(&input)
        .unwrap_or_else(syn::Error::into_compile_error)
        .into()
}

/// One field: its Rust name, the argument it reads, its type, and whether it has a default.
struct Field {
    ident: syn::Ident,
    argument: String,
    ty: syn::Type,
    default: bool,
}

fn expand(input: &DeriveInput) -> syn::Result<Tokens> {
    let name = &input.ident;
    let Data::Struct(data) = &input.data else {
        return Err(not_a_struct(name));
    };
    let Fields::Named(named) = &data.fields else {
        return Err(not_a_struct(name));
    };
    for attr in &input.attrs {
        if attr.path().is_ident("serde") {
            attr.parse_nested_meta(|meta| {
                if meta.path.is_ident("deny_unknown_fields") {
                    Ok(())
                } else {
                    Err(meta.error("`Args` structs take no serde container attributes but `deny_unknown_fields`; rename fields one by one"))
                }
            })?;
        }
    }
    let fields = named
        .named
        .iter()
        .map(field)
        .collect::<syn::Result<Vec<Field>>>()?;

    let mut lifetimes = Vec::new();
    for param in &input.generics.params {
        match param {
            GenericParam::Lifetime(def) => lifetimes.push(def.lifetime.clone()),
            other => {
                return Err(syn::Error::new_spanned(
                    other,
                    "`Args` structs take no type or const parameters, only one lifetime for borrowed strings",
                ))
            }
        }
    }
    let (impl_generics, self_type, at) =
        match lifetimes.as_slice() {
            [] => (quote! {}, quote! { #name }, quote! { #name }),
            [lifetime] => (
                quote! { <#lifetime> },
                quote! { #name<#lifetime> },
                quote! { #name<'__sb> },
            ),
            [_, second, ..] => return Err(syn::Error::new_spanned(
                second,
                "`Args` structs take at most one lifetime: borrow every string for the same call",
            )),
        };

    let krate = quote! { ::switchboard_plugin_api };
    let names = fields.iter().map(|f| &f.argument);
    let reads = fields.iter().map(|f| {
        let (argument, ty, default) = (&f.argument, &f.ty, f.default);
        quote! { #krate::__private::field::<#ty>(#argument, #default) }
    });
    let inits = fields.iter().enumerate().map(|(index, f)| {
        let (ident, argument) = (&f.ident, &f.argument);
        if f.default {
            quote! { #ident: args.field_or_default(#index, #argument)? }
        } else {
            quote! { #ident: args.field(#index, #argument)? }
        }
    });
    Ok(quote! {
        impl #impl_generics #krate::TypedArgs for #self_type {
            type At<'__sb> = #at;
            const NAMES: &'static [&'static str] = &[#(#names),*];

            fn reads() -> ::std::vec::Vec<#krate::abi::ArgDecl> {
                ::std::vec![#(#reads),*]
            }

            #[inline(always)]
            fn read<'__sb>(
                args: #krate::__private::ArgsAt<'__sb>,
            ) -> #krate::Result<Self::At<'__sb>> {
                ::std::result::Result::Ok(#name { #(#inits),* })
            }
        }
    })
}

fn not_a_struct(name: &syn::Ident) -> syn::Error {
    syn::Error::new_spanned(
        name,
        "`Args` needs a struct with named fields: each field is one argument of the event",
    )
}

fn field(field: &syn::Field) -> syn::Result<Field> {
    let Some(ident) = field.ident.clone() else {
        return Err(syn::Error::new_spanned(field, "`Args` fields need names"));
    };
    let mut argument = ident.to_string().trim_start_matches("r#").to_owned();
    let mut default = false;
    for attr in &field.attrs {
        if !attr.path().is_ident("serde") {
            continue;
        }
        attr.parse_nested_meta(|meta| {
            if meta.path.is_ident("rename") {
                argument = meta.value()?.parse::<LitStr>()?.value();
                Ok(())
            } else if meta.path.is_ident("default") {
                default = true;
                Ok(())
            } else if meta.path.is_ident("borrow") {
                Ok(())
            } else {
                Err(meta.error(
                    "`Args` fields understand `#[serde(rename = \"...\")]` and `#[serde(default)]`; for more, read the argument into a type of your own that derives Deserialize",
                ))
            }
        })?;
    }
    Ok(Field {
        ident,
        argument,
        ty: field.ty.clone(),
        default,
    })
}
