//! Reading Prometheus text in tests.

/// Parsed metrics: `(name with labels, value)` lines.
#[derive(Debug, Clone)]
pub struct Metrics(Vec<(String, f64)>);

impl Metrics {
    /// Parses the text exposition format (comments skipped).
    pub fn parse(text: &str) -> Metrics {
        Metrics(
            text.lines()
                .filter(|line| !line.starts_with('#') && !line.is_empty())
                .filter_map(|line| {
                    let (series, value) = line.rsplit_once(' ')?;
                    Some((series.to_owned(), value.parse().ok()?))
                })
                .collect(),
        )
    }

    /// The value of `name{namespace="<namespace>"}`; panics if absent.
    pub fn get(&self, name: &str, namespace: &str) -> f64 {
        self.series(&format!("{name}{{namespace=\"{namespace}\"}}"))
    }

    /// The value of one series, written out with its labels as the endpoint prints them
    /// (`name{namespace="X",cause="y"}`); panics if absent.
    pub fn series(&self, series: &str) -> f64 {
        self.0
            .iter()
            .find(|(s, _)| s == series)
            .map(|(_, v)| *v)
            .unwrap_or_else(|| panic!("metric {series} not found"))
    }
}
