//! `junit.xml`: one testsuite for the run, one testcase per checker, written by quick-junit.

use std::fmt::Write as _;
use std::time::Duration;

use quick_junit::{NonSuccessKind, Property, Report, TestCase, TestCaseStatus, TestSuite};

use super::{JudgedRun, not_judged};
use crate::checkers::Kind;

impl JudgedRun {
    /// `junit.xml`: one testsuite for the run, one testcase per checker; a broken checker has a
    /// `<failure>` quoting each violation and the history lines it names; a liveness checker
    /// that could not judge (the run did not heal long enough) is `<skipped>`.
    pub fn junit_xml(&self) -> String {
        let info = &self.info;
        let classname = format!("khaos.{}", info.scenario);
        let time = Duration::from_millis(self.history.last().map_or(0, |e| e.t_ms));
        let mut suite = TestSuite::new(format!("khaos {}", info.title()));
        suite.set_time(time);
        suite.add_property(Property::new("scenario", info.scenario.as_str()));
        if let Some(seed) = info.seed {
            suite.add_property(Property::new("seed", seed.to_string()));
        }
        if let Some(replay) = &info.replay {
            suite.add_property(Property::new("replay", replay.as_str()));
        }
        if let Some(digest) = &info.digest {
            suite.add_property(Property::new("digest", digest.as_str()));
        }
        for verdict in &self.verdicts {
            let status = match verdict.violations.first() {
                Some(first) => {
                    let count = verdict.violations.len();
                    let message = if count == 1 {
                        first.message.clone()
                    } else {
                        format!("{} (and {} more)", first.message, count - 1)
                    };
                    let mut body = String::new();
                    for violation in &verdict.violations {
                        let _ = writeln!(body, "{}", violation.message);
                        for index in &violation.entries {
                            if let Some(entry) = self.history.get(*index) {
                                let _ = writeln!(body, "  line {}: {}", index + 1, entry.to_line());
                            }
                        }
                    }
                    if let Some(replay) = &info.replay {
                        let _ = writeln!(body, "replay: {replay}");
                    }
                    let mut status = TestCaseStatus::non_success(NonSuccessKind::Failure);
                    status
                        .set_message(message)
                        .set_type(match verdict.kind {
                            Kind::Safety => "safety",
                            Kind::Liveness => "liveness",
                        })
                        .set_description(body);
                    status
                }
                None if not_judged(verdict) => {
                    let mut status = TestCaseStatus::skipped();
                    status.set_message(
                        "not judged: the run did not heal for long enough (or has no healed phase)",
                    );
                    status
                }
                None => TestCaseStatus::success(),
            };
            let mut case = TestCase::new(verdict.checker, status);
            case.set_classname(classname.as_str())
                .set_time(Duration::ZERO);
            suite.add_test_case(case);
        }
        let mut report = Report::new("khaos");
        report.set_time(time).add_test_suite(suite);
        report.to_string().expect("a report serialises")
    }
}

/// Escape text for XML 1.0 content and attribute values; characters XML 1.0 cannot carry at
/// all (most control characters) become U+FFFD.
pub fn xml_escape(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => escaped.push_str("&amp;"),
            '<' => escaped.push_str("&lt;"),
            '>' => escaped.push_str("&gt;"),
            '"' => escaped.push_str("&quot;"),
            '\'' => escaped.push_str("&apos;"),
            '\t' | '\n' | '\r' => escaped.push(c),
            c if (c as u32) < 0x20 || c == '\u{fffe}' || c == '\u{ffff}' => {
                escaped.push('\u{fffd}');
            }
            c => escaped.push(c),
        }
    }
    escaped
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::render::testing::*;

    #[test]
    fn junit_has_a_testcase_per_checker_and_parses() {
        let xml = judged().junit_xml();
        let document = roxmltree::Document::parse(&xml).expect("junit.xml is well-formed XML");
        let suite = document
            .descendants()
            .find(|n| n.has_tag_name("testsuite"))
            .unwrap();
        assert_eq!(suite.attribute("name"), Some("khaos hand-made seed 7"));
        assert_eq!(suite.attribute("tests"), Some("8"));
        assert_eq!(suite.attribute("failures"), Some("2"));
        let cases: Vec<&str> = suite
            .children()
            .filter(|n| n.has_tag_name("testcase"))
            .map(|n| n.attribute("name").unwrap())
            .collect();
        assert_eq!(
            cases,
            [
                "fenced-writes",
                "terms",
                "overlap",
                "durability",
                "counter",
                "progress",
                "cleanup",
                "liveness"
            ]
        );
        let overlap = suite
            .children()
            .find(|n| n.attribute("name") == Some("overlap"))
            .unwrap();
        let failure = overlap
            .children()
            .find(|n| n.has_tag_name("failure"))
            .unwrap();
        assert!(
            failure
                .attribute("message")
                .unwrap()
                .starts_with("node-b (granted term 1) and node-c (granted term 1) both believed"),
            "{xml}"
        );
        let body = failure.text().unwrap();
        assert!(
            body.contains("line 19: {\"t_ms\":2310,\"node\":\"node-c\""),
            "{body}"
        );
        assert!(body.contains("replay: khaos sim run --scenario hand-made --seed 7"));
        // Liveness was not judged (no healed phase): skipped, not passed.
        let liveness = suite
            .children()
            .find(|n| n.attribute("name") == Some("liveness"))
            .unwrap();
        assert!(liveness.children().any(|n| n.has_tag_name("skipped")));
    }

    #[test]
    fn xml_escaping_covers_markup_quotes_and_control_characters() {
        assert_eq!(
            xml_escape("a<b>&\"c\"'d'\u{1}\n"),
            "a&lt;b&gt;&amp;&quot;c&quot;&apos;d&apos;\u{fffd}\n"
        );
        let xml = format!(
            "<a b=\"{}\">{}</a>",
            xml_escape("\"<&>'"),
            xml_escape("</a>\u{0}")
        );
        let document = roxmltree::Document::parse(&xml).unwrap();
        assert_eq!(document.root_element().attribute("b"), Some("\"<&>'"));
        assert_eq!(document.root_element().text(), Some("</a>\u{fffd}"));
    }
}
