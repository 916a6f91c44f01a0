//! `AsyncLocalStorage` across `await`: the engine has no hook where an async function resumes,
//! so each `await EXPR` is compiled to `__dormouseAls.resume(__dormouseAls.capture(), await
//! EXPR)`. The capture runs before the function suspends and the resume when it continues,
//! putting back the store that was current at the `await` (arguments run left to right).
//!
//! Done only for projects that can use `AsyncLocalStorage` (`nodejs_compat`, `nodejs_als`). The
//! inserted text moves columns; [`Insertions`] maps positions back.

use oxc::allocator::Allocator;
use oxc::ast::ast::AwaitExpression;
use oxc::ast_visit::{Visit, walk};
use oxc::parser::Parser;
use oxc::span::SourceType;

/// The global the compiled code calls (defined by the prelude when the feature is on).
pub(crate) const GLOBAL: &str = "__dormouseAls";

/// Text inserted before each `await`.
fn prefix() -> String {
    format!("{GLOBAL}.resume({GLOBAL}.capture(), ")
}

/// Where text was inserted into a module's code, per line, to map the engine's positions back
/// to the code before insertion.
#[derive(Debug, Default)]
pub(crate) struct Insertions {
    /// Per 0-based line: `(column where inserted text starts in the new code, its length)`,
    /// sorted by column, in characters.
    lines: Vec<Vec<(u32, u32)>>,
}

impl Insertions {
    /// The column (1-based) in the code before insertion of 1-based `column` on 1-based `line`.
    pub(crate) fn original_column(&self, line: u32, column: u32) -> u32 {
        let Some(inserted) = line.checked_sub(1).and_then(|l| self.lines.get(l as usize)) else {
            return column;
        };
        let position = column.saturating_sub(1);
        let mut shift = 0;
        for &(start, length) in inserted {
            if position >= start + length {
                shift += length;
            } else if position >= start {
                // Inside inserted text: the position of what follows it.
                return start - shift + 1;
            } else {
                break;
            }
        }
        position - shift + 1
    }
}

struct Awaits {
    spans: Vec<(u32, u32)>,
}

impl<'a> Visit<'a> for Awaits {
    fn visit_await_expression(&mut self, it: &AwaitExpression<'a>) {
        self.spans.push((it.span.start, it.span.end));
        walk::walk_await_expression(self, it);
    }
}

/// `code` (JavaScript) with its `await`s wrapped; `None` when it has none (or cannot be parsed:
/// the engine then reports the syntax error itself).
pub(crate) fn wrap_awaits(code: &str) -> Option<(String, Insertions)> {
    if !code.contains("await") {
        return None;
    }
    let allocator = Allocator::default();
    let parsed = Parser::new(&allocator, code, SourceType::mjs()).parse();
    if parsed.panicked || !parsed.diagnostics.is_empty() {
        return None;
    }
    let mut awaits = Awaits { spans: Vec::new() };
    awaits.visit_program(&parsed.program);
    if awaits.spans.is_empty() {
        return None;
    }
    let prefix = prefix();
    // (byte offset in `code`, whether it opens): a closing parenthesis goes before an opening
    // prefix at the same offset.
    let mut edits: Vec<(usize, bool)> = Vec::with_capacity(awaits.spans.len() * 2);
    for (start, end) in &awaits.spans {
        edits.push((*start as usize, true));
        edits.push((*end as usize, false));
    }
    edits.sort_by_key(|&(offset, opens)| (offset, opens));
    let mut out = String::with_capacity(code.len() + edits.len() * prefix.len());
    let mut inserted_at: Vec<(usize, usize)> = Vec::with_capacity(edits.len());
    let mut copied = 0;
    for (offset, opens) in edits {
        out.push_str(&code[copied..offset]);
        copied = offset;
        let text = if opens { prefix.as_str() } else { ")" };
        inserted_at.push((out.len(), text.len()));
        out.push_str(text);
    }
    out.push_str(&code[copied..]);
    let insertions = locate(&out, &inserted_at);
    Some((out, insertions))
}

/// The lines and columns of inserted text (byte offsets and lengths in `code`; the inserted text
/// is ASCII, so its length in characters is its length in bytes).
fn locate(code: &str, inserted_at: &[(usize, usize)]) -> Insertions {
    let mut lines: Vec<Vec<(u32, u32)>> = vec![Vec::new()];
    let mut line_start = 0;
    let mut next = inserted_at.iter().peekable();
    for (offset, c) in code.char_indices() {
        while let Some(&&(at, length)) = next.peek() {
            if at != offset {
                break;
            }
            let column = code[line_start..offset].chars().count() as u32;
            lines
                .last_mut()
                .expect("a line")
                .push((column, length as u32));
            next.next();
        }
        if c == '\n' {
            lines.push(Vec::new());
            line_start = offset + 1;
        }
    }
    Insertions { lines }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_await_is_wrapped_inner_ones_too() {
        let (code, _) =
            wrap_awaits("async function f(a) { return (await a) + await (await a); }").unwrap();
        let p = prefix();
        assert_eq!(
            code,
            format!("async function f(a) {{ return ({p}await a)) + {p}await ({p}await a))); }}")
        );
        assert!(wrap_awaits("const awaited = 1;").is_none());
        // `for await` is a loop, not an await expression.
        assert!(wrap_awaits("async function g(s) { for await (const x of s) {} }").is_none());
    }

    #[test]
    fn positions_after_insertions_map_back() {
        let source = "async function f(a) {\n  const x = await a; throw x;\n}";
        let (code, insertions) = wrap_awaits(source).unwrap();
        let line = code.lines().nth(1).unwrap();
        let throw_new = line.find("throw").unwrap() as u32 + 1;
        let throw_old = source.lines().nth(1).unwrap().find("throw").unwrap() as u32 + 1;
        assert_eq!(insertions.original_column(2, throw_new), throw_old);
        assert_eq!(insertions.original_column(1, 5), 5);
        assert_eq!(insertions.original_column(9, 5), 5);
    }
}
