//! Stack positions in terms of the user's files: the engine reports positions in the compiled code
//! of a module named by its absolute path; users wrote `src/index.ts`.

use std::collections::HashMap;

use super::PositionMap;
use super::async_context::Insertions;

/// What is known of one loaded module, for error messages.
#[derive(Debug)]
struct ModuleSource {
    /// The path as users know it (relative to the project).
    shown_as: String,
    /// Present when the code was compiled from TypeScript or JSX.
    map: Option<PositionMap>,
    /// Present when text was inserted for `AsyncLocalStorage`.
    insertions: Option<Insertions>,
}

/// Every loaded module's display name and source map, by module name.
#[derive(Debug, Default)]
pub(crate) struct SourceMaps {
    modules: HashMap<String, ModuleSource>,
}

impl SourceMaps {
    /// Records module `name`, shown as `shown_as`, compiled with `map` and `insertions`.
    pub(crate) fn insert(
        &mut self,
        name: &str,
        shown_as: &str,
        map: Option<PositionMap>,
        insertions: Option<Insertions>,
    ) {
        self.modules.insert(
            name.to_owned(),
            ModuleSource {
                shown_as: shown_as.to_owned(),
                map,
                insertions,
            },
        );
    }

    /// `file:line:column` of the engine, in the user's terms.
    pub(crate) fn map(&self, file: &str, line: u32, column: u32) -> (String, u32, u32) {
        match self.modules.get(file) {
            None => (file.to_owned(), line, column),
            Some(module) => {
                let column = module
                    .insertions
                    .as_ref()
                    .map_or(column, |i| i.original_column(line, column));
                let (line, column) = module
                    .map
                    .as_ref()
                    .and_then(|map| map.original(line, column))
                    .unwrap_or((line, column));
                (module.shown_as.clone(), line, column)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_are_mapped_to_the_original_files() {
        let mut maps = SourceMaps::default();
        maps.insert(
            "/p/src/index.ts",
            "src/index.ts",
            Some(PositionMap::from_tokens([(2, 4, 10, 6)].into_iter())),
            None,
        );
        maps.insert(
            "/p/node_modules/x/index.js",
            "node_modules/x/index.js",
            None,
            None,
        );
        assert_eq!(
            maps.map("/p/src/index.ts", 3, 9),
            ("src/index.ts".into(), 11, 7)
        );
        assert_eq!(
            maps.map("/p/node_modules/x/index.js", 7, 1),
            ("node_modules/x/index.js".into(), 7, 1)
        );
        assert_eq!(
            maps.map("elsewhere.js", 1, 2),
            ("elsewhere.js".into(), 1, 2)
        );
    }
}
