//! The `#[sprint::main]` and `#[sprint::test]` attributes: they build a
//! Sprint runtime and run an `async fn` on it.
//!
//! Misuse gets a spanned error; the function is still emitted beside the
//! error so editors keep working.

use proc_macro::TokenStream;
use proc_macro2::{Span, TokenStream as Tokens};
use quote::{quote, quote_spanned, ToTokens};
use syn::spanned::Spanned;
use syn::{parse::Parser, ItemFn, LitInt, LitStr, Path};

const LEVELS: [(&str, &str); 5] = [
    ("basic", "Basic"),
    ("standard", "Standard"),
    ("aggressive", "Aggressive"),
    ("enterprise", "Enterprise"),
    ("turbo", "Turbo"),
];
const OPTIONS: &str = "level, workers, config, drain, log, crate (and for tests start_paused)";

#[derive(Default)]
struct Options {
    level: Option<(String, Span)>,
    workers: Option<usize>,
    config: Option<String>,
    drain_ms: Option<u64>,
    log: bool,
    start_paused: Option<Span>,
    krate: Option<Path>,
}

/// `"5s"`, `"500ms"`, `"2m"`, `"0s"` as milliseconds.
fn parse_duration_ms(text: &str) -> Result<u64, String> {
    let t = text.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: u64 = num
        .parse()
        .map_err(|_| format!("{text:?} does not start with a whole number"))?;
    let scale = match unit.trim() {
        "ms" => 1,
        "s" => 1_000,
        "m" | "min" => 60_000,
        other => {
            return Err(format!(
                "unknown unit {other:?} in {text:?}; use ms, s or m"
            ))
        }
    };
    n.checked_mul(scale)
        .ok_or_else(|| format!("{text:?} is too long"))
}

fn parse_options(args: TokenStream) -> syn::Result<Options> {
    let mut o = Options::default();
    let parser = syn::meta::parser(|meta| {
        let name = meta
            .path
            .get_ident()
            .map(|i| i.to_string())
            .unwrap_or_else(|| meta.path.to_token_stream().to_string());
        match name.as_str() {
            "level" => {
                let lit: LitStr = meta.value()?.parse()?;
                let v = lit.value();
                if !LEVELS.iter().any(|(n, _)| n.eq_ignore_ascii_case(v.trim())) {
                    return Err(syn::Error::new(
                        lit.span(),
                        format!("unknown level {v:?}; valid levels are basic, standard, aggressive, enterprise, turbo"),
                    ));
                }
                o.level = Some((v.trim().to_ascii_lowercase(), lit.span()));
            }
            "workers" => {
                let lit: LitInt = meta.value()?.parse()?;
                let n: usize = lit.base10_parse().map_err(|_| {
                    syn::Error::new(
                        lit.span(),
                        "`workers` takes a whole number, such as `workers = 2`",
                    )
                })?;
                if n == 0 {
                    return Err(syn::Error::new(lit.span(), "`workers` must be at least 1"));
                }
                o.workers = Some(n);
            }
            "config" => {
                let lit: LitStr = meta.value()?.parse()?;
                if lit.value().trim().is_empty() {
                    return Err(syn::Error::new(
                        lit.span(),
                        "`config` takes the path of a TOML file",
                    ));
                }
                o.config = Some(lit.value());
            }
            "drain" => {
                let lit: LitStr = meta.value()?.parse()?;
                let ms = parse_duration_ms(&lit.value()).map_err(|why| {
                    syn::Error::new(
                        lit.span(),
                        format!("`drain` takes a duration such as \"5s\" or \"500ms\": {why}"),
                    )
                })?;
                o.drain_ms = Some(ms);
            }
            "start_paused" => {
                let lit: syn::LitBool = meta.value()?.parse()?;
                if lit.value {
                    o.start_paused = Some(lit.span());
                }
            }
            "log" => {
                let lit: syn::LitBool = meta.value()?.parse()?;
                o.log = lit.value;
            }
            "crate" => {
                let lit: LitStr = meta.value()?.parse()?;
                o.krate = Some(lit.parse()?);
            }
            "flavor" | "worker_threads" => {
                return Err(meta.error(format!(
                    "`{name}` is a tokio option; Sprint's options are {OPTIONS} (for threads use `workers = N`)"
                )));
            }
            _ => {
                return Err(meta.error(format!(
                    "unknown option `{name}`; valid options are {OPTIONS}"
                )));
            }
        }
        Ok(())
    });
    parser.parse(args)?;
    Ok(o)
}

fn check_fn(f: &ItemFn, o: &Options, what: &str) -> syn::Result<()> {
    if f.sig.asyncness.is_none() {
        return Err(syn::Error::new(
            f.sig.fn_token.span(),
            format!("the `async` keyword is missing from the function declaration; `#[sprint::{what}]` runs an `async fn`"),
        ));
    }
    if !f.sig.inputs.is_empty() {
        return Err(syn::Error::new(
            f.sig.inputs.span(),
            format!("`#[sprint::{what}]` functions take no arguments"),
        ));
    }
    if !f.sig.generics.params.is_empty() {
        return Err(syn::Error::new(
            f.sig.generics.span(),
            format!("`#[sprint::{what}]` functions cannot be generic"),
        ));
    }
    if let Some(span) = o.start_paused {
        if what == "main" {
            return Err(syn::Error::new(
                span,
                "`start_paused` is for `#[sprint::test]`; in a program, pause the clock with `sprint::time::pause()`",
            ));
        }
        if o.workers.is_some_and(|n| n != 1) {
            return Err(syn::Error::new(
                span,
                "`start_paused` needs a runtime of one worker (it is the default with `start_paused`); drop `workers` or set `workers = 1`",
            ));
        }
    }
    if what == "main" && f.sig.ident != "main" {
        return Err(syn::Error::new(
            f.sig.ident.span(),
            "`#[sprint::main]` goes on `async fn main`; for other functions build a runtime with `sprint::Builder`",
        ));
    }
    Ok(())
}

fn options_tokens(o: &Options, krate: &Path) -> Tokens {
    let level = match &o.level {
        Some((name, span)) => {
            let variant = LEVELS
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, v)| syn::Ident::new(v, *span))
                .unwrap_or_else(|| unreachable!("validated"));
            quote!(::core::option::Option::Some(#krate::Level::#variant))
        }
        None => quote!(::core::option::Option::None),
    };
    let workers = match o.workers {
        Some(n) => quote!(::core::option::Option::Some(#n)),
        None => quote!(::core::option::Option::None),
    };
    let config = match &o.config {
        Some(p) => quote!(::core::option::Option::Some(#p)),
        None => quote!(::core::option::Option::None),
    };
    let drain = match o.drain_ms {
        Some(ms) => quote!(::core::option::Option::Some(#ms)),
        None => quote!(::core::option::Option::None),
    };
    let log = o.log;
    let start_paused = o.start_paused.is_some();
    quote! {
        #krate::__private::MainOptions {
            level: #level,
            workers: #workers,
            config: #config,
            drain_ms: #drain,
            log: #log,
            start_paused: #start_paused,
        }
    }
}

fn expand(args: TokenStream, item: TokenStream, what: &str) -> TokenStream {
    let f: ItemFn = match syn::parse(item.clone()) {
        Ok(f) => f,
        Err(e) => {
            let err = e.to_compile_error();
            let item: Tokens = item.into();
            return quote!(#item #err).into();
        }
    };
    let result = parse_options(args).and_then(|o| check_fn(&f, &o, what).map(|()| o));
    let o = match result {
        Ok(o) => o,
        Err(e) => {
            // Keep the function, so that editors and rustc still check its
            // body, but not as an `async fn main` (a second, noisy error).
            // It is emitted only beside the compile error, so never runs.
            let err = e.to_compile_error();
            let ItemFn {
                attrs,
                vis,
                mut sig,
                block,
            } = f;
            sig.asyncness = None;
            return quote! {
                #err
                #(#attrs)*
                #vis #sig {
                    let _body = async move #block;
                    ::core::unreachable!()
                }
            }
            .into();
        }
    };
    let krate = o
        .krate
        .clone()
        .unwrap_or_else(|| syn::parse_quote!(::sprint));
    let opts = options_tokens(&o, &krate);
    let ItemFn {
        attrs,
        vis,
        sig,
        block,
    } = f;
    let mut sig = sig;
    sig.asyncness = None;
    let body_span = block.span();
    let runner = if what == "main" {
        quote_spanned!(body_span=> #krate::__private::run_main)
    } else {
        quote_spanned!(body_span=> #krate::__private::run_test)
    };
    let test_attr = (what == "test").then(|| quote!(#[::core::prelude::v1::test]));
    quote! {
        #test_attr
        #(#attrs)*
        #vis #sig {
            let body = async #block;
            #runner(#opts, body)
        }
    }
    .into()
}

/// Runs `async fn main` on a Sprint runtime.
///
/// Options: `level = "basic" | "standard" | "aggressive" | "enterprise" |
/// "turbo"`, `workers = N`, `config = "file.toml"` (read at run time,
/// relative to the working directory), `crate = "path::to::sprint"`.
/// `drain = "5s"` (how long `main` may take to return after the first
/// SIGINT or SIGTERM; see `sprint::shutdown`), `log = true` (install a
/// `tracing` subscriber filtered by `SPRINT_LOG` unless the program set
/// one; Sprint installs none unasked). `SPRINT_*` variables still
/// override them. The first SIGINT or SIGTERM requests
/// `sprint::shutdown` and, for a program that watches it, waits up to the
/// drain deadline for `main` to return; then every task is cancelled
/// within the shutdown deadline. A second signal exits at once.
#[proc_macro_attribute]
pub fn main(args: TokenStream, item: TokenStream) -> TokenStream {
    expand(args, item, "main")
}

/// Runs an `async fn` test on a fresh Sprint runtime (Basic level unless
/// `level` says otherwise; `SPRINT_*` variables are not read). With
/// `start_paused = true` the runtime has one worker and its clock starts
/// paused: timers fire when `sprint::time::advance` moves it, or at once
/// when the runtime has nothing else to do (as tokio's `start_paused`).
#[proc_macro_attribute]
pub fn test(args: TokenStream, item: TokenStream) -> TokenStream {
    expand(args, item, "test")
}
