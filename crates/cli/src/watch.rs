//! What `dormouse dev` watches: the project's source and configuration files (not
//! `node_modules`, hidden directories or the data directory), by modification time.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

/// Files with these extensions are the project's code or configuration.
const WATCHED: &[&str] = &[
    "js", "mjs", "cjs", "jsx", "ts", "mts", "cts", "tsx", "json", "jsonc", "toml",
];

/// Directories never watched: installed packages and the data directory's default name.
const SKIPPED: &[&str] = &["node_modules", ".dormouse", ".wrangler", "target"];

/// How deep under the project directory files are looked for.
const MAX_DEPTH: usize = 8;

/// The watched files and when each last changed.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Snapshot(BTreeMap<PathBuf, SystemTime>);

impl Snapshot {
    /// The project's files under `root` as they are now (`.dev.vars` and `.dev.vars.NAME`
    /// included).
    pub fn take(root: &Path) -> Snapshot {
        let mut files = BTreeMap::new();
        visit(root, 0, &mut files);
        for entry in std::fs::read_dir(root).into_iter().flatten().flatten() {
            let name = entry.file_name();
            let name = name.to_string_lossy();
            if (name == ".dev.vars" || name.starts_with(".dev.vars."))
                && let Ok(modified) = entry.metadata().and_then(|m| m.modified())
            {
                files.insert(entry.path(), modified);
            }
        }
        Snapshot(files)
    }

    /// Files added, removed or modified since `before`.
    pub fn changes_since(&self, before: &Snapshot) -> Vec<PathBuf> {
        let mut changed: Vec<PathBuf> = self
            .0
            .iter()
            .filter(|(path, time)| before.0.get(*path) != Some(time))
            .map(|(path, _)| path.clone())
            .collect();
        changed.extend(
            before
                .0
                .keys()
                .filter(|p| !self.0.contains_key(*p))
                .cloned(),
        );
        changed
    }
}

fn visit(dir: &Path, depth: usize, files: &mut BTreeMap<PathBuf, SystemTime>) {
    if depth > MAX_DEPTH {
        return;
    }
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let name = entry.file_name();
        let name = name.to_string_lossy();
        let Ok(kind) = entry.file_type() else {
            continue;
        };
        if kind.is_dir() {
            if !name.starts_with('.') && !SKIPPED.contains(&name.as_ref()) {
                visit(&path, depth + 1, files);
            }
        } else if path
            .extension()
            .is_some_and(|e| WATCHED.iter().any(|w| e == *w))
            && let Ok(modified) = entry.metadata().and_then(|m| m.modified())
        {
            files.insert(path, modified);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn edits_additions_and_removals_are_seen_and_packages_are_not() {
        let root = std::env::temp_dir().join(format!("dormouse-watch-{}", std::process::id()));
        std::fs::create_dir_all(root.join("src")).unwrap();
        std::fs::create_dir_all(root.join("node_modules/pkg")).unwrap();
        std::fs::write(root.join("src/index.ts"), "a").unwrap();
        std::fs::write(root.join("node_modules/pkg/index.js"), "a").unwrap();
        std::fs::write(root.join("README.md"), "a").unwrap();
        let before = Snapshot::take(&root);
        assert_eq!(before.0.len(), 1, "{before:?}");

        std::fs::write(root.join("src/new.ts"), "b").unwrap();
        std::fs::write(root.join("node_modules/pkg/index.js"), "changed").unwrap();
        let after = Snapshot::take(&root);
        assert_eq!(after.changes_since(&before), [root.join("src/new.ts")]);

        std::fs::remove_file(root.join("src/new.ts")).unwrap();
        let removed = Snapshot::take(&root);
        assert_eq!(removed.changes_since(&after), [root.join("src/new.ts")]);

        // Local secrets are configuration too, for every environment.
        std::fs::write(root.join(".dev.vars"), "A=1").unwrap();
        std::fs::write(root.join(".dev.vars.staging"), "A=2").unwrap();
        let mut secrets = Snapshot::take(&root).changes_since(&removed);
        secrets.sort();
        assert_eq!(
            secrets,
            [root.join(".dev.vars"), root.join(".dev.vars.staging")]
        );
        let _ = std::fs::remove_dir_all(&root);
    }
}
