//! Aligned plain-text tables and key/value views.

/// Rows of cells under a header, each column as wide as its widest cell.
#[derive(Debug)]
pub struct Table {
    headers: Vec<String>,
    rows: Vec<Vec<String>>,
}

impl Table {
    pub fn new(headers: &[&str]) -> Self {
        Self {
            headers: headers.iter().map(|h| (*h).to_owned()).collect(),
            rows: Vec::new(),
        }
    }

    pub fn push(&mut self, row: Vec<String>) {
        self.rows.push(row);
    }

    /// The table as lines ending in '\n', columns two spaces apart.
    pub fn render(&self) -> String {
        let columns = self.headers.len();
        let mut widths: Vec<usize> = self.headers.iter().map(|h| width(h)).collect();
        for row in &self.rows {
            for (i, cell) in row.iter().enumerate().take(columns) {
                widths[i] = widths[i].max(width(cell));
            }
        }
        let mut out = String::new();
        for row in std::iter::once(&self.headers).chain(&self.rows) {
            let mut line = String::new();
            for (i, cell) in row.iter().enumerate().take(columns) {
                if i > 0 {
                    line.push_str("  ");
                }
                line.push_str(cell);
                line.extend(std::iter::repeat_n(' ', widths[i] - width(cell)));
            }
            // Padding after the last column is invisible but trips up diff and grep.
            out.push_str(line.trim_end());
            out.push('\n');
        }
        out
    }
}

/// `Key:  value` lines with the values lined up.
pub fn key_values(pairs: &[(&str, String)]) -> String {
    let key_width = pairs.iter().map(|(k, _)| width(k)).max().unwrap_or(0);
    let mut out = String::new();
    for (key, value) in pairs {
        let pad = key_width - width(key);
        let line = format!("{key}:{}  {value}", " ".repeat(pad));
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// Columns on a terminal, close enough for the text havipctl prints (addresses, names,
/// and the single-column arrow "→").
fn width(s: &str) -> usize {
    s.chars().count()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_are_as_wide_as_their_widest_cell() {
        let mut t = Table::new(&["NAME", "STATE", "VIPS"]);
        t.push(vec!["web".into(), "MASTER".into(), "10.0.0.100/24".into()]);
        t.push(vec![
            "database-1".into(),
            "BACKUP → MASTER".into(),
            "".into(),
        ]);
        assert_eq!(
            t.render(),
            "NAME        STATE            VIPS\n\
             web         MASTER           10.0.0.100/24\n\
             database-1  BACKUP → MASTER\n"
        );
    }

    #[test]
    fn an_empty_table_is_its_header() {
        assert_eq!(Table::new(&["A", "B"]).render(), "A  B\n");
    }

    #[test]
    fn key_values_line_up() {
        let text = key_values(&[
            ("Name", "web".into()),
            ("Virtual IPs", "10.0.0.100/24".into()),
            ("Labels", String::new()),
        ]);
        assert_eq!(
            text,
            "Name:         web\n\
             Virtual IPs:  10.0.0.100/24\n\
             Labels:\n"
        );
    }
}
