//! Each scenario's figures and bounds, written as a section of docs/RELIABILITY.md (bench/soak puts
//! the sections together) — written before the bounds are checked, so a failed run still shows
//! what it measured.

use std::path::PathBuf;

pub struct Report {
    file: &'static str,
    title: String,
    what: String,
    figures: Vec<(String, String)>,
    bounds: Vec<(String, bool)>,
}

impl Report {
    /// `file`: the section's name, in scenario order (`1-connections`).
    pub fn new(file: &'static str, title: &str, what: &str) -> Report {
        println!("== {title}");
        Report {
            file,
            title: title.into(),
            what: what.into(),
            figures: Vec::new(),
            bounds: Vec::new(),
        }
    }

    pub fn figure(&mut self, name: &str, value: impl std::fmt::Display) {
        let value = value.to_string();
        println!("   {name}: {value}");
        self.figures.push((name.into(), value));
    }

    /// A bound the scenario must keep; all are checked by [`Report::finish`].
    pub fn bound(&mut self, rule: &str, kept: bool) {
        println!("   bound {}: {rule}", if kept { "kept" } else { "BROKEN" });
        self.bounds.push((rule.into(), kept));
    }

    /// Writes the section, then fails the scenario if any bound was broken.
    pub fn finish(self) {
        let mut text = format!(
            "## {}\n\n{}\n\n| figure | value |\n|---|---|\n",
            self.title, self.what
        );
        for (name, value) in &self.figures {
            text.push_str(&format!("| {name} | {value} |\n"));
        }
        text.push_str("\n| bound | kept |\n|---|---|\n");
        for (rule, kept) in &self.bounds {
            text.push_str(&format!(
                "| {rule} | {} |\n",
                if *kept { "yes" } else { "**no**" }
            ));
        }
        text.push('\n');
        let dir = out_dir();
        let _ = std::fs::create_dir_all(&dir);
        std::fs::write(dir.join(format!("{}.md", self.file)), text).expect("write the section");
        let broken: Vec<&str> = self
            .bounds
            .iter()
            .filter(|(_, kept)| !kept)
            .map(|(rule, _)| rule.as_str())
            .collect();
        assert!(
            broken.is_empty(),
            "{}: bounds broken: {broken:?}",
            self.title
        );
    }
}

/// Where the sections go: `SOAK_OUT`, or `target/soak`.
fn out_dir() -> PathBuf {
    std::env::var_os("SOAK_OUT")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/soak"))
}

/// A scenario's length: `SOAK_SECONDS` (for a quick try of the suite), or `default`.
pub fn seconds(default: u64) -> std::time::Duration {
    let seconds = std::env::var("SOAK_SECONDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default);
    std::time::Duration::from_secs(seconds)
}

pub fn ms(value: f64) -> String {
    format!("{value:.2} ms")
}
