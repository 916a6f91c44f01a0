//! Stack traces in terms of the user's files: the engine reports positions in the compiled code
//! of a module named by its absolute path; users wrote `src/index.ts`.

use std::collections::HashMap;

use super::PositionMap;

/// What is known of one loaded module, for error messages.
#[derive(Debug)]
struct ModuleSource {
    /// The path as users know it (relative to the project).
    shown_as: String,
    /// Present when the code was compiled from TypeScript or JSX.
    map: Option<PositionMap>,
}

/// Every loaded module's display name and source map, by module name.
#[derive(Debug, Default)]
pub(crate) struct SourceMaps {
    modules: HashMap<String, ModuleSource>,
}

impl SourceMaps {
    /// Records module `name`, shown as `shown_as`, compiled with `map`.
    pub(crate) fn insert(&mut self, name: &str, shown_as: &str, map: Option<PositionMap>) {
        self.modules.insert(
            name.to_owned(),
            ModuleSource {
                shown_as: shown_as.to_owned(),
                map,
            },
        );
    }

    /// `file:line:column` of the engine, in the user's terms.
    pub(crate) fn map(&self, file: &str, line: u32, column: u32) -> (String, u32, u32) {
        match self.modules.get(file) {
            None => (file.to_owned(), line, column),
            Some(module) => {
                let (line, column) = module
                    .map
                    .as_ref()
                    .and_then(|map| map.original(line, column))
                    .unwrap_or((line, column));
                (module.shown_as.clone(), line, column)
            }
        }
    }

    /// Rewrites every `file:line:column` in a stack trace.
    pub(crate) fn rewrite(&self, stack: &str) -> String {
        stack
            .lines()
            .map(|line| self.rewrite_line(line))
            .collect::<Vec<_>>()
            .join("\n")
    }

    fn rewrite_line(&self, line: &str) -> String {
        // Frames look like `    at name (file:1:2)` or `    at file:1:2`.
        let (prefix, location, suffix) = match (line.rfind('('), line.ends_with(')')) {
            (Some(open), true) => (&line[..=open], &line[open + 1..line.len() - 1], ")"),
            _ => match line.find("at ") {
                Some(at) => (&line[..at + 3], &line[at + 3..], ""),
                None => return line.to_owned(),
            },
        };
        let mut parts = location.rsplitn(3, ':');
        let (Some(column), Some(row), Some(file)) = (parts.next(), parts.next(), parts.next())
        else {
            return line.to_owned();
        };
        let (Ok(row), Ok(column)) = (row.parse::<u32>(), column.parse::<u32>()) else {
            return line.to_owned();
        };
        let (file, row, column) = self.map(file, row, column);
        format!("{prefix}{file}:{row}:{column}{suffix}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_are_mapped_to_the_original_files() {
        let mut maps = SourceMaps::default();
        maps.insert(
            "/p/src/index.ts",
            "src/index.ts",
            Some(PositionMap::from_tokens([(2, 4, 10, 6)].into_iter())),
        );
        maps.insert("/p/node_modules/x/index.js", "node_modules/x/index.js", None);
        let stack = "    at boom (/p/src/index.ts:3:9)\n    at /p/node_modules/x/index.js:7:1\n    at <eval> (native)";
        assert_eq!(
            maps.rewrite(stack),
            "    at boom (src/index.ts:11:7)\n    at node_modules/x/index.js:7:1\n    at <eval> (native)"
        );
    }
}
