//! The suite's result table: figures per server, ratios, targets met; printed and as JSON.

use std::fmt::Write as _;
use std::path::Path;

use crate::fanout::{Report, json_num, json_str};
use crate::raw::RawReport;

/// A measured value, or why there is none.
#[derive(Clone, Debug)]
pub(crate) enum Cell<T> {
    Measured(T),
    Skipped(String),
}

impl<T> Cell<T> {
    pub(crate) fn map(&self, f: impl Fn(&T) -> f64) -> Cell<f64> {
        match self {
            Cell::Measured(v) => Cell::Measured(f(v)),
            Cell::Skipped(why) => Cell::Skipped(why.clone()),
        }
    }
}

impl Cell<f64> {
    fn value(&self) -> Option<f64> {
        match self {
            Cell::Measured(v) if v.is_finite() => Some(*v),
            _ => None,
        }
    }
}

/// A target from the issue.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Goal {
    /// wsbroker ≥ this × RabbitMQ.
    RatioToRabbitAtLeast(f64),
    /// wsbroker ≥ this × the naive baseline.
    RatioToNaiveAtLeast(f64),
    /// wsbroker's figure ≤ this.
    AtMost(f64),
    /// wsbroker's figure ≥ this.
    AtLeast(f64),
}

impl Goal {
    fn describe(self) -> String {
        match self {
            Goal::RatioToRabbitAtLeast(x) => format!(">= {x}x RabbitMQ"),
            Goal::RatioToNaiveAtLeast(x) => format!(">= {x}x naive"),
            Goal::AtMost(v) => format!("<= {v}"),
            Goal::AtLeast(v) => format!(">= {v}"),
        }
    }
}

pub(crate) struct Row {
    metric: String,
    wsbroker: Cell<f64>,
    rabbitmq: Cell<f64>,
    naive: Cell<f64>,
    goal: Option<Goal>,
}

impl Row {
    pub(crate) fn new(
        metric: String,
        wsbroker: Cell<f64>,
        rabbitmq: Cell<f64>,
        naive: Cell<f64>,
        goal: Option<Goal>,
    ) -> Row {
        Row {
            metric,
            wsbroker,
            rabbitmq,
            naive,
            goal,
        }
    }

    /// What the row measures.
    pub(crate) fn metric(&self) -> &str {
        &self.metric
    }

    /// Its three figures, in column order.
    pub(crate) fn cells(&self) -> impl Iterator<Item = &Cell<f64>> {
        [&self.wsbroker, &self.rabbitmq, &self.naive].into_iter()
    }

    fn ratio(&self, peer: &Cell<f64>) -> Option<f64> {
        let (ws, peer) = (self.wsbroker.value()?, peer.value()?);
        (peer > 0.0).then(|| ws / peer)
    }

    /// `None` when a figure the target needs is missing.
    fn met(&self) -> Option<bool> {
        match self.goal? {
            Goal::RatioToRabbitAtLeast(x) => Some(self.ratio(&self.rabbitmq)? >= x),
            Goal::RatioToNaiveAtLeast(x) => Some(self.ratio(&self.naive)? >= x),
            Goal::AtMost(v) => Some(self.wsbroker.value()? <= v),
            Goal::AtLeast(v) => Some(self.wsbroker.value()? >= v),
        }
    }
}

pub(crate) struct Results {
    quick: bool,
    cpus: usize,
    pub(crate) rows: Vec<Row>,
    /// Per-scenario detail objects (JSON text).
    scenarios: Vec<String>,
}

fn fmt_cell(c: &Cell<f64>) -> String {
    match c {
        Cell::Measured(v) if !v.is_finite() => "?".into(),
        Cell::Measured(v) if v.abs() >= 100.0 || v.fract() == 0.0 => format!("{v:.0}"),
        Cell::Measured(v) => format!("{v:.2}"),
        Cell::Skipped(_) => "-".into(),
    }
}

fn fmt_ratio(r: Option<f64>) -> String {
    r.map_or("-".into(), |r| format!("{r:.2}x"))
}

fn json_cell(out: &mut String, key: &str, c: &Cell<f64>) {
    match c {
        Cell::Measured(v) => json_num(out, key, *v),
        Cell::Skipped(why) => {
            let _ = write!(
                out,
                "\"{key}\": null, \"{key}_skipped\": {}, ",
                json_str(why)
            );
        }
    }
}

impl Results {
    pub(crate) fn new(quick: bool, cpus: usize) -> Results {
        Results {
            quick,
            cpus,
            rows: Vec::new(),
            scenarios: Vec::new(),
        }
    }

    pub(crate) fn add_stomp(&mut self, server: &str, r: &Report) {
        let mut o = String::from("{");
        let _ = write!(
            o,
            "\"server\": {}, \"scenario\": {}, \"subscribers\": {}, \"messages\": {}, \"size\": {}, \
             \"rounds\": {}, \"expected\": {}, \"received\": {}, \"lost\": {}, \"out_of_order\": {}, ",
            json_str(server),
            json_str(&r.name),
            r.subs,
            r.msgs,
            r.size,
            r.rounds,
            r.expected,
            r.received,
            r.lost,
            r.out_of_order
        );
        match r.rate {
            Some(rate) => {
                let _ = write!(o, "\"rate\": {rate}, ");
            }
            None => o.push_str("\"rate\": null, "),
        }
        json_num(&mut o, "deliveries_per_sec", r.deliveries_per_sec);
        json_num(
            &mut o,
            "server_cpu_us_per_delivery",
            r.server_cpu_us_per_delivery,
        );
        json_num(
            &mut o,
            "client_cpu_us_per_delivery",
            r.client_cpu_us_per_delivery,
        );
        json_num(&mut o, "latency_p50_us", r.p50_us);
        json_num(&mut o, "latency_p99_us", r.p99_us);
        json_num(&mut o, "latency_max_us", r.max_us);
        json_num(&mut o, "kib_per_connection", r.kib_per_connection);
        self.push_scenario(o, &r.errors);
    }

    /// Closes scenario object `o` with its `errors` and keeps it.
    fn push_scenario(&mut self, mut o: String, errors: &[String]) {
        let errors: Vec<String> = errors.iter().map(|e| json_str(e)).collect();
        let _ = write!(o, "\"errors\": [{}]}}", errors.join(", "));
        self.scenarios.push(o);
    }

    pub(crate) fn add_raw(&mut self, server: &str, name: &str, r: &RawReport) {
        let mut o = String::from("{");
        let _ = write!(
            o,
            "\"server\": {}, \"scenario\": {}, \"connections\": {}, \"messages\": {}, \"size\": {}, \
             \"expected\": {}, \"received\": {}, \"lost\": {}, \"out_of_order\": {}, ",
            json_str(server),
            json_str(name),
            r.conns,
            r.msgs,
            r.size,
            r.expected,
            r.received,
            r.lost,
            r.out_of_order
        );
        json_num(&mut o, "messages_per_sec", r.per_sec);
        json_num(&mut o, "server_cpu_us_per_message", r.server_cpu_us_per_msg);
        json_num(&mut o, "client_cpu_us_per_message", r.client_cpu_us_per_msg);
        json_num(&mut o, "latency_p50_us", r.p50_us);
        json_num(&mut o, "latency_p99_us", r.p99_us);
        self.push_scenario(o, &r.errors);
    }

    pub(crate) fn print(&self) {
        let width = self.rows.iter().map(|r| r.metric.len()).max().unwrap_or(10);
        println!();
        println!(
            "{:<width$} {:>11} {:>11} {:>11} {:>9} {:>9}  {:<18} met",
            "metric", "wsbroker", "RabbitMQ", "naive", "ws/rabbit", "ws/naive", "target"
        );
        for r in &self.rows {
            let met = match (r.goal, r.met()) {
                (None, _) => "",
                (Some(_), Some(true)) => "yes",
                (Some(_), Some(false)) => "NO",
                (Some(_), None) => "n/a",
            };
            println!(
                "{:<width$} {:>11} {:>11} {:>11} {:>9} {:>9}  {:<18} {met}",
                r.metric,
                fmt_cell(&r.wsbroker),
                fmt_cell(&r.rabbitmq),
                fmt_cell(&r.naive),
                fmt_ratio(r.ratio(&r.rabbitmq)),
                fmt_ratio(r.ratio(&r.naive)),
                r.goal.map_or(String::new(), Goal::describe),
            );
        }
        let mut skipped: Vec<String> = Vec::new();
        for r in &self.rows {
            for (server, c) in [
                ("wsbroker", &r.wsbroker),
                ("RabbitMQ", &r.rabbitmq),
                ("naive", &r.naive),
            ] {
                if let Cell::Skipped(why) = c
                    && why != "n/a"
                    && why != "not run"
                    && why != "not measured"
                {
                    let line = format!("{server}: skipped: {why}");
                    if !skipped.contains(&line) {
                        skipped.push(line);
                    }
                }
            }
        }
        for s in skipped {
            println!("  {s}");
        }
    }

    pub(crate) fn to_json(&self) -> String {
        let mut out = String::from("{\n  \"bench\": \"suite\",\n");
        let _ = writeln!(out, "  \"quick\": {},", self.quick);
        let _ = writeln!(out, "  \"cpus\": {},", self.cpus);
        out.push_str("  \"rows\": [\n");
        for (i, r) in self.rows.iter().enumerate() {
            let mut o = format!("    {{\"metric\": {}, ", json_str(&r.metric));
            json_cell(&mut o, "wsbroker", &r.wsbroker);
            json_cell(&mut o, "rabbitmq", &r.rabbitmq);
            json_cell(&mut o, "naive", &r.naive);
            json_num(
                &mut o,
                "ratio_to_rabbitmq",
                r.ratio(&r.rabbitmq).unwrap_or(f64::NAN),
            );
            json_num(
                &mut o,
                "ratio_to_naive",
                r.ratio(&r.naive).unwrap_or(f64::NAN),
            );
            match r.goal {
                Some(g) => {
                    let _ = write!(o, "\"target\": {}, ", json_str(&g.describe()));
                }
                None => o.push_str("\"target\": null, "),
            }
            let met = match r.met() {
                Some(m) => m.to_string(),
                None => "null".into(),
            };
            let _ = write!(o, "\"met\": {met}}}");
            out.push_str(&o);
            out.push_str(if i + 1 < self.rows.len() { ",\n" } else { "\n" });
        }
        out.push_str("  ],\n  \"scenarios\": [\n");
        for (i, s) in self.scenarios.iter().enumerate() {
            let _ = write!(out, "    {s}");
            out.push_str(if i + 1 < self.scenarios.len() {
                ",\n"
            } else {
                "\n"
            });
        }
        out.push_str("  ]\n}\n");
        out
    }

    pub(crate) fn write_json(&self, file: &Path) -> Result<(), String> {
        if let Some(dir) = file.parent() {
            std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        }
        std::fs::write(file, self.to_json()).map_err(|e| format!("{}: {e}", file.display()))
    }
}
