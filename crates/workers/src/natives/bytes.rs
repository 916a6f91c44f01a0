//! Bytes in and out of the engine: `ArrayBuffer`s and typed arrays read without a detour through
//! JavaScript, and new ones made from Rust bytes.

use rquickjs::{ArrayBuffer, Ctx, Object, TypedArray, Value};

/// A copy of the bytes of an `ArrayBuffer` or of the part of its buffer a view (typed array,
/// `DataView`) covers; `None` for anything else or a detached buffer.
pub(crate) fn copy<'js>(value: &Value<'js>) -> Option<Vec<u8>> {
    with(value, <[u8]>::to_vec)
}

/// Calls `f` with the bytes `value` holds (see [`copy`]), without copying them. `f` must not run
/// JavaScript: the bytes are the engine's.
pub(crate) fn with<'js, R>(value: &Value<'js>, f: impl FnOnce(&[u8]) -> R) -> Option<R> {
    let object = value.as_object()?;
    if let Some(buffer) = ArrayBuffer::from_object(object.clone()) {
        return read_buffer(&buffer, 0, buffer.len(), f);
    }
    // A view: its buffer, and the window it looks through.
    let buffer: Object<'js> = object.get("buffer").ok()?;
    let buffer = ArrayBuffer::from_object(buffer)?;
    let offset: usize = object.get("byteOffset").ok()?;
    let length: usize = object.get("byteLength").ok()?;
    read_buffer(&buffer, offset, length, f)
}

fn read_buffer<R>(
    buffer: &ArrayBuffer<'_>,
    offset: usize,
    length: usize,
    f: impl FnOnce(&[u8]) -> R,
) -> Option<R> {
    // SAFETY: the slice is used only by `f`, which runs no JavaScript (the contract of `with`),
    // so nothing can detach, resize or write the buffer while it is alive.
    #[allow(unsafe_code)]
    let bytes = unsafe { buffer.as_bytes() }?;
    let window = bytes.get(offset..offset.checked_add(length)?)?;
    Some(f(window))
}

/// A new `Uint8Array` holding `bytes`.
pub(crate) fn uint8_array<'js>(ctx: &Ctx<'js>, bytes: &[u8]) -> rquickjs::Result<Value<'js>> {
    TypedArray::<u8>::new_copy(ctx.clone(), bytes).map(TypedArray::into_value)
}

/// A new `ArrayBuffer` holding `bytes`.
pub(crate) fn array_buffer<'js>(ctx: &Ctx<'js>, bytes: &[u8]) -> rquickjs::Result<Value<'js>> {
    ArrayBuffer::new_copy(ctx.clone(), bytes).map(ArrayBuffer::into_value)
}
