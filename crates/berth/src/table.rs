//! Aligned columns, as Go's text/tabwriter lays them out for runc and
//! Docker: each column as wide as its widest cell (at least `min_width`),
//! separated by `padding` spaces; the last column is not padded.

/// Renders `rows` as aligned text, one line per row.
pub fn render(rows: &[Vec<String>], min_width: usize, padding: usize) -> String {
    let cols = rows.iter().map(Vec::len).max().unwrap_or(0);
    let mut widths = vec![0usize; cols];
    for r in rows {
        for (i, cell) in r.iter().enumerate() {
            widths[i] = widths[i].max(cell.chars().count());
        }
    }
    let mut out = String::new();
    for r in rows {
        for (i, cell) in r.iter().enumerate() {
            out.push_str(cell);
            if i + 1 < r.len() {
                let w = (widths[i] + padding).max(min_width);
                out.extend(std::iter::repeat_n(' ', w - cell.chars().count()));
            }
        }
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn columns_align_to_the_widest_cell() {
        let rows = vec![
            vec!["ID".to_string(), "PID".to_string()],
            vec!["abcdef".to_string(), "1".to_string()],
        ];
        assert_eq!(super::render(&rows, 0, 3), "ID       PID\nabcdef   1\n");
    }
}
