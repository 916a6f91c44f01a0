//! Source files made ready for the engine: TypeScript (and JSX) stripped by oxc, with a source
//! map back to the original lines and columns; JavaScript checked for syntax errors and loaded as
//! it is.
//!
//! Types are removed and nothing else is lowered: the engine runs current JavaScript (classes,
//! fields, private methods, async iteration). Imports used only as types are elided, as
//! TypeScript does, so `import { DurableObject, DurableObjectState } from "cloudflare:workers"`
//! asks the module only for `DurableObject`.

pub(crate) mod async_context;
mod positions;
pub(crate) mod stack;

use std::path::Path;

use oxc::allocator::Allocator;
use oxc::codegen::{Codegen, CodegenOptions};
use oxc::diagnostics::OxcDiagnostic;
use oxc::parser::{ParseOptions, Parser};
use oxc::semantic::SemanticBuilder;
use oxc::span::SourceType;
use oxc::transformer::{JsxRuntime, TransformOptions, Transformer};

pub(crate) use positions::{LineIndex, PositionMap};
pub(crate) use stack::SourceMaps;

/// How the project's `tsconfig.json` asks for JSX to be compiled.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct JsxSettings {
    /// `jsx: "react"`: calls of `factory` instead of the automatic runtime.
    pub(crate) classic: bool,
    /// `jsxImportSource` (automatic runtime), e.g. `hono/jsx`.
    pub(crate) import_source: Option<String>,
    /// `jsxFactory` (classic runtime).
    pub(crate) factory: Option<String>,
    /// `jsxFragmentFactory` (classic runtime).
    pub(crate) fragment: Option<String>,
}

/// How modules are compiled for one project.
#[derive(Debug, Clone, Default)]
pub(crate) struct CompileOptions {
    pub(crate) jsx: JsxSettings,
    /// `AsyncLocalStorage` is available: `await`s carry its store (see [`async_context`]).
    pub(crate) async_context: bool,
}

/// A module's code as the engine gets it.
#[derive(Debug)]
pub(crate) struct Compiled {
    /// The JavaScript to evaluate.
    pub(crate) code: String,
    /// Positions in `code` mapped back to the file, when the code was rewritten.
    pub(crate) map: Option<PositionMap>,
    /// Text inserted for `AsyncLocalStorage`, to take out of positions before `map`.
    pub(crate) insertions: Option<async_context::Insertions>,
}

/// Whether a file needs more than a syntax check.
fn needs_transform(source_type: SourceType) -> bool {
    source_type.is_typescript() || source_type.is_jsx()
}

/// Compiles `source`, the text of `path`. `shown_as` names the file in messages (its path
/// relative to the project). Errors are `file:line:column: message`, one per line.
pub(crate) fn compile(
    path: &Path,
    shown_as: &str,
    source: &str,
    options: &CompileOptions,
) -> Result<Compiled, String> {
    let mut compiled = strip_types(path, shown_as, source, &options.jsx)?;
    if options.async_context
        && let Some((code, insertions)) = async_context::wrap_awaits(&compiled.code)
    {
        compiled.code = code;
        compiled.insertions = Some(insertions);
    }
    Ok(compiled)
}

/// The module as JavaScript: TypeScript and JSX stripped, plain JavaScript checked.
fn strip_types(
    path: &Path,
    shown_as: &str,
    source: &str,
    jsx: &JsxSettings,
) -> Result<Compiled, String> {
    let source_type = SourceType::from_path(path)
        .unwrap_or_default()
        .with_module(true);
    let allocator = Allocator::default();
    let parsed = Parser::new(&allocator, source, source_type)
        .with_options(ParseOptions {
            allow_return_outside_function: false,
            ..ParseOptions::default()
        })
        .parse();
    let errors: Vec<&OxcDiagnostic> = parsed
        .diagnostics
        .iter()
        .filter(|d| d.severity == oxc::diagnostics::Severity::Error)
        .collect();
    if !errors.is_empty() || parsed.panicked {
        return Err(describe(shown_as, source, &errors));
    }
    if !needs_transform(source_type) {
        return Ok(Compiled {
            code: source.to_owned(),
            map: None,
            insertions: None,
        });
    }
    let mut program = parsed.program;
    let semantic = SemanticBuilder::new().with_enum_eval(true).build(&program);
    let scoping = semantic.semantic.into_scoping();
    let mut options = TransformOptions::default();
    if jsx.classic {
        options.jsx.runtime = JsxRuntime::Classic;
        options.jsx.pragma = jsx.factory.clone();
        options.jsx.pragma_frag = jsx.fragment.clone();
    } else if let Some(import_source) = &jsx.import_source {
        options.jsx.import_source = Some(import_source.clone());
    }
    let transformed =
        Transformer::new(&allocator, path, &options).build_with_scoping(scoping, &mut program);
    let errors: Vec<&OxcDiagnostic> = transformed
        .diagnostics
        .iter()
        .filter(|d| d.severity == oxc::diagnostics::Severity::Error)
        .collect();
    if !errors.is_empty() {
        return Err(describe(shown_as, source, &errors));
    }
    let printed = Codegen::new()
        .with_options(CodegenOptions {
            source_map_path: Some(path.to_path_buf()),
            ..CodegenOptions::default()
        })
        .build(&program);
    let map = printed.map.map(|map| {
        PositionMap::from_tokens(map.get_tokens().map(|t| {
            (
                t.get_dst_line(),
                t.get_dst_col(),
                t.get_src_line(),
                t.get_src_col(),
            )
        }))
    });
    Ok(Compiled {
        code: printed.code,
        map,
        insertions: None,
    })
}

/// `file:line:column: message` for each diagnostic, at its first label.
fn describe(shown_as: &str, source: &str, errors: &[&OxcDiagnostic]) -> String {
    let lines = LineIndex::new(source);
    let mut out = Vec::new();
    for error in errors {
        let place = match error.labels.first() {
            Some(label) => {
                let (line, column) = lines.position(label.offset());
                format!("{shown_as}:{line}:{column}")
            }
            None => shown_as.to_owned(),
        };
        let mut text = format!("{place}: {}", error.message);
        if let Some(help) = &error.help {
            text.push_str(&format!(" ({help})"));
        }
        out.push(text);
    }
    if out.is_empty() {
        out.push(format!("{shown_as}: the file could not be parsed"));
    }
    out.join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn compile_ts(source: &str) -> Result<Compiled, String> {
        compile(
            Path::new("/p/src/index.ts"),
            "src/index.ts",
            source,
            &CompileOptions::default(),
        )
    }

    #[test]
    fn type_only_imports_are_elided() {
        let out = compile_ts(
            "import { DurableObject, DurableObjectState } from 'cloudflare:workers';\n\
             import { Environment } from '@/src/types';\n\
             export class A extends DurableObject { constructor(ctx: DurableObjectState, env: Environment) { super(ctx, env); } }\n",
        )
        .unwrap();
        assert!(out.code.contains("DurableObject"), "{}", out.code);
        assert!(!out.code.contains("DurableObjectState"), "{}", out.code);
        assert!(!out.code.contains("@/src/types"), "{}", out.code);
        assert!(out.map.is_some());
    }

    #[test]
    fn typescript_only_syntax_is_removed() {
        let out = compile_ts(
            "enum Color { Red, Green }\n\
             interface I { x: number }\n\
             const m = new Map<string, { [k: string]: string }>();\n\
             const v = (m.get('a')!) as unknown satisfies unknown;\n\
             class P { constructor(private readonly n: number) {} }\n\
             export { Color, P, v };\n",
        )
        .unwrap();
        assert!(!out.code.contains("interface"), "{}", out.code);
        assert!(!out.code.contains("satisfies"), "{}", out.code);
        assert!(out.code.contains("this.n = n"), "{}", out.code);
    }

    #[test]
    fn syntax_errors_name_the_file_line_and_column() {
        let error = compile_ts("const a = 1;\nconst b = ;\n").unwrap_err();
        assert!(error.starts_with("src/index.ts:2:11:"), "{error}");
        let error = compile(
            Path::new("/p/src/a.js"),
            "src/a.js",
            "export default {};\nexport default {};\n",
            &CompileOptions::default(),
        )
        .unwrap_err();
        assert!(
            error.starts_with("src/a.js:") && error.contains("multiple default exports"),
            "{error}"
        );
    }

    #[test]
    fn javascript_is_loaded_as_written() {
        let source = "export const a = 1; // comment stays\n";
        let out = compile(
            Path::new("/p/a.js"),
            "a.js",
            source,
            &CompileOptions::default(),
        )
        .unwrap();
        assert_eq!(out.code, source);
        assert!(out.map.is_none());
    }

    #[test]
    fn jsx_follows_the_configured_runtime() {
        let settings = CompileOptions {
            jsx: JsxSettings {
                import_source: Some("hono/jsx".into()),
                ..JsxSettings::default()
            },
            async_context: false,
        };
        let out = compile(
            Path::new("/p/a.tsx"),
            "a.tsx",
            "export const v = <p>hi</p>;\n",
            &settings,
        )
        .unwrap();
        assert!(out.code.contains("hono/jsx/jsx-runtime"), "{}", out.code);
    }
}
