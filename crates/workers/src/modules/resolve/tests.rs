use std::path::{Path, PathBuf};

use super::*;

/// A directory tree for one test, removed when dropped.
struct Tree(PathBuf);

impl Tree {
    fn new(files: &[(&str, &str)]) -> Tree {
        static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "dormouse-resolve-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        ));
        for (name, text) in files {
            let path = dir.join(name);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, text).unwrap();
        }
        Tree(dir)
    }

    fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for Tree {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn resolver() -> Resolver {
    Resolver::new(TsConfig::default(), false, false)
}

fn file(resolved: Result<Resolved, String>) -> PathBuf {
    match resolved {
        Ok(Resolved::File(path)) => path,
        other => panic!("expected a file, got {other:?}"),
    }
}

#[test]
fn relative_imports_follow_typescript_extension_rules() {
    let tree = Tree::new(&[
        ("src/index.ts", ""),
        ("src/registry.ts", ""),
        ("src/util.js", ""),
        ("src/lib/index.ts", ""),
        ("src/data.json", "{}"),
    ]);
    let importer = tree.path("src/index.ts");
    let r = resolver();
    assert_eq!(
        file(r.resolve("./registry", &importer)),
        tree.path("src/registry.ts")
    );
    assert_eq!(
        file(r.resolve("./registry.js", &importer)),
        tree.path("src/registry.ts")
    );
    assert_eq!(
        file(r.resolve("./util.js", &importer)),
        tree.path("src/util.js")
    );
    assert_eq!(
        file(r.resolve("./lib", &importer)),
        tree.path("src/lib/index.ts")
    );
    assert_eq!(
        file(r.resolve("../src/data.json", &importer)),
        tree.path("src/data.json")
    );
    assert!(
        r.resolve("./missing", &importer)
            .unwrap_err()
            .contains("does not exist")
    );
}

#[test]
fn packages_resolve_through_exports_conditions() {
    let tree = Tree::new(&[
        ("src/index.ts", ""),
        (
            "node_modules/router/package.json",
            r#"{ "name": "router", "main": "./cjs/index.js",
                 "exports": {
                   ".": { "require": "./cjs/index.js", "workerd": "./dist/workerd.mjs", "import": "./dist/index.mjs" },
                   "./helpers/*": { "import": "./dist/helpers/*.mjs" },
                   "./package.json": "./package.json"
                 } }"#,
        ),
        ("node_modules/router/dist/workerd.mjs", ""),
        ("node_modules/router/dist/index.mjs", ""),
        ("node_modules/router/dist/helpers/cors.mjs", ""),
        ("node_modules/router/cjs/index.js", ""),
        (
            "node_modules/@scope/lib/package.json",
            r#"{ "module": "./esm/main.js", "main": "./main.js" }"#,
        ),
        ("node_modules/@scope/lib/esm/main.js", ""),
        ("node_modules/@scope/lib/main.js", ""),
        ("node_modules/@scope/lib/extra/file.js", ""),
        ("node_modules/plain/index.js", ""),
    ]);
    let importer = tree.path("src/index.ts");
    let r = resolver();
    assert_eq!(
        file(r.resolve("router", &importer)),
        tree.path("node_modules/router/dist/workerd.mjs")
    );
    assert_eq!(
        file(r.resolve("router/helpers/cors", &importer)),
        tree.path("node_modules/router/dist/helpers/cors.mjs")
    );
    assert!(
        r.resolve("router/private", &importer)
            .unwrap_err()
            .contains("does not export `./private`")
    );
    assert_eq!(
        file(r.resolve("@scope/lib", &importer)),
        tree.path("node_modules/@scope/lib/esm/main.js")
    );
    assert_eq!(
        file(r.resolve("@scope/lib/extra/file", &importer)),
        tree.path("node_modules/@scope/lib/extra/file.js")
    );
    assert_eq!(
        file(r.resolve("plain", &importer)),
        tree.path("node_modules/plain/index.js")
    );
    assert!(
        r.resolve("absent", &importer)
            .unwrap_err()
            .contains("npm install")
    );
}

#[test]
fn tsconfig_paths_map_aliases() {
    let tree = Tree::new(&[("src/index.ts", ""), ("src/types.ts", "")]);
    let tsconfig = TsConfig {
        paths: vec![("@/*".into(), vec![tree.path("*")])],
        ..TsConfig::default()
    };
    let r = Resolver::new(tsconfig, false, false);
    assert_eq!(
        file(r.resolve("@/src/types", &tree.path("src/index.ts"))),
        tree.path("src/types.ts")
    );
}

#[test]
fn builtins_need_their_flags() {
    let importer = Path::new("/p/src/index.ts");
    let plain = resolver();
    assert_eq!(
        plain.resolve("cloudflare:workers", importer),
        Ok(Resolved::Builtin(Builtin::CloudflareWorkers))
    );
    assert!(
        plain
            .resolve("node:buffer", importer)
            .unwrap_err()
            .contains("nodejs_compat")
    );
    assert!(
        plain
            .resolve("cloudflare:sockets", importer)
            .unwrap_err()
            .contains("cloudflare:sockets")
    );
    let node = Resolver::new(TsConfig::default(), true, true);
    assert_eq!(
        node.resolve("node:events", importer),
        Ok(Resolved::Builtin(Builtin::NodeEvents))
    );
    assert_eq!(
        node.resolve("buffer", importer),
        Ok(Resolved::Builtin(Builtin::NodeBuffer))
    );
    let error = node.resolve("node:fs", importer).unwrap_err();
    assert!(
        error.contains("node:fs") && error.contains("node:buffer"),
        "{error}"
    );
    let als = Resolver::new(TsConfig::default(), false, true);
    assert_eq!(
        als.resolve("node:async_hooks", importer),
        Ok(Resolved::Builtin(Builtin::NodeAsyncHooks))
    );
}

#[test]
fn package_names_split_from_subpaths() {
    assert_eq!(split_package("hono"), ("hono", ""));
    assert_eq!(split_package("hono/cors"), ("hono", "cors"));
    assert_eq!(split_package("@scope/pkg"), ("@scope/pkg", ""));
    assert_eq!(split_package("@scope/pkg/a/b"), ("@scope/pkg", "a/b"));
}
