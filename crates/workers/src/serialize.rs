//! Structured clone in V8's serialization format (version 15), as workerd writes attachments,
//! storage values and RPC payloads: primitives, strings, `BigInt`, plain objects, arrays (dense
//! and sparse), `Date`, `RegExp`, `Map`, `Set`, `ArrayBuffer`, typed arrays, `DataView`, boxed
//! primitives and errors, with shared references and cycles kept.
//!
//! Writing the format V8 writes keeps Cloudflare's size limits meaningful (an attachment of
//! 16,384 bytes there is 16,384 bytes here) and keeps stored values readable by a
//! format that does not change with the engine's version. Functions, symbols, promises and other
//! values that cannot be cloned throw a `DataCloneError`, as in browsers and workerd.

use std::collections::HashMap;

use rquickjs::function::Constructor;
use rquickjs::{Array, ArrayBuffer, Ctx, Function, Object, Type, Value};

use crate::natives::bytes;

/// The format version written.
const VERSION: u32 = 15;

/// Nesting depth past which a value is refused rather than overflowing the stack.
const MAX_DEPTH: usize = 2_000;

/// V8 keeps integers of this range as small integers ("Smis", 31 bits with pointer
/// compression), written with the `I` tag; other numbers are doubles.
const SMI_MIN: f64 = -((1i32 << 30) as f64);
const SMI_MAX: f64 = ((1i32 << 30) - 1) as f64;

mod tag {
    pub(super) const VERSION: u8 = 0xFF;
    pub(super) const PADDING: u8 = 0;
    pub(super) const VERIFY_COUNT: u8 = b'?';
    pub(super) const HOLE: u8 = b'-';
    pub(super) const UNDEFINED: u8 = b'_';
    pub(super) const NULL: u8 = b'0';
    pub(super) const TRUE: u8 = b'T';
    pub(super) const FALSE: u8 = b'F';
    pub(super) const INT32: u8 = b'I';
    pub(super) const UINT32: u8 = b'U';
    pub(super) const DOUBLE: u8 = b'N';
    pub(super) const BIGINT: u8 = b'Z';
    pub(super) const UTF8: u8 = b'S';
    pub(super) const ONE_BYTE: u8 = b'"';
    pub(super) const TWO_BYTE: u8 = b'c';
    pub(super) const REFERENCE: u8 = b'^';
    pub(super) const BEGIN_OBJECT: u8 = b'o';
    pub(super) const END_OBJECT: u8 = b'{';
    pub(super) const BEGIN_SPARSE: u8 = b'a';
    pub(super) const END_SPARSE: u8 = b'@';
    pub(super) const BEGIN_DENSE: u8 = b'A';
    pub(super) const END_DENSE: u8 = b'$';
    pub(super) const DATE: u8 = b'D';
    pub(super) const TRUE_OBJECT: u8 = b'y';
    pub(super) const FALSE_OBJECT: u8 = b'x';
    pub(super) const NUMBER_OBJECT: u8 = b'n';
    pub(super) const BIGINT_OBJECT: u8 = b'z';
    pub(super) const STRING_OBJECT: u8 = b's';
    pub(super) const REGEXP: u8 = b'R';
    pub(super) const BEGIN_MAP: u8 = b';';
    pub(super) const END_MAP: u8 = b':';
    pub(super) const BEGIN_SET: u8 = b'\'';
    pub(super) const END_SET: u8 = b',';
    pub(super) const ARRAY_BUFFER: u8 = b'B';
    pub(super) const ARRAY_BUFFER_VIEW: u8 = b'V';
    pub(super) const ERROR: u8 = b'r';
}

/// Typed array kinds: (constructor, V8 sub-tag).
const VIEWS: &[(&str, u8)] = &[
    ("Int8Array", b'b'),
    ("Uint8Array", b'B'),
    ("Uint8ClampedArray", b'C'),
    ("Int16Array", b'w'),
    ("Uint16Array", b'W'),
    ("Int32Array", b'd'),
    ("Uint32Array", b'D'),
    ("Float16Array", b'h'),
    ("Float32Array", b'f'),
    ("Float64Array", b'F'),
    ("BigInt64Array", b'q'),
    ("BigUint64Array", b'Q'),
    ("DataView", b'?'),
];

/// Error sub-tags.
mod error_tag {
    pub(super) const EVAL: u8 = b'E';
    pub(super) const RANGE: u8 = b'R';
    pub(super) const REFERENCE: u8 = b'F';
    pub(super) const SYNTAX: u8 = b'S';
    pub(super) const TYPE: u8 = b'T';
    pub(super) const URI: u8 = b'U';
    pub(super) const MESSAGE: u8 = b'm';
    pub(super) const CAUSE: u8 = b'c';
    pub(super) const STACK: u8 = b's';
    pub(super) const END: u8 = b'.';
}

/// RegExp flags as V8 numbers them.
const REGEXP_FLAGS: &[(char, u32)] = &[
    ('g', 1),
    ('i', 2),
    ('m', 4),
    ('y', 8),
    ('u', 16),
    ('s', 32),
    ('d', 128),
    ('v', 256),
];

/// Serializes `value`; a value that cannot be cloned throws a `DataCloneError`.
pub(crate) fn serialize<'js>(ctx: &Ctx<'js>, value: &Value<'js>) -> rquickjs::Result<Vec<u8>> {
    let mut writer = Writer {
        ctx: ctx.clone(),
        out: Vec::with_capacity(64),
        ids: HashMap::new(),
        next_id: 0,
    };
    writer.out.push(tag::VERSION);
    writer.varint(VERSION.into());
    writer.value(value, 0)?;
    Ok(writer.out)
}

/// Reads a value written by [`serialize`] (or by V8); malformed input throws a `DataCloneError`.
pub(crate) fn deserialize<'js>(ctx: &Ctx<'js>, bytes: &[u8]) -> rquickjs::Result<Value<'js>> {
    let mut reader = Reader {
        ctx: ctx.clone(),
        bytes,
        at: 0,
        version: 0,
        objects: Vec::new(),
    };
    if reader.peek() == Some(tag::VERSION) {
        reader.at += 1;
        reader.version = reader.varint()? as u32;
    }
    reader.value(0)
}

/// Throws `DataCloneError` with `message`.
fn clone_error(ctx: &Ctx<'_>, message: &str) -> rquickjs::Error {
    let made = ctx
        .globals()
        .get::<_, Constructor<'_>>("DOMException")
        .and_then(|c| c.construct::<_, Value<'_>>((message, "DataCloneError")));
    match made {
        Ok(error) => ctx.throw(error),
        Err(error) => error,
    }
}

/// JavaScript helpers the codec needs, compiled once per context and kept in its userdata.
mod userdata {
    // The derive's expansion elides a lifetime the workspace lints ask to name.
    #![allow(elided_lifetimes_in_paths)]
    use rquickjs::{Function, Object};

    #[derive(Clone, rquickjs::JsLifetime)]
    pub(super) struct Helpers<'js> {
        pub(super) object_prototype: Object<'js>,
        pub(super) to_string_tag: Function<'js>,
        pub(super) date_value: Function<'js>,
        pub(super) bigint_parts: Function<'js>,
        pub(super) make_bigint: Function<'js>,
        pub(super) map_entries: Function<'js>,
        pub(super) set_values: Function<'js>,
        pub(super) is_boxed: Function<'js>,
        pub(super) boxed: Function<'js>,
    }
}
use userdata::Helpers;

const HELPERS: &str = "[Object.prototype,\
  (v) => Object.prototype.toString.call(v).slice(8, -1),\
  (d) => Date.prototype.getTime.call(d),\
  (b) => [(b < 0n ? -b : b).toString(16), b < 0n],\
  (hex, negative) => negative ? -BigInt('0x' + hex) : BigInt('0x' + hex),\
  (m) => [...Map.prototype.entries.call(m)].flat(),\
  (s) => [...Set.prototype.values.call(s)],\
  (v) => { try { return typeof v.valueOf() !== 'object'; } catch { return false; } },\
  (v) => Object(v)]";

/// The codec's helpers of `ctx`'s context.
fn helpers<'js>(ctx: &Ctx<'js>) -> rquickjs::Result<Helpers<'js>> {
    if ctx.userdata::<Helpers<'js>>().is_none() {
        let list: Array<'js> = ctx.eval(HELPERS)?;
        let helpers = Helpers {
            object_prototype: list.get(0)?,
            to_string_tag: list.get(1)?,
            date_value: list.get(2)?,
            bigint_parts: list.get(3)?,
            make_bigint: list.get(4)?,
            map_entries: list.get(5)?,
            set_values: list.get(6)?,
            is_boxed: list.get(7)?,
            boxed: list.get(8)?,
        };
        let _ = ctx.store_userdata(helpers);
    }
    ctx.userdata::<Helpers<'js>>()
        .map(|helpers| helpers.clone())
        .ok_or(rquickjs::Error::Unknown)
}

struct Writer<'js> {
    ctx: Ctx<'js>,
    out: Vec<u8>,
    ids: HashMap<Object<'js>, u32>,
    next_id: u32,
}

impl<'js> Writer<'js> {
    fn varint(&mut self, mut value: u64) {
        loop {
            let byte = (value & 0x7f) as u8;
            value >>= 7;
            if value == 0 {
                self.out.push(byte);
                return;
            }
            self.out.push(byte | 0x80);
        }
    }

    fn zigzag(&mut self, value: i32) {
        self.varint(u64::from(((value << 1) ^ (value >> 31)) as u32));
    }

    fn double(&mut self, value: f64) {
        self.out.push(tag::DOUBLE);
        self.out.extend_from_slice(&value.to_le_bytes());
    }

    fn number(&mut self, value: f64) {
        let is_smi = value.fract() == 0.0
            && (SMI_MIN..=SMI_MAX).contains(&value)
            && !(value == 0.0 && value.is_sign_negative());
        if is_smi {
            self.out.push(tag::INT32);
            self.zigzag(value as i32);
        } else {
            self.double(value);
        }
    }

    fn string(&mut self, text: &str) {
        if text.chars().all(|c| (c as u32) <= 0xFF) {
            self.out.push(tag::ONE_BYTE);
            self.varint(text.chars().count() as u64);
            self.out.extend(text.chars().map(|c| c as u8));
        } else {
            let units: Vec<u16> = text.encode_utf16().collect();
            let byte_length = (units.len() * 2) as u64;
            // V8's reader expects two-byte strings aligned: pad so the data starts even.
            if (self.out.len() + 1 + varint_len(byte_length)) % 2 == 1 {
                self.out.push(tag::PADDING);
            }
            self.out.push(tag::TWO_BYTE);
            self.varint(byte_length);
            for unit in units {
                self.out.extend_from_slice(&unit.to_le_bytes());
            }
        }
    }

    fn bigint_contents(&mut self, value: &Value<'js>) -> rquickjs::Result<()> {
        let parts: Array<'js> = helpers(&self.ctx)?.bigint_parts.call((value.clone(),))?;
        let hex: String = parts.get(0)?;
        let negative: bool = parts.get(1)?;
        // Little-endian bytes, padded to whole 64-bit digits.
        let hex = if hex.len() % 2 == 1 {
            format!("0{hex}")
        } else {
            hex
        };
        let mut digits: Vec<u8> = hex
            .as_bytes()
            .rchunks(2)
            .map(|pair| {
                std::str::from_utf8(pair)
                    .ok()
                    .and_then(|text| u8::from_str_radix(text, 16).ok())
                    .unwrap_or(0)
            })
            .collect();
        while digits.last() == Some(&0) {
            digits.pop();
        }
        while !digits.len().is_multiple_of(8) {
            digits.push(0);
        }
        let bitfield = (digits.len() as u64) << 1 | u64::from(negative);
        self.varint(bitfield);
        self.out.extend_from_slice(&digits);
        Ok(())
    }

    fn value(&mut self, value: &Value<'js>, depth: usize) -> rquickjs::Result<()> {
        if depth > MAX_DEPTH {
            return Err(clone_error(
                &self.ctx,
                "the value is nested too deeply to be cloned",
            ));
        }
        match value.type_of() {
            Type::Uninitialized | Type::Undefined => self.out.push(tag::UNDEFINED),
            Type::Null => self.out.push(tag::NULL),
            Type::Bool => self.out.push(if value.as_bool().unwrap_or(false) {
                tag::TRUE
            } else {
                tag::FALSE
            }),
            Type::Int => self.number(f64::from(value.as_int().unwrap_or(0))),
            Type::Float => self.number(value.as_float().unwrap_or(f64::NAN)),
            Type::String => {
                let text = value
                    .as_string()
                    .map(|s| s.to_string())
                    .transpose()?
                    .unwrap_or_default();
                self.string(&text);
            }
            Type::BigInt => {
                self.out.push(tag::BIGINT);
                self.bigint_contents(value)?;
            }
            Type::Symbol => return Err(clone_error(&self.ctx, "Symbol() could not be cloned.")),
            Type::Function | Type::Constructor => {
                let name: String = value
                    .as_object()
                    .and_then(|o| o.get("name").ok())
                    .unwrap_or_default();
                return Err(clone_error(
                    &self.ctx,
                    &format!("function {name}() could not be cloned."),
                ));
            }
            Type::Promise => {
                return Err(clone_error(&self.ctx, "#<Promise> could not be cloned."));
            }
            Type::Array | Type::Object | Type::Exception | Type::Proxy => {
                let object = value.as_object().expect("an object type").clone();
                self.object(object, value, depth)?;
            }
            _ => return Err(clone_error(&self.ctx, "the value could not be cloned.")),
        }
        Ok(())
    }

    /// An object seen before becomes a reference; a new one gets the next id.
    fn reference(&mut self, object: &Object<'js>) -> bool {
        if let Some(id) = self.ids.get(object) {
            let id = *id;
            self.out.push(tag::REFERENCE);
            self.varint(id.into());
            return true;
        }
        self.ids.insert(object.clone(), self.next_id);
        self.next_id += 1;
        false
    }

    fn object(
        &mut self,
        object: Object<'js>,
        value: &Value<'js>,
        depth: usize,
    ) -> rquickjs::Result<()> {
        if self.ids.contains_key(&object) {
            self.reference(&object);
            return Ok(());
        }
        if value.is_array() {
            self.reference(&object);
            return self.array(&object, depth);
        }
        if let Some(buffer) = ArrayBuffer::from_object(object.clone()) {
            self.reference(&object);
            return self.array_buffer(&buffer);
        }
        if value.is_error() {
            self.reference(&object);
            return self.error(&object, depth);
        }
        let plain = {
            let helpers = helpers(&self.ctx)?;
            match object.get_prototype() {
                None => true,
                Some(prototype) => prototype == helpers.object_prototype,
            }
        };
        if plain {
            self.reference(&object);
            return self.plain_object(&object, depth);
        }
        let kind: String = helpers(&self.ctx)?.to_string_tag.call((value.clone(),))?;
        if let Some((_, sub_tag)) = VIEWS.iter().find(|(name, _)| *name == kind) {
            return self.view(&object, *sub_tag, depth);
        }
        match kind.as_str() {
            "Date" => {
                self.reference(&object);
                let time: f64 = helpers(&self.ctx)?.date_value.call((value.clone(),))?;
                self.out.push(tag::DATE);
                self.out.extend_from_slice(&time.to_le_bytes());
            }
            "RegExp" => {
                self.reference(&object);
                let source: String = object.get("source")?;
                let flags: String = object.get("flags")?;
                let bits = flags.chars().fold(0u32, |bits, flag| {
                    bits | REGEXP_FLAGS
                        .iter()
                        .find(|(c, _)| *c == flag)
                        .map_or(0, |(_, b)| *b)
                });
                self.out.push(tag::REGEXP);
                self.string(&source);
                self.varint(bits.into());
            }
            "Map" => {
                self.reference(&object);
                let entries: Array<'js> = helpers(&self.ctx)?.map_entries.call((value.clone(),))?;
                self.out.push(tag::BEGIN_MAP);
                for item in entries.iter::<Value<'js>>() {
                    self.value(&item?, depth + 1)?;
                }
                self.out.push(tag::END_MAP);
                self.varint(entries.len() as u64);
            }
            "Set" => {
                self.reference(&object);
                let items: Array<'js> = helpers(&self.ctx)?.set_values.call((value.clone(),))?;
                self.out.push(tag::BEGIN_SET);
                for item in items.iter::<Value<'js>>() {
                    self.value(&item?, depth + 1)?;
                }
                self.out.push(tag::END_SET);
                self.varint(items.len() as u64);
            }
            "Boolean" | "Number" | "String" | "BigInt"
                if helpers(&self.ctx)?
                    .is_boxed
                    .call::<_, bool>((value.clone(),))? =>
            {
                self.reference(&object);
                let inner: Value<'js> = object
                    .get::<_, Function<'js>>("valueOf")?
                    .call((rquickjs::function::This(value.clone()),))?;
                match kind.as_str() {
                    "Boolean" => self.out.push(if inner.as_bool().unwrap_or(false) {
                        tag::TRUE_OBJECT
                    } else {
                        tag::FALSE_OBJECT
                    }),
                    "Number" => {
                        self.out.push(tag::NUMBER_OBJECT);
                        let n = inner.as_number().unwrap_or(f64::NAN);
                        self.out.extend_from_slice(&n.to_le_bytes());
                    }
                    "String" => {
                        self.out.push(tag::STRING_OBJECT);
                        let text = inner
                            .as_string()
                            .map(|s| s.to_string())
                            .transpose()?
                            .unwrap_or_default();
                        self.string(&text);
                    }
                    _ => {
                        self.out.push(tag::BIGINT_OBJECT);
                        self.bigint_contents(&inner)?;
                    }
                }
            }
            "WeakMap" | "WeakSet" | "WeakRef" | "Promise" | "Generator" | "AsyncGenerator" => {
                return Err(clone_error(
                    &self.ctx,
                    &format!("#<{kind}> could not be cloned."),
                ));
            }
            _ => {
                self.reference(&object);
                self.plain_object(&object, depth)?;
            }
        }
        Ok(())
    }

    fn key(&mut self, key: &str) {
        // Integer-like keys are written as numbers, as V8 does.
        match key.parse::<u32>() {
            Ok(index) if index.to_string() == key && index != u32::MAX => {
                self.number(f64::from(index))
            }
            _ => self.string(key),
        }
    }

    fn plain_object(&mut self, object: &Object<'js>, depth: usize) -> rquickjs::Result<()> {
        self.out.push(tag::BEGIN_OBJECT);
        let mut count = 0u64;
        for key in object.keys::<String>() {
            let key = key?;
            let item: Value<'js> = object.get(key.as_str())?;
            self.key(&key);
            self.value(&item, depth + 1)?;
            count += 1;
        }
        self.out.push(tag::END_OBJECT);
        self.varint(count);
        Ok(())
    }

    fn array(&mut self, object: &Object<'js>, depth: usize) -> rquickjs::Result<()> {
        let length: u32 = object.get("length")?;
        let mut dense = true;
        for index in 0..length {
            if !object.contains_key(index)? {
                dense = false;
                break;
            }
        }
        if dense {
            self.out.push(tag::BEGIN_DENSE);
            self.varint(length.into());
            for index in 0..length {
                let item: Value<'js> = object.get(index)?;
                self.value(&item, depth + 1)?;
            }
            self.out.push(tag::END_DENSE);
            self.varint(0);
            self.varint(length.into());
        } else {
            self.out.push(tag::BEGIN_SPARSE);
            self.varint(length.into());
            let mut count = 0u64;
            for key in object.keys::<String>() {
                let key = key?;
                let item: Value<'js> = object.get(key.as_str())?;
                self.key(&key);
                self.value(&item, depth + 1)?;
                count += 1;
            }
            self.out.push(tag::END_SPARSE);
            self.varint(count);
            self.varint(length.into());
        }
        Ok(())
    }

    fn array_buffer(&mut self, buffer: &ArrayBuffer<'js>) -> rquickjs::Result<()> {
        let Some(data) = bytes::copy(buffer.as_value()) else {
            return Err(clone_error(
                &self.ctx,
                "An ArrayBuffer is detached and could not be cloned.",
            ));
        };
        self.out.push(tag::ARRAY_BUFFER);
        self.varint(data.len() as u64);
        self.out.extend_from_slice(&data);
        Ok(())
    }

    fn view(&mut self, object: &Object<'js>, sub_tag: u8, depth: usize) -> rquickjs::Result<()> {
        // The buffer goes first (and gets its id first), as in V8.
        let buffer: Value<'js> = object.get("buffer")?;
        self.value(&buffer, depth + 1)?;
        self.ids.insert(object.clone(), self.next_id);
        self.next_id += 1;
        let offset: u64 = object.get::<_, f64>("byteOffset")? as u64;
        let length: u64 = object.get::<_, f64>("byteLength")? as u64;
        self.out.push(tag::ARRAY_BUFFER_VIEW);
        self.out.push(sub_tag);
        self.varint(offset);
        self.varint(length);
        self.varint(0);
        Ok(())
    }

    fn error(&mut self, object: &Object<'js>, depth: usize) -> rquickjs::Result<()> {
        self.out.push(tag::ERROR);
        let name: String = object.get("name").unwrap_or_default();
        let prototype = match name.as_str() {
            "EvalError" => Some(error_tag::EVAL),
            "RangeError" => Some(error_tag::RANGE),
            "ReferenceError" => Some(error_tag::REFERENCE),
            "SyntaxError" => Some(error_tag::SYNTAX),
            "TypeError" => Some(error_tag::TYPE),
            "URIError" => Some(error_tag::URI),
            _ => None,
        };
        if let Some(prototype) = prototype {
            self.varint(prototype.into());
        }
        if object.contains_key("message")? {
            let message: String = object.get("message").unwrap_or_default();
            self.varint(error_tag::MESSAGE.into());
            self.string(&message);
        }
        if let Ok(stack) = object.get::<_, String>("stack") {
            self.varint(error_tag::STACK.into());
            self.string(&stack);
        }
        if object.contains_key("cause")? {
            let cause: Value<'js> = object.get("cause")?;
            self.varint(error_tag::CAUSE.into());
            self.value(&cause, depth + 1)?;
        }
        self.varint(error_tag::END.into());
        Ok(())
    }
}

fn varint_len(mut value: u64) -> usize {
    let mut n = 1;
    while value >= 0x80 {
        value >>= 7;
        n += 1;
    }
    n
}

struct Reader<'a, 'js> {
    ctx: Ctx<'js>,
    bytes: &'a [u8],
    at: usize,
    version: u32,
    /// Objects read so far, by id, for references.
    objects: Vec<Value<'js>>,
}

impl<'js> Reader<'_, 'js> {
    fn fail(&self, what: &str) -> rquickjs::Error {
        clone_error(
            &self.ctx,
            &format!(
                "Unable to deserialize cloned data: {what} at byte {}.",
                self.at
            ),
        )
    }

    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.at).copied()
    }

    fn byte(&mut self) -> rquickjs::Result<u8> {
        let byte = self.peek().ok_or_else(|| self.fail("unexpected end"))?;
        self.at += 1;
        Ok(byte)
    }

    fn varint(&mut self) -> rquickjs::Result<u64> {
        let mut value = 0u64;
        let mut shift = 0;
        loop {
            let byte = self.byte()?;
            if shift < 64 {
                value |= u64::from(byte & 0x7f) << shift;
            }
            if byte & 0x80 == 0 {
                return Ok(value);
            }
            shift += 7;
            if shift > 70 {
                return Err(self.fail("an overlong number"));
            }
        }
    }

    fn take(&mut self, n: usize) -> rquickjs::Result<&[u8]> {
        let end = self
            .at
            .checked_add(n)
            .filter(|end| *end <= self.bytes.len())
            .ok_or_else(|| self.fail("a length past the end"))?;
        let slice = &self.bytes[self.at..end];
        self.at = end;
        Ok(slice)
    }

    fn double(&mut self) -> rquickjs::Result<f64> {
        let raw: [u8; 8] = self.take(8)?.try_into().expect("eight bytes");
        Ok(f64::from_le_bytes(raw))
    }

    fn string_value(&mut self, tag: u8) -> rquickjs::Result<String> {
        let length = self.varint()? as usize;
        let raw = self.take(length)?;
        Ok(match tag {
            tag::ONE_BYTE => raw.iter().map(|b| *b as char).collect(),
            tag::TWO_BYTE => {
                if !length.is_multiple_of(2) {
                    return Err(self.fail("a two-byte string of odd length"));
                }
                let units: Vec<u16> = raw
                    .chunks_exact(2)
                    .map(|c| u16::from_le_bytes([c[0], c[1]]))
                    .collect();
                String::from_utf16_lossy(&units)
            }
            _ => String::from_utf8_lossy(raw).into_owned(),
        })
    }

    /// A string at the current position (its tag first, padding allowed).
    fn string(&mut self) -> rquickjs::Result<String> {
        loop {
            let tag = self.byte()?;
            match tag {
                tag::PADDING => continue,
                tag::ONE_BYTE | tag::TWO_BYTE | tag::UTF8 => return self.string_value(tag),
                _ => return Err(self.fail("a string expected")),
            }
        }
    }

    fn js_string(&self, text: &str) -> rquickjs::Result<Value<'js>> {
        rquickjs::String::from_str(self.ctx.clone(), text).map(|s| s.into_value())
    }

    fn construct(
        &self,
        class: &str,
        args: impl rquickjs::function::IntoArgs<'js>,
    ) -> rquickjs::Result<Value<'js>> {
        let constructor: Constructor<'js> = self.ctx.globals().get(class)?;
        constructor.construct(args)
    }

    fn bigint(&mut self) -> rquickjs::Result<Value<'js>> {
        let bitfield = self.varint()?;
        let negative = bitfield & 1 == 1;
        let length = (bitfield >> 1) as usize;
        let digits = self.take(length)?.to_vec();
        let mut hex = String::with_capacity(length * 2);
        for byte in digits.iter().rev() {
            hex.push_str(&format!("{byte:02x}"));
        }
        if hex.is_empty() {
            hex.push('0');
        }
        helpers(&self.ctx)?.make_bigint.call((hex, negative))
    }

    /// Reserves the next object id (filled in once the object exists).
    fn reserve(&mut self) -> usize {
        self.objects.push(Value::new_undefined(self.ctx.clone()));
        self.objects.len() - 1
    }

    fn value(&mut self, depth: usize) -> rquickjs::Result<Value<'js>> {
        if depth > MAX_DEPTH {
            return Err(self.fail("nesting too deep"));
        }
        let tag = self.byte()?;
        let ctx = self.ctx.clone();
        let value = match tag {
            tag::PADDING => return self.value(depth),
            tag::VERIFY_COUNT => {
                self.varint()?;
                return self.value(depth);
            }
            tag::UNDEFINED | tag::HOLE => Value::new_undefined(ctx),
            tag::NULL => Value::new_null(ctx),
            tag::TRUE => Value::new_bool(ctx, true),
            tag::FALSE => Value::new_bool(ctx, false),
            tag::INT32 => {
                let raw = self.varint()? as u32;
                let value = ((raw >> 1) as i32) ^ -((raw & 1) as i32);
                Value::new_int(ctx, value)
            }
            tag::UINT32 => Value::new_number(ctx, self.varint()? as f64),
            tag::DOUBLE => {
                let n = self.double()?;
                Value::new_number(ctx, n)
            }
            tag::BIGINT => self.bigint()?,
            tag::ONE_BYTE | tag::TWO_BYTE | tag::UTF8 => {
                let text = self.string_value(tag)?;
                self.js_string(&text)?
            }
            tag::REFERENCE => {
                let id = self.varint()? as usize;
                let object = self
                    .objects
                    .get(id)
                    .cloned()
                    .ok_or_else(|| self.fail("a reference to an unknown object"))?;
                // A view over a buffer written before follows a reference to the buffer.
                if self.peek() == Some(tag::ARRAY_BUFFER_VIEW)
                    && object
                        .as_object()
                        .and_then(|o| ArrayBuffer::from_object(o.clone()))
                        .is_some()
                {
                    self.at += 1;
                    return self.view(object);
                }
                return Ok(object);
            }
            tag::BEGIN_OBJECT => {
                let slot = self.reserve();
                let object = Object::new(ctx)?;
                self.objects[slot] = object.clone().into_value();
                self.properties(&object, tag::END_OBJECT, depth)?;
                object.into_value()
            }
            tag::BEGIN_DENSE => {
                let slot = self.reserve();
                let length = self.varint()? as usize;
                let array = Array::new(ctx)?;
                self.objects[slot] = array.clone().into_value();
                for index in 0..length {
                    if self.peek() == Some(tag::HOLE) {
                        self.at += 1;
                        continue;
                    }
                    let item = self.value(depth + 1)?;
                    array.set(index, item)?;
                }
                array.as_object().set("length", length as f64)?;
                self.properties(array.as_object(), tag::END_DENSE, depth)?;
                self.varint()?;
                array.into_value()
            }
            tag::BEGIN_SPARSE => {
                let slot = self.reserve();
                let length = self.varint()? as usize;
                let array = Array::new(ctx)?;
                self.objects[slot] = array.clone().into_value();
                array.as_object().set("length", length as f64)?;
                self.properties(array.as_object(), tag::END_SPARSE, depth)?;
                self.varint()?;
                array.into_value()
            }
            tag::DATE => {
                let time = self.double()?;
                let date = self.construct("Date", (time,))?;
                self.objects.push(date.clone());
                date
            }
            tag::TRUE_OBJECT | tag::FALSE_OBJECT => {
                let value: Value<'js> =
                    helpers(&self.ctx)?.boxed.call((tag == tag::TRUE_OBJECT,))?;
                self.objects.push(value.clone());
                value
            }
            tag::NUMBER_OBJECT => {
                let n = self.double()?;
                let value: Value<'js> = helpers(&self.ctx)?.boxed.call((n,))?;
                self.objects.push(value.clone());
                value
            }
            tag::BIGINT_OBJECT => {
                let inner = self.bigint()?;
                let value: Value<'js> = helpers(&self.ctx)?.boxed.call((inner,))?;
                self.objects.push(value.clone());
                value
            }
            tag::STRING_OBJECT => {
                let text = self.string()?;
                let value = self.construct("String", (text,))?;
                self.objects.push(value.clone());
                value
            }
            tag::REGEXP => {
                let source = self.string()?;
                let bits = self.varint()? as u32;
                let flags: String = REGEXP_FLAGS
                    .iter()
                    .filter(|(_, b)| bits & b != 0)
                    .map(|(c, _)| *c)
                    .collect();
                let value = self.construct("RegExp", (source, flags))?;
                self.objects.push(value.clone());
                value
            }
            tag::BEGIN_MAP => {
                let slot = self.reserve();
                let map = self.construct("Map", ())?;
                self.objects[slot] = map.clone();
                let set: Function<'js> = map.as_object().expect("a map").get("set")?;
                loop {
                    if self.peek() == Some(tag::END_MAP) {
                        self.at += 1;
                        self.varint()?;
                        break;
                    }
                    let key = self.value(depth + 1)?;
                    let item = self.value(depth + 1)?;
                    set.call::<_, ()>((rquickjs::function::This(map.clone()), key, item))?;
                }
                map
            }
            tag::BEGIN_SET => {
                let slot = self.reserve();
                let set_value = self.construct("Set", ())?;
                self.objects[slot] = set_value.clone();
                let add: Function<'js> = set_value.as_object().expect("a set").get("add")?;
                loop {
                    if self.peek() == Some(tag::END_SET) {
                        self.at += 1;
                        self.varint()?;
                        break;
                    }
                    let item = self.value(depth + 1)?;
                    add.call::<_, ()>((rquickjs::function::This(set_value.clone()), item))?;
                }
                set_value
            }
            tag::ARRAY_BUFFER => {
                let length = self.varint()? as usize;
                let data = self.take(length)?.to_vec();
                let buffer = ArrayBuffer::new(ctx, data)?.into_value();
                let slot = self.objects.len();
                self.objects.push(buffer.clone());
                if self.peek() == Some(tag::ARRAY_BUFFER_VIEW) {
                    self.at += 1;
                    let _ = slot;
                    return self.view(buffer);
                }
                buffer
            }
            tag::ERROR => self.error(depth)?,
            other => {
                return Err(self.fail(&format!("an unsupported tag {:?}", other as char)));
            }
        };
        Ok(value)
    }

    fn view(&mut self, buffer: Value<'js>) -> rquickjs::Result<Value<'js>> {
        let sub_tag = self.byte()?;
        let offset = self.varint()? as f64;
        let length = self.varint()? as f64;
        if self.version >= 14 {
            self.varint()?;
        }
        let (class, element) = match VIEWS.iter().find(|(_, t)| *t == sub_tag) {
            Some((class, _)) => (*class, element_size(class)),
            None => return Err(self.fail("an unknown typed array")),
        };
        let value = if class == "DataView" {
            self.construct(class, (buffer, offset, length))?
        } else {
            self.construct(class, (buffer, offset, length / element as f64))?
        };
        self.objects.push(value.clone());
        Ok(value)
    }

    fn properties(&mut self, object: &Object<'js>, end: u8, depth: usize) -> rquickjs::Result<()> {
        loop {
            if self.peek() == Some(end) {
                self.at += 1;
                self.varint()?;
                return Ok(());
            }
            let key = self.value(depth + 1)?;
            let item = self.value(depth + 1)?;
            let key = match key.as_number() {
                Some(n) => format!("{n}"),
                None => key
                    .as_string()
                    .map(|s| s.to_string())
                    .transpose()?
                    .ok_or_else(|| self.fail("a property key that is not a string or number"))?,
            };
            object.set(key.as_str(), item)?;
        }
    }

    fn error(&mut self, depth: usize) -> rquickjs::Result<Value<'js>> {
        let slot = self.reserve();
        let mut class = "Error";
        let mut message: Option<String> = None;
        let mut stack: Option<String> = None;
        let mut cause: Option<Value<'js>> = None;
        loop {
            let sub_tag = self.varint()? as u8;
            match sub_tag {
                error_tag::EVAL => class = "EvalError",
                error_tag::RANGE => class = "RangeError",
                error_tag::REFERENCE => class = "ReferenceError",
                error_tag::SYNTAX => class = "SyntaxError",
                error_tag::TYPE => class = "TypeError",
                error_tag::URI => class = "URIError",
                error_tag::MESSAGE => message = Some(self.string()?),
                error_tag::STACK => stack = Some(self.string()?),
                error_tag::CAUSE => cause = Some(self.value(depth + 1)?),
                error_tag::END => break,
                _ => return Err(self.fail("an unknown error field")),
            }
        }
        let error = self.construct(class, (message.unwrap_or_default(),))?;
        if let Some(object) = error.as_object() {
            if let Some(stack) = stack {
                object.set("stack", stack)?;
            }
            if let Some(cause) = cause {
                object.set("cause", cause)?;
            }
        }
        self.objects[slot] = error.clone();
        Ok(error)
    }
}

fn element_size(class: &str) -> usize {
    match class {
        "Int16Array" | "Uint16Array" | "Float16Array" => 2,
        "Int32Array" | "Uint32Array" | "Float32Array" => 4,
        "Float64Array" | "BigInt64Array" | "BigUint64Array" => 8,
        _ => 1,
    }
}

#[cfg(test)]
mod tests;
