//! The natives behind the Web platform basics: text encoding, base64, URL parsing, crypto,
//! logging, timers, clocks, stack positions and structured clone.

use std::sync::OnceLock;
use std::time::Instant;

use base64::Engine as _;
use hmac::{Hmac, Mac};
use rquickjs::function::Opt;
use rquickjs::prelude::List;
use rquickjs::{Ctx, Function, Object, Value};
use sha1::Sha1;
use sha2::{Digest, Sha256, Sha384, Sha512};

use super::{bytes, errors};
use crate::engine::state::{Owner, engine};

/// Registers this module's natives on `native`.
pub(crate) fn install<'js>(ctx: &Ctx<'js>, native: &Object<'js>) -> rquickjs::Result<()> {
    let f = super::registrar(native);
    f("utf8Encode", Function::new(ctx.clone(), utf8_encode))?;
    f("utf8Decode", Function::new(ctx.clone(), utf8_decode))?;
    f("latin1Encode", Function::new(ctx.clone(), latin1_encode))?;
    f("latin1Decode", Function::new(ctx.clone(), latin1_decode))?;
    f("btoa", Function::new(ctx.clone(), btoa))?;
    f("atob", Function::new(ctx.clone(), atob))?;
    f("urlParse", Function::new(ctx.clone(), url_parse))?;
    f("urlSet", Function::new(ctx.clone(), url_set))?;
    f("randomFill", Function::new(ctx.clone(), random_fill))?;
    f("randomUUID", Function::new(ctx.clone(), random_uuid))?;
    f("digest", Function::new(ctx.clone(), digest))?;
    f("hmac", Function::new(ctx.clone(), hmac))?;
    f(
        "constantTimeEqual",
        Function::new(ctx.clone(), constant_time_equal),
    )?;
    f("log", Function::new(ctx.clone(), log))?;
    f("timerStart", Function::new(ctx.clone(), timer_start))?;
    f(
        "timerCancel",
        Function::new(ctx.clone(), |id: f64| super::ops::cancel_timer(id as u64)),
    )?;
    f("monotonicMs", Function::new(ctx.clone(), monotonic_ms))?;
    f("mapPosition", Function::new(ctx.clone(), map_position))?;
    f("serialize", Function::new(ctx.clone(), serialize))?;
    f("deserialize", Function::new(ctx.clone(), deserialize))?;
    Ok(())
}

fn utf8_encode<'js>(ctx: Ctx<'js>, text: String) -> rquickjs::Result<Value<'js>> {
    bytes::uint8_array(&ctx, text.as_bytes())
}

/// UTF-8 to text; with `fatal`, `null` for invalid input (the prelude throws the `TypeError`).
fn utf8_decode<'js>(
    ctx: Ctx<'js>,
    data: Value<'js>,
    fatal: bool,
    ignore_bom: bool,
) -> rquickjs::Result<Value<'js>> {
    let decoded = bytes::with(&data, |raw| {
        let raw = if !ignore_bom {
            raw.strip_prefix(&[0xEF, 0xBB, 0xBF]).unwrap_or(raw)
        } else {
            raw
        };
        if fatal {
            std::str::from_utf8(raw).ok().map(str::to_owned)
        } else {
            Some(String::from_utf8_lossy(raw).into_owned())
        }
    })
    .ok_or_else(|| {
        errors::type_error(
            &ctx,
            "The provided value is not of type '(ArrayBuffer or ArrayBufferView)'.",
        )
    })?;
    match decoded {
        Some(text) => rquickjs::String::from_str(ctx, &text).map(|s| s.into_value()),
        None => Ok(Value::new_null(ctx)),
    }
}

/// Each character's low byte (for text already checked to be Latin-1).
fn latin1_encode<'js>(ctx: Ctx<'js>, text: String) -> rquickjs::Result<Value<'js>> {
    let out: Vec<u8> = text.chars().map(|c| c as u32 as u8).collect();
    bytes::uint8_array(&ctx, &out)
}

fn latin1_decode<'js>(ctx: Ctx<'js>, data: Value<'js>) -> rquickjs::Result<String> {
    bytes::with(&data, |raw| raw.iter().map(|b| *b as char).collect())
        .ok_or_else(|| errors::type_error(&ctx, "expected bytes"))
}

fn btoa(text: String) -> String {
    let raw: Vec<u8> = text.chars().map(|c| c as u32 as u8).collect();
    base64::engine::general_purpose::STANDARD.encode(raw)
}

/// Forgiving base64, as `atob` decodes it: ASCII whitespace ignored, padding optional; `null` for
/// invalid input.
fn atob(text: String) -> Option<String> {
    let clean: String = text
        .chars()
        .filter(|c| !matches!(c, ' ' | '\t' | '\n' | '\x0C' | '\r'))
        .collect();
    let trimmed = if clean.len().is_multiple_of(4) {
        clean.trim_end_matches('=').to_owned()
    } else {
        clean
    };
    if trimmed.len() % 4 == 1 || trimmed.contains('=') {
        return None;
    }
    let engine = base64::engine::GeneralPurpose::new(
        &base64::alphabet::STANDARD,
        base64::engine::GeneralPurposeConfig::new()
            .with_decode_padding_mode(base64::engine::DecodePaddingMode::RequireNone)
            .with_decode_allow_trailing_bits(true),
    );
    let decoded = engine.decode(trimmed).ok()?;
    Some(decoded.iter().map(|b| *b as char).collect())
}

/// The components of a URL, in the order the prelude reads them.
fn url_parts(url: &url::Url) -> Vec<String> {
    let host = match url.port() {
        Some(port) => format!("{}:{port}", url.host_str().unwrap_or("")),
        None => url.host_str().unwrap_or("").to_owned(),
    };
    let search = match url.query() {
        Some(q) if !q.is_empty() => format!("?{q}"),
        _ => String::new(),
    };
    let hash = match url.fragment() {
        Some(f) if !f.is_empty() => format!("#{f}"),
        _ => String::new(),
    };
    vec![
        url.as_str().to_owned(),
        format!("{}:", url.scheme()),
        url.username().to_owned(),
        url.password().unwrap_or("").to_owned(),
        host,
        url.host_str().unwrap_or("").to_owned(),
        url.port().map(|p| p.to_string()).unwrap_or_default(),
        url.path().to_owned(),
        search,
        hash,
        url.origin().ascii_serialization(),
    ]
}

fn url_parse(input: String, base: Option<String>) -> Option<Vec<String>> {
    let url = match base {
        Some(base) => url::Url::parse(&base).ok()?.join(&input).ok()?,
        None => url::Url::parse(&input).ok()?,
    };
    Some(url_parts(&url))
}

/// Sets one component with the URL Standard's setter rules; `null` when the URL cannot change.
fn url_set(href: String, field: String, value: String) -> Option<Vec<String>> {
    let mut url = url::Url::parse(&href).ok()?;
    match field.as_str() {
        "href" => url = url::Url::parse(&value).ok()?,
        "protocol" => {
            let scheme = value.split(':').next().unwrap_or("");
            url.set_scheme(scheme).ok()?;
        }
        "username" => url.set_username(&value).ok()?,
        "password" => url.set_password(Some(&value)).ok()?,
        "host" => {
            let (host, port) = match value.rsplit_once(':') {
                Some((h, p)) if p.chars().all(|c| c.is_ascii_digit()) => (h, Some(p)),
                _ => (value.as_str(), None),
            };
            url.set_host(Some(host)).ok()?;
            if let Some(port) = port {
                url.set_port(port.parse().ok()).ok()?;
            }
        }
        "hostname" => url.set_host(Some(&value)).ok()?,
        "port" => {
            if value.is_empty() {
                url.set_port(None).ok()?;
            } else {
                let digits: String = value.chars().take_while(char::is_ascii_digit).collect();
                url.set_port(Some(digits.parse().ok()?)).ok()?;
            }
        }
        "pathname" => url.set_path(&value),
        "search" => {
            let query = value.strip_prefix('?').unwrap_or(&value);
            url.set_query((!query.is_empty()).then_some(query));
        }
        "hash" => {
            let fragment = value.strip_prefix('#').unwrap_or(&value);
            url.set_fragment((!fragment.is_empty()).then_some(fragment));
        }
        _ => return None,
    }
    Some(url_parts(&url))
}

fn random_fill<'js>(ctx: Ctx<'js>, target: Value<'js>) -> rquickjs::Result<()> {
    let length = bytes::with(&target, <[u8]>::len)
        .ok_or_else(|| errors::type_error(&ctx, "expected a typed array"))?;
    let mut random = vec![0u8; length];
    getrandom::fill(&mut random).map_err(|e| errors::plain_error(&ctx, e.to_string()))?;
    let view: Object<'js> = target
        .into_object()
        .ok_or_else(|| errors::type_error(&ctx, "expected a typed array"))?;
    let set: Function<'js> = view.get("set")?;
    let source = bytes::uint8_array(&ctx, &random)?;
    set.call((rquickjs::function::This(view), source))
}

fn random_uuid(ctx: Ctx<'_>) -> rquickjs::Result<String> {
    let mut raw = [0u8; 16];
    getrandom::fill(&mut raw).map_err(|e| errors::plain_error(&ctx, e.to_string()))?;
    raw[6] = (raw[6] & 0x0f) | 0x40;
    raw[8] = (raw[8] & 0x3f) | 0x80;
    let hex: String = raw.iter().map(|b| format!("{b:02x}")).collect();
    Ok(format!(
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    ))
}

fn digest<'js>(ctx: Ctx<'js>, algorithm: String, data: Value<'js>) -> rquickjs::Result<Value<'js>> {
    let out = bytes::with(&data, |raw| match algorithm.as_str() {
        "sha1" => Some(Sha1::digest(raw).to_vec()),
        "sha256" => Some(Sha256::digest(raw).to_vec()),
        "sha384" => Some(Sha384::digest(raw).to_vec()),
        "sha512" => Some(Sha512::digest(raw).to_vec()),
        _ => None,
    })
    .flatten()
    .ok_or_else(|| errors::type_error(&ctx, format!("unsupported digest {algorithm}")))?;
    bytes::array_buffer(&ctx, &out)
}

fn hmac<'js>(
    ctx: Ctx<'js>,
    algorithm: String,
    key: Value<'js>,
    data: Value<'js>,
) -> rquickjs::Result<Value<'js>> {
    let key = bytes::copy(&key).ok_or_else(|| errors::type_error(&ctx, "expected key bytes"))?;
    fn sign<M: Mac + hmac::digest::KeyInit>(key: &[u8], data: &[u8]) -> Vec<u8> {
        let mut mac =
            <M as hmac::digest::KeyInit>::new_from_slice(key).expect("HMAC takes any key");
        mac.update(data);
        mac.finalize().into_bytes().to_vec()
    }
    let out = bytes::with(&data, |raw| match algorithm.as_str() {
        "sha1" => Some(sign::<Hmac<Sha1>>(&key, raw)),
        "sha256" => Some(sign::<Hmac<Sha256>>(&key, raw)),
        "sha384" => Some(sign::<Hmac<Sha384>>(&key, raw)),
        "sha512" => Some(sign::<Hmac<Sha512>>(&key, raw)),
        _ => None,
    })
    .flatten()
    .ok_or_else(|| errors::type_error(&ctx, format!("unsupported HMAC hash {algorithm}")))?;
    bytes::array_buffer(&ctx, &out)
}

fn constant_time_equal<'js>(a: Value<'js>, b: Value<'js>) -> bool {
    let (Some(a), Some(b)) = (bytes::copy(&a), bytes::copy(&b)) else {
        return false;
    };
    a.len() == b.len() && a.iter().zip(&b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// `console.*`: one structured log line, with the object the code runs for.
fn log(level: String, text: String) {
    emit(&level, &running_for(), &text);
}

/// The object the running JavaScript works for, as logs name it (`worker` for the Worker).
pub(crate) fn running_for() -> String {
    let object = engine().and_then(|engine| match engine.owner() {
        Owner::Instance(id) => engine.with_instance(id, |i| i.host.id()),
        Owner::Worker(_) => None,
    });
    object.map_or_else(
        || "worker".to_owned(),
        |id| {
            id.name()
                .map(str::to_owned)
                .unwrap_or_else(|| id.to_string())
        },
    )
}

fn emit(level: &str, object: &str, text: &str) {
    match level {
        "error" => tracing::error!(target: "console", object, "{text}"),
        "warn" => tracing::warn!(target: "console", object, "{text}"),
        "debug" => tracing::debug!(target: "console", object, "{text}"),
        _ => tracing::info!(target: "console", object, "{text}"),
    }
}

/// An exception nobody caught (in a timer, a listener, a promise nobody awaited).
pub(crate) fn log_uncaught(text: &str) {
    emit("error", &running_for(), text);
}

/// An exception nobody caught, in JavaScript that ran for `object` (see [`running_for`]).
pub(crate) fn log_uncaught_for(object: &str, text: &str) {
    emit("error", object, text);
}

fn timer_start<'js>(ctx: Ctx<'js>, id: f64, ms: f64, repeat: bool) -> rquickjs::Result<()> {
    super::ops::start_timer(&ctx, id as u64, ms, repeat)
}

fn monotonic_ms() -> f64 {
    static START: OnceLock<Instant> = OnceLock::new();
    START.get_or_init(Instant::now).elapsed().as_secs_f64() * 1000.0
}

/// An engine position mapped to the user's file, line and column.
fn map_position(file: String, line: u32, column: u32) -> List<(String, u32, u32)> {
    let mapped = engine().map(|engine| engine.source_maps.borrow().map(&file, line, column));
    List(mapped.unwrap_or((file, line, column)))
}

fn serialize<'js>(ctx: Ctx<'js>, value: Opt<Value<'js>>) -> rquickjs::Result<Value<'js>> {
    let value = value.0.unwrap_or_else(|| Value::new_undefined(ctx.clone()));
    let encoded = crate::serialize::serialize(&ctx, &value)?;
    bytes::uint8_array(&ctx, &encoded)
}

fn deserialize<'js>(ctx: Ctx<'js>, data: Value<'js>) -> rquickjs::Result<Value<'js>> {
    let encoded = bytes::copy(&data).ok_or_else(|| errors::type_error(&ctx, "expected bytes"))?;
    crate::serialize::deserialize(&ctx, &encoded)
}
