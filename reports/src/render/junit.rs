//! `junit.xml`: one testsuite for the run, one testcase per checker.

use std::fmt::Write as _;

use super::{JudgedRun, not_judged};
use crate::checkers::Kind;

impl JudgedRun {
    /// `junit.xml`: one testsuite for the run, one testcase per checker; a broken checker has a
    /// `<failure>` quoting each violation and the history lines it names; a liveness checker
    /// that could not judge (the run did not heal long enough) is `<skipped>`.
    pub fn junit_xml(&self) -> String {
        let info = &self.info;
        let suite = format!("khaos {}", info.title());
        let classname = format!("khaos.{}", info.scenario);
        let failures = self.verdicts.iter().filter(|v| !v.ok()).count();
        let skipped = self.verdicts.iter().filter(|v| not_judged(v)).count();
        let seconds = self.history.last().map_or(0, |e| e.t_ms) as f64 / 1000.0;
        let mut xml = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
        let counts = format!(
            "tests=\"{}\" failures=\"{failures}\" errors=\"0\" skipped=\"{skipped}\" time=\"{seconds:.3}\"",
            self.verdicts.len()
        );
        let _ = writeln!(xml, "<testsuites name=\"khaos\" {counts}>");
        let _ = writeln!(
            xml,
            "  <testsuite name=\"{}\" {counts}>",
            xml_escape(&suite)
        );
        xml.push_str("    <properties>\n");
        let mut properties = vec![("scenario", info.scenario.clone())];
        if let Some(seed) = info.seed {
            properties.push(("seed", seed.to_string()));
        }
        if let Some(replay) = &info.replay {
            properties.push(("replay", replay.clone()));
        }
        if let Some(digest) = &info.digest {
            properties.push(("digest", digest.clone()));
        }
        for (name, value) in properties {
            let _ = writeln!(
                xml,
                "      <property name=\"{name}\" value=\"{}\"/>",
                xml_escape(&value)
            );
        }
        xml.push_str("    </properties>\n");
        for verdict in &self.verdicts {
            let open = format!(
                "    <testcase name=\"{}\" classname=\"{}\" time=\"0\"",
                xml_escape(verdict.checker),
                xml_escape(&classname)
            );
            if verdict.ok() && !not_judged(verdict) {
                let _ = writeln!(xml, "{open}/>");
                continue;
            }
            let _ = writeln!(xml, "{open}>");
            if not_judged(verdict) {
                xml.push_str(
                    "      <skipped message=\"not judged: the run did not heal for long enough \
                     (or has no healed phase)\"/>\n",
                );
            }
            if let Some(first) = verdict.violations.first() {
                let count = verdict.violations.len();
                let message = if count == 1 {
                    first.message.clone()
                } else {
                    format!("{} (and {} more)", first.message, count - 1)
                };
                let kind = match verdict.kind {
                    Kind::Safety => "safety",
                    Kind::Liveness => "liveness",
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
                let _ = writeln!(
                    xml,
                    "      <failure message=\"{}\" type=\"{kind}\">{}</failure>",
                    xml_escape(&message),
                    xml_escape(&body)
                );
            }
            xml.push_str("    </testcase>\n");
        }
        xml.push_str("  </testsuite>\n</testsuites>\n");
        xml
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
