//! Human output of the listing commands: left-aligned columns separated by
//! two spaces, a header row first, `-` for an empty cell.

/// Renders `rows` under `header`, every line ending in a newline.
pub fn render(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count().max(1));
        }
    }
    let line = |cells: Vec<&str>| {
        let padded: Vec<String> = cells
            .iter()
            .zip(&widths)
            .map(|(cell, width)| {
                let cell = if cell.is_empty() { "-" } else { cell };
                format!("{cell:<width$}")
            })
            .collect();
        format!("{}\n", padded.join("  ").trim_end())
    };
    let mut out = line(header.to_vec());
    for row in rows {
        out.push_str(&line(row.iter().map(String::as_str).collect()));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_are_as_wide_as_their_widest_cell() {
        let rows = vec![
            vec!["nightly".to_owned(), String::new()],
            vec!["db".to_owned(), "web-1".to_owned()],
        ];
        assert_eq!(
            render(&["NAME", "AGENTS"], &rows),
            "NAME     AGENTS\nnightly  -\ndb       web-1\n"
        );
    }
}
