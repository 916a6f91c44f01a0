//! Positions in source text: byte offsets to lines and columns, and generated positions back to
//! original ones.

/// Line starts of a text, for turning byte offsets into 1-based lines and columns.
pub(crate) struct LineIndex<'a> {
    text: &'a str,
    starts: Vec<usize>,
}

impl<'a> LineIndex<'a> {
    pub(crate) fn new(text: &'a str) -> Self {
        let mut starts = vec![0];
        starts.extend(text.match_indices('\n').map(|(i, _)| i + 1));
        LineIndex { text, starts }
    }

    /// The 1-based line and column (in characters) of byte `offset`.
    pub(crate) fn position(&self, offset: u32) -> (usize, usize) {
        let offset = (offset as usize).min(self.text.len());
        let line = self.starts.partition_point(|&start| start <= offset) - 1;
        let start = self.starts[line];
        let column = self
            .text
            .get(start..offset)
            .map_or(offset - start, |prefix| prefix.chars().count());
        (line + 1, column + 1)
    }
}

/// Generated positions of a compiled module mapped to the original file's, from its source map.
#[derive(Debug, Default)]
pub(crate) struct PositionMap {
    /// Per generated line (0-based): `(generated column, original line, original column)`,
    /// sorted by generated column, all 0-based.
    lines: Vec<Vec<(u32, u32, u32)>>,
}

impl PositionMap {
    /// From source-map tokens `(generated line, generated column, original line, original
    /// column)`, in generated order.
    pub(crate) fn from_tokens(tokens: impl Iterator<Item = (u32, u32, u32, u32)>) -> Self {
        let mut lines: Vec<Vec<(u32, u32, u32)>> = Vec::new();
        for (line, column, src_line, src_column) in tokens {
            let line = line as usize;
            if lines.len() <= line {
                lines.resize_with(line + 1, Vec::new);
            }
            lines[line].push((column, src_line, src_column));
        }
        for line in &mut lines {
            line.sort_unstable_by_key(|t| t.0);
        }
        PositionMap { lines }
    }

    /// The original 1-based line and column of the generated 1-based `line` and `column`: the
    /// nearest mapped position at or before it on that line (or the line's first one).
    pub(crate) fn original(&self, line: u32, column: u32) -> Option<(u32, u32)> {
        let tokens = self.lines.get(line.checked_sub(1)? as usize)?;
        let column = column.saturating_sub(1);
        let at = tokens.partition_point(|t| t.0 <= column);
        let token = if at == 0 {
            tokens.first()?
        } else {
            &tokens[at - 1]
        };
        Some((token.1 + 1, token.2 + 1))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_become_lines_and_columns() {
        let index = LineIndex::new("ab\ncdé\nf");
        assert_eq!(index.position(0), (1, 1));
        assert_eq!(index.position(4), (2, 2));
        // After a two-byte character, columns count characters.
        assert_eq!(index.position(7), (2, 4));
        assert_eq!(index.position(8), (3, 1));
    }

    #[test]
    fn generated_positions_map_to_the_nearest_original() {
        let map = PositionMap::from_tokens([(0, 0, 4, 2), (0, 10, 5, 0), (2, 3, 9, 1)].into_iter());
        assert_eq!(map.original(1, 1), Some((5, 3)));
        assert_eq!(map.original(1, 12), Some((6, 1)));
        assert_eq!(map.original(1, 5), Some((5, 3)));
        assert_eq!(map.original(2, 1), None);
        assert_eq!(map.original(3, 1), Some((10, 2)));
        assert_eq!(map.original(9, 1), None);
    }
}
