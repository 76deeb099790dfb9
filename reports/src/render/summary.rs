//! `summary.json`: the run, its verdict per checker with the history lines that broke them,
//! every checker's figures by checker and name, and the failovers.

use serde_json::{Value, json};

use super::{JudgedRun, failovers};

impl JudgedRun {
    /// `summary.json`: the run, its verdict per checker with the history lines that broke
    /// them, every checker's figures by checker and name, and the failovers.
    pub fn summary_json(&self) -> Value {
        let info = &self.info;
        let figures: serde_json::Map<String, Value> = self
            .verdicts
            .iter()
            .map(|verdict| {
                let named: serde_json::Map<String, Value> =
                    verdict.figures.iter().cloned().collect();
                (verdict.checker.to_owned(), Value::Object(named))
            })
            .collect();
        let violations: Vec<Value> = self
            .verdicts
            .iter()
            .flat_map(|verdict| {
                verdict.violations.iter().map(move |violation| {
                    json!({
                        "checker": verdict.checker,
                        "message": violation.message,
                        "lines": violation
                            .entries
                            .iter()
                            .map(|index| self.named_line(*index))
                            .collect::<Vec<_>>(),
                    })
                })
            })
            .collect();
        let mut summary = json!({
            "scenario": info.scenario,
            "seed": info.seed,
            "ok": self.ok(),
            "verdict": self.verdict(),
            "replay": info.replay,
            "digest": info.digest,
        });
        if let Some(simulated_ms) = info.simulated_ms {
            summary["simulated_ms"] = json!(simulated_ms);
        }
        summary["settings"] = json!(info.settings);
        summary["figures"] = Value::Object(figures);
        summary["failovers"] = json!(failovers(&self.history));
        summary["violations"] = json!(violations);
        summary["verdicts"] = json!(self.verdicts);
        summary
    }
}

#[cfg(test)]
mod tests {
    use crate::render::testing::*;

    #[test]
    fn the_summary_names_the_lines_that_broke_and_carries_figures_and_failovers() {
        let summary = judged().summary_json();
        assert_eq!(summary["ok"], false);
        assert_eq!(summary["verdict"], "VIOLATED terms, overlap");
        assert_eq!(summary["simulated_ms"], 3000);
        assert_eq!(summary["figures"]["overlap"]["overlap_ms"], 90);
        assert_eq!(summary["failovers"][0]["ms"], 1601);
        let violations = summary["violations"].as_array().unwrap();
        let overlap = violations
            .iter()
            .find(|v| v["checker"] == "overlap")
            .unwrap();
        let lines: Vec<&Value> = overlap["lines"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| &l["line"])
            .collect();
        assert_eq!(lines, [&json!(18), &json!(19)]);
        assert_eq!(overlap["lines"][1]["entry"]["node"], "node-c");
        assert_eq!(summary["verdicts"].as_array().unwrap().len(), 8);
    }
}
