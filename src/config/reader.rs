//! Reads a TOML table key by key, collecting every problem instead of stopping at the first, so
//! `hubgate check` can list them all. Each problem names the full key (`session.idle_timeout`).
//! Keys left over when a section is finished are reported as unknown: a typo never goes unnoticed.

use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

use toml::{Table, Value};

use super::duration::parse_duration;
use super::ConfigError;

#[derive(Clone, Default)]
pub(crate) struct Problems(Rc<RefCell<Vec<ConfigError>>>);

impl Problems {
    pub fn report(&self, key: impl Into<String>, message: impl Into<String>) {
        self.0.borrow_mut().push(ConfigError {
            key: key.into(),
            message: message.into(),
        });
    }

    pub fn take(&self) -> Vec<ConfigError> {
        std::mem::take(&mut self.0.borrow_mut())
    }
}

pub(crate) struct Section {
    path: String,
    table: Table,
    problems: Problems,
}

impl Section {
    pub fn root(table: Table, problems: Problems) -> Self {
        Section {
            path: String::new(),
            table,
            problems,
        }
    }

    /// A root whose keys are reported under `label` (the users file, not gateway.toml).
    pub fn named(label: &str, table: Table, problems: Problems) -> Self {
        Section {
            path: label.to_string(),
            table,
            problems,
        }
    }

    pub fn key(&self, key: &str) -> String {
        if self.path.is_empty() {
            key.to_string()
        } else {
            format!("{}.{key}", self.path)
        }
    }

    pub fn report(&self, key: &str, message: impl Into<String>) {
        self.problems.report(self.key(key), message);
    }

    pub fn has(&self, key: &str) -> bool {
        self.table.contains_key(key)
    }

    fn typed<T>(
        &mut self,
        key: &str,
        expected: &str,
        pick: impl Fn(&Value) -> Option<T>,
    ) -> Option<T> {
        let value = self.table.remove(key)?;
        let picked = pick(&value);
        if picked.is_none() {
            self.report(
                key,
                format!("expected {expected}, found {}", describe(&value)),
            );
        }
        picked
    }

    pub fn opt_string(&mut self, key: &str) -> Option<String> {
        self.typed(key, "a string", |v| v.as_str().map(str::to_string))
    }

    pub fn string(&mut self, key: &str, default: &str) -> String {
        self.opt_string(key).unwrap_or_else(|| default.to_string())
    }

    pub fn bool(&mut self, key: &str, default: bool) -> bool {
        self.typed(key, "true or false", Value::as_bool)
            .unwrap_or(default)
    }

    pub fn integer(&mut self, key: &str, default: i64, min: i64, max: i64) -> i64 {
        match self.typed(key, "a whole number", Value::as_integer) {
            Some(n) if (min..=max).contains(&n) => n,
            Some(n) => {
                self.report(
                    key,
                    format!("{n} is out of range (allowed: {min} to {max})"),
                );
                default
            }
            None => default,
        }
    }

    pub fn float(&mut self, key: &str, default: f64) -> f64 {
        self.typed(key, "a number", |v| {
            v.as_float().or_else(|| v.as_integer().map(|i| i as f64))
        })
        .unwrap_or(default)
    }

    pub fn duration(&mut self, key: &str, default: Duration) -> Duration {
        let Some(text) = self.typed(key, "a duration string like \"30m\"", |v| {
            v.as_str().map(str::to_string)
        }) else {
            return default;
        };
        parse_duration(&text).unwrap_or_else(|message| {
            self.report(key, message);
            default
        })
    }

    pub fn string_list(&mut self, key: &str) -> Vec<String> {
        let Some(items) = self.typed(key, "a list of strings", |v| v.as_array().cloned()) else {
            return Vec::new();
        };
        let mut strings = Vec::with_capacity(items.len());
        for (i, item) in items.iter().enumerate() {
            match item.as_str() {
                Some(s) => strings.push(s.to_string()),
                None => self.report(
                    &format!("{key}[{i}]"),
                    format!("expected a string, found {}", describe(item)),
                ),
            }
        }
        strings
    }

    /// A sub-table; missing means empty (every key then takes its default).
    pub fn table(&mut self, key: &str) -> Section {
        let table = self
            .typed(key, "a table", |v| v.as_table().cloned())
            .unwrap_or_default();
        Section {
            path: self.key(key),
            table,
            problems: self.problems.clone(),
        }
    }

    pub fn opt_table(&mut self, key: &str) -> Option<Section> {
        self.has(key).then(|| self.table(key))
    }

    pub fn array_of_tables(&mut self, key: &str) -> Vec<Section> {
        let Some(items) = self.typed(key, "a list of tables ([[...]])", |v| v.as_array().cloned())
        else {
            return Vec::new();
        };
        let mut sections = Vec::new();
        for (i, item) in items.into_iter().enumerate() {
            let path = format!("{}[{i}]", self.key(key));
            match item {
                Value::Table(table) => sections.push(Section {
                    path,
                    table,
                    problems: self.problems.clone(),
                }),
                other => self.problems.report(
                    path,
                    format!("expected a table, found {}", describe(&other)),
                ),
            }
        }
        sections
    }

    /// Reports every key nobody asked for.
    pub fn finish(self) {
        for key in self.table.keys() {
            self.problems.report(self.key(key), "unknown key");
        }
    }
}

fn describe(value: &Value) -> String {
    match value {
        Value::String(s) => format!("the string {s:?}"),
        Value::Integer(i) => format!("the number {i}"),
        Value::Float(f) => format!("the number {f}"),
        Value::Boolean(b) => format!("{b}"),
        Value::Datetime(d) => format!("the date {d}"),
        Value::Array(_) => "a list".to_string(),
        Value::Table(_) => "a table".to_string(),
    }
}
