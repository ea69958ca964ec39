//! Metrics in the Prometheus text exposition format, for node_exporter's
//! textfile collector (`--output prometheus` on `locks` and `backup`):
//! gauges only, `# HELP` and `# TYPE` lines, label values escaped (`\`,
//! `"`, newline) by the `prometheus` crate's text encoder.

use crate::error::Error;
use prometheus::{GaugeVec, Opts, Registry, TextEncoder};

/// The gauges of one command run.
#[derive(Default)]
pub struct Metrics {
    registry: Registry,
}

impl Metrics {
    pub fn new() -> Self {
        Metrics::default()
    }

    /// A gauge family `name` with these label names.
    pub fn gauge(&self, name: &str, help: &str, labels: &[&str]) -> Result<GaugeVec, Error> {
        let g = GaugeVec::new(Opts::new(name, help), labels).map_err(render_error)?;
        self.registry
            .register(Box::new(g.clone()))
            .map_err(render_error)?;
        Ok(g)
    }

    /// Set one sample of a family (the label values in the family's order).
    pub fn set(family: &GaugeVec, labels: &[&str], value: f64) -> Result<(), Error> {
        family
            .get_metric_with_label_values(labels)
            .map_err(render_error)?
            .set(value);
        Ok(())
    }

    /// The text exposition of every family that has a sample.
    pub fn render(&self) -> Result<String, Error> {
        TextEncoder::new()
            .encode_to_string(&self.registry.gather())
            .map_err(render_error)
    }
}

fn render_error(e: prometheus::Error) -> Error {
    Error::Output(format!("cannot render the Prometheus metrics: {e}"))
}

/// Seconds since the Unix epoch of `t` (milliseconds kept).
pub fn timestamp(t: chrono::DateTime<chrono::Utc>) -> f64 {
    t.timestamp_millis() as f64 / 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_values_are_escaped_and_families_typed() {
        let m = Metrics::new();
        let g = m.gauge("t_age_seconds", "Age.", &["who"]).expect("gauge");
        Metrics::set(&g, &["a\"b\\c\nd"], 1.5).expect("set");
        let text = m.render().expect("render");
        assert!(text.contains("# HELP t_age_seconds Age.\n"), "{text}");
        assert!(text.contains("# TYPE t_age_seconds gauge\n"), "{text}");
        assert!(
            text.contains(r#"t_age_seconds{who="a\"b\\c\nd"} 1.5"#),
            "{text}"
        );
    }
}
