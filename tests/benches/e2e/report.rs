//! The figures of both workers, printed as a Markdown table and written as
//! JSON.

use std::path::Path;

/// Column of agent-host.
pub const AGENT_HOST: usize = 0;
/// Column of the Python worker.
pub const PYTHON: usize = 1;

/// Figures by name, in the order first set; a value per worker.
#[derive(Default)]
pub struct Figures {
    rows: Vec<(String, [Option<f64>; 2])>,
}

impl Figures {
    /// Sets `name` for worker column `w`.
    pub fn set(&mut self, w: usize, name: &str, value: f64) {
        match self.rows.iter_mut().find(|(n, _)| n == name) {
            Some((_, values)) => values[w] = Some(value),
            None => {
                let mut values = [None, None];
                values[w] = Some(value);
                self.rows.push((name.to_string(), values));
            }
        }
    }

    /// Python ÷ agent-host, or the inverse for rates, so that a ratio above
    /// 1 always means agent-host does better.
    fn ratio(name: &str, values: &[Option<f64>; 2]) -> Option<f64> {
        let (h, p) = (values[AGENT_HOST]?, values[PYTHON]?);
        let r = if name.contains("per second") {
            h / p
        } else {
            p / h
        };
        r.is_finite().then_some(r)
    }

    /// The table, on stdout.
    pub fn print(&self) {
        let python = self.rows.iter().any(|(_, v)| v[PYTHON].is_some());
        if python {
            println!("\n| figure | agent-host | Python worker | ratio |\n|---|---:|---:|---:|");
        } else {
            println!("\n| figure | agent-host |\n|---|---:|");
        }
        let cell = |v: Option<f64>| v.map_or("—".to_string(), format_value);
        for (name, values) in &self.rows {
            if python {
                let ratio = Self::ratio(name, values).map_or("—".into(), |r| format!("{r:.0}×"));
                println!(
                    "| {name} | {} | {} | {ratio} |",
                    cell(values[AGENT_HOST]),
                    cell(values[PYTHON])
                );
            } else {
                println!("| {name} | {} |", cell(values[AGENT_HOST]));
            }
        }
    }

    /// The figures, the machine and the run size as JSON at `path`.
    pub fn write_json(&self, path: &Path, full: bool) {
        let rows: Vec<serde_json::Value> = self
            .rows
            .iter()
            .map(|(name, values)| {
                serde_json::json!({
                    "figure": name,
                    "agent_host": values[AGENT_HOST],
                    "python": values[PYTHON],
                    "ratio": Self::ratio(name, values),
                })
            })
            .collect();
        let json = serde_json::json!({
            "size": if full { "full" } else { "quick" },
            "machine": { "cpu": cpu_model(), "cpus": std::thread::available_parallelism().map_or(0, |n| n.get()) },
            "figures": rows,
        });
        std::fs::create_dir_all(path.parent().expect("a parent dir"))
            .expect("creating target/bench");
        std::fs::write(path, serde_json::to_string_pretty(&json).expect("JSON"))
            .expect("writing the JSON");
    }
}

/// Three significant digits or so, without exponent.
fn format_value(v: f64) -> String {
    if v >= 100.0 {
        format!("{v:.0}")
    } else if v >= 10.0 {
        format!("{v:.1}")
    } else if v >= 0.01 || v == 0.0 {
        format!("{v:.2}")
    } else {
        format!("{v:.5}")
    }
}

/// `model name` from `/proc/cpuinfo`.
fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines()
                .find_map(|l| l.strip_prefix("model name"))
                .map(|v| v.trim_start_matches([' ', '\t', ':']).to_string())
        })
        .unwrap_or_default()
}
