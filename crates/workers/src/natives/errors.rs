//! Errors across the boundary: the SDK's errors become the JavaScript errors Cloudflare throws
//! for the same misuse (`TypeError`, `RangeError`, `DOMException`s), and thrown JavaScript
//! values become messages with their stack in the user's files.

use dormouse_sdk::{Error, ErrorKind};
use rquickjs::function::Constructor;
use rquickjs::{Ctx, Object, Value};

/// A JavaScript error object for `error` (not thrown).
pub(crate) fn to_js<'js>(ctx: &Ctx<'js>, error: &Error) -> Value<'js> {
    let (class, dom_name) = match error.kind() {
        ErrorKind::Type => ("TypeError", None),
        ErrorKind::Range => ("RangeError", None),
        ErrorKind::InvalidAccess => ("DOMException", Some("InvalidAccessError")),
        ErrorKind::Syntax => ("DOMException", Some("SyntaxError")),
        _ => ("Error", None),
    };
    let made = (|| -> rquickjs::Result<Value<'js>> {
        let constructor: Constructor<'js> = ctx.globals().get(class)?;
        let value: Value<'js> = match dom_name {
            Some(name) => constructor.construct((error.text(), name))?,
            None => constructor.construct((error.text(),))?,
        };
        if let Some(object) = value.as_object() {
            match error.kind() {
                ErrorKind::Overloaded => {
                    object.set("overloaded", true)?;
                    object.set("retryable", true)?;
                }
                ErrorKind::Reset => object.set("retryable", true)?,
                _ => {}
            }
        }
        Ok(value)
    })();
    made.unwrap_or_else(|_| {
        ctx.catch();
        rquickjs::String::from_str(ctx.clone(), error.text())
            .map(|s| s.into_value())
            .unwrap_or_else(|_| Value::new_undefined(ctx.clone()))
    })
}

/// A value JavaScript threw, as the error its caller on the other side of a stub gets: the kind
/// from its name (which the caller's error takes back from its class), the message alone.
pub(crate) fn from_js<'js>(ctx: &Ctx<'js>, value: &Value<'js>) -> Error {
    if let Some(object) = value.as_object()
        && value.is_error()
    {
        let name: String = object.get("name").unwrap_or_default();
        let message: String = object.get("message").unwrap_or_default();
        let kind = match name.as_str() {
            "TypeError" => ErrorKind::Type,
            "RangeError" => ErrorKind::Range,
            "InvalidAccessError" => ErrorKind::InvalidAccess,
            _ => ErrorKind::User,
        };
        return Error::new(kind, message);
    }
    Error::new(ErrorKind::User, inspect(ctx, value))
}

/// Throws `error` as its JavaScript counterpart; return the result from a native.
pub(crate) fn throw(ctx: &Ctx<'_>, error: &Error) -> rquickjs::Error {
    let value = to_js(ctx, error);
    ctx.throw(value)
}

/// Throws a `TypeError` with `message`.
pub(crate) fn type_error(ctx: &Ctx<'_>, message: impl Into<String>) -> rquickjs::Error {
    throw(ctx, &Error::new(ErrorKind::Type, message.into()))
}

/// Throws an `Error` with `message`.
pub(crate) fn plain_error(ctx: &Ctx<'_>, message: impl Into<String>) -> rquickjs::Error {
    throw(ctx, &Error::new(ErrorKind::InvalidState, message.into()))
}

/// How a thrown value reads in a log: an error's stack (already in the user's files: the
/// prelude's `prepareStackTrace` maps it), anything else inspected.
pub(crate) fn describe<'js>(ctx: &Ctx<'js>, value: &Value<'js>) -> String {
    if let Some(object) = value.as_object() {
        if let Ok(stack) = object.get::<_, String>("stack")
            && !stack.is_empty()
        {
            let head = error_head(object);
            // The stack's own first line (when it has one) was written when the error was made,
            // possibly before its name was set (a `DOMException`'s): the name as it is now wins.
            let frames = match stack.split_once('\n') {
                Some((first, rest)) if !first.trim_start().starts_with("at ") => rest,
                None if !stack.trim_start().starts_with("at ") => "",
                _ => stack.as_str(),
            };
            return if frames.is_empty() {
                head
            } else {
                format!("{head}\n{frames}")
            };
        }
        if value.is_error() {
            return error_head(object);
        }
    }
    inspect(ctx, value)
}

fn error_head(object: &Object<'_>) -> String {
    let name: String = object.get("name").unwrap_or_else(|_| "Error".to_owned());
    let message: String = object.get("message").unwrap_or_default();
    if message.is_empty() {
        name
    } else {
        format!("{name}: {message}")
    }
}

/// `String(value)`, or its type when even that throws.
pub(crate) fn inspect<'js>(ctx: &Ctx<'js>, value: &Value<'js>) -> String {
    if let Some(text) = value.as_string() {
        return text.to_string().unwrap_or_default();
    }
    let converted: rquickjs::Result<rquickjs::String<'js>> =
        rquickjs::convert::Coerced::<rquickjs::String<'js>>::from_js(ctx, value.clone())
            .map(|c| c.0);
    match converted {
        Ok(text) => text.to_string().unwrap_or_default(),
        Err(_) => {
            ctx.catch();
            format!("<{}>", value.type_name())
        }
    }
}

/// The pending exception of `ctx` (after a call failed), described.
pub(crate) fn caught(ctx: &Ctx<'_>) -> String {
    let value = ctx.catch();
    if value.is_undefined() || value.type_of() == rquickjs::Type::Uninitialized {
        return "unknown error".to_owned();
    }
    describe(ctx, &value)
}

use rquickjs::FromJs as _;
