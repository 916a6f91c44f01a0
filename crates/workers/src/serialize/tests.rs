use rquickjs::{Context, Runtime};

use super::*;

/// Runs `f` in a fresh context that has the `DOMException` a clone error needs.
fn with_context(f: impl FnOnce(&Ctx<'_>)) {
    let runtime = Runtime::new().unwrap();
    let context = Context::full(&runtime).unwrap();
    context.with(|ctx| {
        ctx.eval::<(), _>(
            "globalThis.DOMException = class DOMException extends Error { constructor(m, n) { super(m); this.name = n; } };",
        )
        .unwrap();
        f(&ctx);
    });
}

fn bytes_of(ctx: &Ctx<'_>, source: &str) -> Vec<u8> {
    let value: Value<'_> = ctx.eval(source).unwrap();
    serialize(ctx, &value).unwrap()
}

/// `source` survives a round trip: `check` (a function of the copy and the original) holds.
fn round_trip(ctx: &Ctx<'_>, source: &str, check: &str) {
    let value: Value<'_> = ctx.eval(source).unwrap();
    let bytes = serialize(ctx, &value).unwrap();
    let copy = deserialize(ctx, &bytes).unwrap();
    let check: Function<'_> = ctx.eval(check).unwrap();
    let ok: bool = check.call((copy, value)).unwrap();
    assert!(ok, "{source} did not survive: {bytes:?}");
}

#[test]
fn writes_what_v8_writes() {
    with_context(|ctx| {
        assert_eq!(bytes_of(ctx, "'hi'"), [0xFF, 0x0F, b'"', 2, b'h', b'i']);
        assert_eq!(bytes_of(ctx, "1"), [0xFF, 0x0F, b'I', 2]);
        assert_eq!(bytes_of(ctx, "-1"), [0xFF, 0x0F, b'I', 1]);
        let mut big = vec![0xFF, 0x0F, b'N'];
        big.extend_from_slice(&2147483648f64.to_le_bytes());
        assert_eq!(bytes_of(ctx, "2 ** 31"), big);
        assert_eq!(
            bytes_of(ctx, "({userId: 'a'})"),
            [
                0xFF, 0x0F, b'o', b'"', 6, b'u', b's', b'e', b'r', b'I', b'd', b'"', 1, b'a', b'{',
                1
            ]
        );
        assert_eq!(
            bytes_of(ctx, "[1, 2]"),
            [0xFF, 0x0F, b'A', 2, b'I', 2, b'I', 4, b'$', 0, 2]
        );
        assert_eq!(
            bytes_of(ctx, "new Map([[1, 'a']])"),
            [0xFF, 0x0F, b';', b'I', 2, b'"', 1, b'a', b':', 2]
        );
        assert_eq!(
            bytes_of(ctx, "new Uint8Array([1, 2])"),
            [0xFF, 0x0F, b'B', 2, 1, 2, b'V', b'B', 0, 2, 0]
        );
        // A string with a character past Latin-1 is UTF-16, its data at an even offset (padded
        // when it would not be).
        assert_eq!(bytes_of(ctx, "'€'"), [0xFF, 0x0F, b'c', 2, 0xAC, 0x20]);
        assert_eq!(
            bytes_of(ctx, "[true, '€']"),
            [
                0xFF, 0x0F, b'A', 2, b'T', 0, b'c', 2, 0xAC, 0x20, b'$', 0, 2
            ]
        );
        assert_eq!(bytes_of(ctx, "undefined"), [0xFF, 0x0F, b'_']);
        assert_eq!(bytes_of(ctx, "null"), [0xFF, 0x0F, b'0']);
        assert_eq!(bytes_of(ctx, "true"), [0xFF, 0x0F, b'T']);
    });
}

#[test]
fn structured_clone_types_come_back_as_themselves() {
    with_context(|ctx| {
        round_trip(
            ctx,
            "({ n: 1.5, s: 'x', b: true, u: undefined, z: null, big: 12345678901234567890n, neg: -5n })",
            "(c) => c.n === 1.5 && c.s === 'x' && c.b === true && 'u' in c && c.u === undefined && c.z === null && c.big === 12345678901234567890n && c.neg === -5n",
        );
        round_trip(
            ctx,
            "new Date(1700000000123)",
            "(c) => c instanceof Date && c.getTime() === 1700000000123",
        );
        round_trip(
            ctx,
            "new Map([['a', new Set([1, 2])], [3, { deep: [1, [2, [3]]] }]])",
            "(c) => c instanceof Map && c.get('a') instanceof Set && c.get('a').has(2) && c.get(3).deep[1][1][0] === 3",
        );
        round_trip(
            ctx,
            "/ab+c/gi",
            "(c) => c instanceof RegExp && c.source === 'ab+c' && c.flags === 'gi'",
        );
        round_trip(
            ctx,
            "({ buf: new Uint8Array([1, 2, 3]).buffer, view: new Float64Array([1.5, -2]), dv: new DataView(new ArrayBuffer(4)) })",
            "(c) => c.buf instanceof ArrayBuffer && new Uint8Array(c.buf)[2] === 3 && c.view instanceof Float64Array && c.view[1] === -2 && c.dv instanceof DataView && c.dv.byteLength === 4",
        );
        round_trip(
            ctx,
            "[1, , 3]",
            "(c) => Array.isArray(c) && c.length === 3 && !(1 in c) && c[2] === 3",
        );
        round_trip(
            ctx,
            "(() => { const e = new TypeError('bad'); e.cause = 'why'; return e; })()",
            "(c) => c instanceof TypeError && c.message === 'bad' && c.cause === 'why'",
        );
        round_trip(
            ctx,
            "[Object(1), Object('s'), Object(false)]",
            "(c) => typeof c[0] === 'object' && c[0].valueOf() === 1 && c[1].valueOf() === 's' && c[2].valueOf() === false",
        );
        round_trip(
            ctx,
            "({ 'ünï': 'çödé ✓', 7: 'seven' })",
            "(c) => c['ünï'] === 'çödé ✓' && c[7] === 'seven'",
        );
        round_trip(
            ctx,
            "new (class Session { constructor() { this.id = 'x'; } })()",
            "(c) => c.id === 'x' && Object.getPrototypeOf(c) === Object.prototype",
        );
    });
}

#[test]
fn shared_references_and_cycles_are_kept() {
    with_context(|ctx| {
        round_trip(
            ctx,
            "(() => { const shared = { v: 1 }; const o = { a: shared, b: shared }; o.self = o; return o; })()",
            "(c) => c.a === c.b && c.self === c && c.a.v === 1",
        );
        round_trip(
            ctx,
            "(() => { const buf = new ArrayBuffer(8); return [new Uint8Array(buf), new Uint16Array(buf, 2, 2)]; })()",
            "(c) => c[0].buffer === c[1].buffer && c[1].byteOffset === 2 && c[1].length === 2",
        );
    });
}

#[test]
fn what_cannot_be_cloned_throws_data_clone_error() {
    with_context(|ctx| {
        for source in [
            "(() => () => 1)",
            "Symbol('s')",
            "({ f() {} })",
            "Promise.resolve(1)",
            "new WeakMap()",
        ] {
            let value: Value<'_> = ctx.eval(source).unwrap();
            assert!(serialize(ctx, &value).is_err(), "{source} was cloned");
            let error = ctx.catch();
            let name: String = error.as_object().unwrap().get("name").unwrap();
            assert_eq!(name, "DataCloneError", "{source}");
        }
    });
}

#[test]
fn malformed_input_is_refused_not_trusted() {
    with_context(|ctx| {
        for bytes in [
            &[0xFF, 0x0F, b'"', 10, b'a'][..],
            &[0xFF, 0x0F, b'^', 5],
            &[0xFF, 0x0F, b'#'],
            &[0xFF, 0x0F, b'o', b'"', 1, b'a'],
            &[
                0xFF, 0x0F, b'I', 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80,
            ],
            &[],
        ] {
            assert!(deserialize(ctx, bytes).is_err(), "{bytes:?} was accepted");
            ctx.catch();
        }
    });
}
